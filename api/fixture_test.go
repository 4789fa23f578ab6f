package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/internal/shared"
	"github.com/rampart-ip/rampart/reputation"
	"github.com/rampart-ip/rampart/store"
)

// testNow is the fixed clock of every test.
var testNow = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// Addresses of the test index, all in public space.
const (
	listedHost   = "1.1.131.164"   // in blocklist_de.ipset
	rangeInside  = "1.10.20.5"     // inside spamhaus_drop's 1.10.16.0/20
	listedV6     = "2a10:c700::1"  // inside the synthetic 2a10:c700::/29
	historicHost = "151.101.77.3"  // listed by blocklist_de until two days ago
	cleanHost    = "9.9.9.9"       // listed by nobody
	cleanV6      = "2620:fe::fe:9" // listed by nobody
)

var discard = slog.New(slog.DiscardHandler)

// readList reads a FireHOL list from shared data: one address or range a
// line, # comments.
func readList(t testing.TB, source string, elem ...string) []store.Listing {
	t.Helper()
	f, err := os.Open(shared.Data(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []store.Listing
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		p, err := netip.ParsePrefix(line)
		if err != nil {
			a, aerr := netip.ParseAddr(line)
			if aerr != nil {
				t.Fatalf("%s: %q: %v", source, line, aerr)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, store.Listing{Source: source, Prefix: p, Since: testNow.Add(-72 * time.Hour)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sharedService is built once per test binary: the service is safe for
// concurrent use and the tests only read it.
var sharedService struct {
	once sync.Once
	svc  *reputation.Service
}

// newService returns a real reputation.Service over two real FireHOL
// lists, one synthetic IPv6 range and one ended episode.
func newService(t testing.TB) *reputation.Service {
	t.Helper()
	sharedService.once.Do(func() { sharedService.svc = buildService(t) })
	if sharedService.svc == nil {
		t.Fatal("the shared test service failed to build")
	}
	return sharedService.svc
}

func buildService(t testing.TB) *reputation.Service {
	t.Helper()
	svc := reputation.NewService(reputation.ServiceOptions{
		Model:     reputation.NewModel(config.Default().Scoring),
		CacheSize: 1000,
		Now:       func() time.Time { return testNow },
		Logger:    discard,
	})
	listings := readList(t, "blocklist_de", "feeds", "firehol", "blocklist_de.ipset")
	listings = append(listings, readList(t, "spamhaus_drop", "feeds", "firehol", "spamhaus_drop.netset")...)
	listings = append(listings, store.Listing{Source: "blocklist_de", Prefix: netip.MustParsePrefix("2a10:c700::/29"), Since: testNow.Add(-24 * time.Hour)})
	idx := reputation.Build(reputation.Data{
		Sources: []reputation.SourceInfo{
			{Name: "blocklist_de", Kind: store.KindFeed, Provider: "blocklist.de", Category: "bruteforce", ConfirmedAt: testNow.Add(-time.Hour)},
			{Name: "spamhaus_drop", Kind: store.KindFeed, Provider: "Spamhaus", Category: "hijacked", ConfirmedAt: testNow.Add(-time.Hour)},
		},
		Listings: listings,
		Episodes: []store.Episode{{
			Source:  "blocklist_de",
			Prefix:  netip.MustParsePrefix(historicHost + "/32"),
			Started: testNow.Add(-96 * time.Hour),
			Ended:   testNow.Add(-48 * time.Hour),
		}},
	}, reputation.BuildOptions{Retention: 168 * time.Hour, Now: func() time.Time { return testNow }})
	svc.Swap(idx)
	return svc
}

// newServer returns a server over the real service; edit adjusts the
// options first.
func newServer(t testing.TB, edit func(*Options)) *Server {
	t.Helper()
	o := Options{
		HTTP:    config.Default().HTTP,
		Auth:    config.Default().Auth,
		Service: newService(t),
		Logger:  discard,
		Now:     func() time.Time { return testNow },
	}
	if edit != nil {
		edit(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// do sends one request to h and returns the recorded answer.
func do(t testing.TB, h http.Handler, method, target, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// decode parses a JSON answer into a generic value, failing on bad JSON.
func decode(t testing.TB, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %q", err, w.Body.String())
	}
	return v
}

// wantError checks an error answer: the status, a JSON body with a
// non-empty error, and a message containing want.
func wantError(t testing.TB, w *httptest.ResponseRecorder, code int, want string) {
	t.Helper()
	if w.Code != code {
		t.Fatalf("status %d, want %d; body %s", w.Code, code, w.Body.String())
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type %q, want application/json", ct)
	}
	v := decode(t, w)
	msg, _ := v["error"].(string)
	if msg == "" {
		t.Fatalf("no error message in %s", w.Body.String())
	}
	if !strings.Contains(msg, want) {
		t.Errorf("error %q does not mention %q", msg, want)
	}
}
