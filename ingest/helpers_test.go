package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/internal/shared"
	"github.com/rampart-ip/rampart/misp"
	"github.com/rampart-ip/rampart/reputation"
	"github.com/rampart-ip/rampart/store"
	"github.com/rampart-ip/rampart/store/sqlite"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// clock is an injected clock that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// countingStore counts the writes and full reads that the engine makes.
type countingStore struct {
	store.Store
	mu            sync.Mutex
	applyCalls    int // Apply with a non-empty change
	emptyApplies  int // Apply with an empty change
	applied       int // prefixes passed to Apply
	puts          int
	listingsReads int // Listings calls: one per index rebuild
}

var _ store.Store = (*countingStore)(nil)

func (c *countingStore) Apply(ctx context.Context, source string, ch store.Change, now time.Time) error {
	c.mu.Lock()
	if ch.Empty() {
		c.emptyApplies++
	} else {
		c.applyCalls++
		c.applied += len(ch.Added) + len(ch.Removed)
	}
	c.mu.Unlock()
	return c.Store.Apply(ctx, source, ch, now)
}

func (c *countingStore) PutSource(ctx context.Context, s store.Source) error {
	c.mu.Lock()
	c.puts++
	c.mu.Unlock()
	return c.Store.PutSource(ctx, s)
}

func (c *countingStore) Listings(ctx context.Context, fn func(store.Listing) error) error {
	c.mu.Lock()
	c.listingsReads++
	c.mu.Unlock()
	return c.Store.Listings(ctx, fn)
}

type counts struct{ applyCalls, emptyApplies, applied, puts, listingsReads int }

func (c *countingStore) counts() counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return counts{c.applyCalls, c.emptyApplies, c.applied, c.puts, c.listingsReads}
}

// feedServer serves feed files from memory, with an ETag per content
// unless noValidators is set, and can be told to fail.
type feedServer struct {
	*httptest.Server
	mu           sync.Mutex
	files        map[string][]byte
	status       int // non-zero: answer every request with this status
	noValidators bool
	requests     int
}

func newFeedServer(t testing.TB) *feedServer {
	fs := &feedServer{files: map[string][]byte{}}
	fs.Server = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *feedServer) serve(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	fs.requests++
	body, ok := fs.files[r.URL.Path]
	status, noValidators := fs.status, fs.noValidators
	fs.mu.Unlock()
	if status != 0 {
		http.Error(w, "failure injected by the test", status)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	if !noValidators {
		sum := sha256.Sum256(body)
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write(body)
}

func (fs *feedServer) set(path string, body []byte) {
	fs.mu.Lock()
	fs.files[path] = body
	fs.mu.Unlock()
}

func (fs *feedServer) fail(status int) {
	fs.mu.Lock()
	fs.status = status
	fs.mu.Unlock()
}

// closedURL returns an http URL on a port where nothing listens.
func closedURL(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr + "/feed.txt"
}

// harness is an engine over a real SQLite store and a real Service.
type harness struct {
	eng   *Engine
	st    *countingStore
	raw   store.Store
	svc   *reputation.Service
	clock *clock
	path  string
}

type harnessOptions struct {
	maxBytes int64
	dbPath   string // reuse a database file (a restart); empty means a new one
	noSvc    bool
}

func newHarness(t testing.TB, o harnessOptions) *harness {
	t.Helper()
	ctx := context.Background()
	path := o.dbPath
	if path == "" {
		path = filepath.Join(t.TempDir(), "rampart.db")
	}
	log := slog.New(slog.DiscardHandler)
	raw, err := sqlite.Open(ctx, path, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	h := &harness{st: &countingStore{Store: raw}, raw: raw, clock: newClock(), path: path}
	if !o.noSvc {
		h.svc = reputation.NewService(reputation.ServiceOptions{Now: h.clock.now, CacheSize: -1})
	}
	cfg := config.Default()
	h.eng = NewEngine(EngineOptions{
		Store:   h.st,
		Service: h.svc,
		Fetcher: misp.NewFetcher(misp.FetchOptions{Timeout: 10 * time.Second, MaxBytes: o.maxBytes}, log),
		Sync:    cfg.Sync,
		History: cfg.History,
		Scoring: cfg.Scoring,
		Now:     h.clock.now,
		Logger:  log,
	})
	return h
}

// feed returns a freetext feed definition.
func feed(name, url string) misp.Feed {
	return misp.Feed{Name: name, Provider: "test", URL: url, SourceFormat: misp.FormatFreetext, Enabled: true, Category: "bruteforce"}
}

// sample reads a shared data file.
func sample(t testing.TB, elem ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(shared.Data(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parsed returns the prefixes that the freetext parser finds in body.
func parsed(t testing.TB, body []byte) []netip.Prefix {
	t.Helper()
	r, err := misp.ParseFreetext(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return r.Prefixes
}

func (h *harness) listings(t testing.TB, source string) map[netip.Prefix]time.Time {
	t.Helper()
	out := map[netip.Prefix]time.Time{}
	err := h.raw.Listings(context.Background(), func(l store.Listing) error {
		if l.Source == source {
			out[l.Prefix] = l.Since
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (h *harness) episodes(t testing.TB, source string) []store.Episode {
	t.Helper()
	var out []store.Episode
	err := h.raw.Episodes(context.Background(), time.Time{}, func(e store.Episode) error {
		if e.Source == source {
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (h *harness) source(t testing.TB, name string) store.Source {
	t.Helper()
	s, err := h.raw.Source(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (h *harness) status(t testing.TB, name string) FeedStatus {
	t.Helper()
	for _, f := range h.eng.Feeds() {
		if f.Name == name && f.Note == "" {
			return f
		}
	}
	t.Fatalf("feed %q not in Feeds()", name)
	return FeedStatus{}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lines keeps the non-comment lines of body for which keep is true.
func lines(body []byte, keep func(i int, line []byte) bool) []byte {
	var out bytes.Buffer
	i := 0
	for _, l := range bytes.Split(body, []byte("\n")) {
		if len(l) == 0 || l[0] == '#' {
			continue
		}
		if keep(i, l) {
			out.Write(l)
			out.WriteByte('\n')
		}
		i++
	}
	return out.Bytes()
}
