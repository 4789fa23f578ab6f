package misp

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rampart-ip/rampart/internal/shared"
)

// feedServer serves real feed files the way static hosts do: with an ETag
// and Last-Modified, answering conditional requests with 304.
type feedServer struct {
	*httptest.Server
	requests atomic.Int64
	lastReq  atomic.Pointer[http.Request]
}

func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func newFeedServer(t *testing.T, files map[string][]byte) *feedServer {
	t.Helper()
	fs := &feedServer{}
	modTime := time.Date(2026, 8, 22, 3, 0, 0, 0, time.UTC)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fs.requests.Add(1)
		fs.lastReq.Store(r.Clone(context.Background()))
		name := strings.TrimPrefix(r.URL.Path, "/")
		data, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		sum := sha256.Sum256(data)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
		http.ServeContent(w, r, name, modTime, bytes.NewReader(data))
	})
	mux.HandleFunc("/gzip/", func(w http.ResponseWriter, r *http.Request) {
		// Serves the gzipped copy of a file with Content-Encoding: gzip.
		data, ok := files[strings.TrimPrefix(r.URL.Path, "/gzip/")+".gz"]
		if !ok || !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			http.Error(w, "gzip only", http.StatusNotAcceptable)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(data)
	})
	mux.HandleFunc("/nocache/", func(w http.ResponseWriter, r *http.Request) {
		fs.requests.Add(1)
		_, _ = w.Write(files[strings.TrimPrefix(r.URL.Path, "/nocache/")])
	})
	mux.HandleFunc("/error", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database is down", http.StatusInternalServerError)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // answers only when the client gives up
	})
	mux.HandleFunc("/auth", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "s3cret" || r.Header.Get("X-Feed-Client") != "rampart test" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte("192.0.2.1\n"))
	})
	fs.Server = httptest.NewServer(mux)
	t.Cleanup(func() {
		fs.Client().CloseIdleConnections()
		fs.Close()
	})
	return fs
}

// noLeaks checks, after the test's servers are closed, that no goroutine
// the test started is left.
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func readShared(t testing.TB, elem ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(shared.Data(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newTestFetcher(srv *feedServer, opts FetchOptions) *Fetcher {
	opts.Client = srv.Client()
	return NewFetcher(opts, slog.New(slog.DiscardHandler))
}

func TestFetchOverHTTP(t *testing.T) {
	noLeaks(t)
	firehol := readShared(t, "feeds", "firehol", "firehol_level1.netset")
	ipsum := readShared(t, "feeds", "ipsum", "ipsum.txt")
	feodo := readShared(t, "feeds", "raw", "feodotracker_ipblocklist_2024-04-04.csv")
	srv := newFeedServer(t, map[string][]byte{
		"firehol_level1.netset": firehol,
		"ipsum.txt":             ipsum,
		"ipsum.txt.gz":          gz(t, ipsum),
		"ipblocklist.csv":       feodo,
		"big.txt":               bytes.Repeat([]byte("192.0.2.1\n"), 2000),
		"bomb.txt.gz":           gz(t, bytes.Repeat([]byte("192.0.2.1\n"), 100_000)),
		"compromised-ips.txt":   readShared(t, "feeds", "raw", "et_compromised-ips.txt"),
	})
	f := newTestFetcher(srv, FetchOptions{Timeout: 30 * time.Second})
	ctx := t.Context()
	wantFirehol, err := ParseFreetext(bytes.NewReader(firehol))
	if err != nil {
		t.Fatal(err)
	}
	wantIpsum, err := ParseFreetext(bytes.NewReader(ipsum))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a freetext feed is fetched and parsed, then answers 304 with its ETag", func(t *testing.T) {
		feed := Feed{Name: "firehol", URL: srv.URL + "/firehol_level1.netset", SourceFormat: FormatFreetext}
		first, err := f.Fetch(ctx, feed, FetchState{})
		if err != nil {
			t.Fatal(err)
		}
		if first.NotModified || !slices.Equal(first.Result.Prefixes, wantFirehol.Prefixes) || len(first.Result.Prefixes) < 2000 {
			t.Fatalf("first fetch: not modified %v, %d prefixes", first.NotModified, len(first.Result.Prefixes))
		}
		if first.State.ETag == "" || first.State.LastModified == "" || first.State.ContentHash == "" {
			t.Fatalf("state = %+v", first.State)
		}
		if ua := srv.lastReq.Load().Header.Get("User-Agent"); ua != "rampart" {
			t.Errorf("User-Agent = %q", ua)
		}
		second, err := f.Fetch(ctx, feed, first.State)
		if err != nil {
			t.Fatal(err)
		}
		if !second.NotModified || second.Result != nil || second.State != first.State {
			t.Fatalf("second fetch = %+v, want NotModified with the same state", second)
		}
		if inm := srv.lastReq.Load().Header.Get("If-None-Match"); inm != first.State.ETag {
			t.Errorf("If-None-Match = %q, want %q", inm, first.State.ETag)
		}
	})
	t.Run("If-Modified-Since alone gets a 304", func(t *testing.T) {
		feed := Feed{Name: "firehol", URL: srv.URL + "/firehol_level1.netset", SourceFormat: FormatFreetext}
		res, err := f.Fetch(ctx, feed, FetchState{LastModified: "Sat, 22 Aug 2026 03:00:00 GMT"})
		if err != nil || !res.NotModified {
			t.Fatalf("got %+v, %v; want NotModified", res, err)
		}
	})
	t.Run("an unchanged body without validators is not parsed again", func(t *testing.T) {
		feed := Feed{Name: "ipsum", URL: srv.URL + "/nocache/ipsum.txt", SourceFormat: FormatFreetext}
		first, err := f.Fetch(ctx, feed, FetchState{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(first.Result.Prefixes, wantIpsum.Prefixes) {
			t.Fatalf("%d prefixes, want %d", len(first.Result.Prefixes), len(wantIpsum.Prefixes))
		}
		second, err := f.Fetch(ctx, feed, first.State)
		if err != nil || !second.NotModified || second.Result != nil {
			t.Fatalf("got %+v, %v; want NotModified by content hash", second, err)
		}
	})
	t.Run("a gzip Content-Encoding is decoded", func(t *testing.T) {
		res, err := f.Fetch(ctx, Feed{Name: "ipsum", URL: srv.URL + "/gzip/ipsum.txt", SourceFormat: FormatFreetext}, FetchState{})
		if err != nil || !slices.Equal(res.Result.Prefixes, wantIpsum.Prefixes) {
			t.Fatalf("got %v, %v", res, err)
		}
	})
	t.Run("a .gz body is decompressed and hashes like the plain list", func(t *testing.T) {
		res, err := f.Fetch(ctx, Feed{Name: "ipsum", URL: srv.URL + "/ipsum.txt.gz", SourceFormat: FormatFreetext}, FetchState{})
		if err != nil || !slices.Equal(res.Result.Prefixes, wantIpsum.Prefixes) {
			t.Fatalf("got %v, %v", res, err)
		}
		sum := sha256.Sum256(ipsum)
		if res.State.ContentHash != hex.EncodeToString(sum[:]) {
			t.Errorf("hash %s is not the plain list's", res.State.ContentHash)
		}
	})
	t.Run("a csv feed uses its settings", func(t *testing.T) {
		feed := Feed{Name: "feodo", URL: srv.URL + "/ipblocklist.csv", SourceFormat: FormatCSV,
			Settings: Settings{CSV: CSVSettings{Value: "2", Delimiter: ","}}}
		res, err := f.Fetch(ctx, feed, FetchState{})
		if err != nil || len(res.Result.Prefixes) == 0 || res.Result.Malformed != 0 {
			t.Fatalf("got %+v, %v", res, err)
		}
	})
	t.Run("excluderegex drops matching entries as in MISP", func(t *testing.T) {
		feed := Feed{Name: "et", URL: srv.URL + "/compromised-ips.txt", SourceFormat: FormatFreetext}
		all, err := f.Fetch(ctx, feed, FetchState{})
		if err != nil {
			t.Fatal(err)
		}
		feed.Settings.Common.ExcludeRegex = `/^10[0-9]\./i`
		res, err := f.Fetch(ctx, feed, FetchState{})
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(`^10[0-9]\.`)
		excluded := 0
		for _, p := range all.Result.Prefixes {
			if re.MatchString(p.Addr().String()) {
				excluded++
			}
		}
		for _, p := range res.Result.Prefixes {
			if re.MatchString(p.Addr().String()) {
				t.Fatalf("%v was not excluded", p)
			}
		}
		if excluded == 0 || len(res.Result.Prefixes) != len(all.Result.Prefixes)-excluded {
			t.Errorf("%d of %d left, %d excluded", len(res.Result.Prefixes), len(all.Result.Prefixes), excluded)
		}
	})
	t.Run("the feed's headers are sent", func(t *testing.T) {
		feed := Feed{Name: "auth", URL: srv.URL + "/auth", SourceFormat: FormatFreetext,
			Headers: "Authorization: s3cret\r\n\nX-Feed-Client: rampart test\n"}
		res, err := f.Fetch(ctx, feed, FetchState{})
		if err != nil || len(res.Result.Prefixes) != 1 {
			t.Fatalf("got %+v, %v", res, err)
		}
	})

	errorCases := []struct {
		name  string
		feed  Feed
		opts  FetchOptions
		check func(error) bool
	}{
		{"a 500 is an error with the status", Feed{URL: srv.URL + "/error", SourceFormat: FormatFreetext}, FetchOptions{},
			func(err error) bool {
				var se *StatusError
				return errors.As(err, &se) && se.Code == 500 && strings.Contains(err.Error(), "500")
			}},
		{"a 404 is an error", Feed{URL: srv.URL + "/missing.txt", SourceFormat: FormatFreetext}, FetchOptions{},
			func(err error) bool { var se *StatusError; return errors.As(err, &se) && se.Code == 404 }},
		{"missing headers get the server's 403", Feed{URL: srv.URL + "/auth", SourceFormat: FormatFreetext}, FetchOptions{},
			func(err error) bool { var se *StatusError; return errors.As(err, &se) && se.Code == 403 }},
		{"a body over the size limit is an error, not a truncated list", Feed{URL: srv.URL + "/big.txt", SourceFormat: FormatFreetext},
			FetchOptions{MaxBytes: 1000}, func(err error) bool { return errors.Is(err, ErrTooLarge) }},
		{"a gzip body that inflates over the limit is an error", Feed{URL: srv.URL + "/bomb.txt.gz", SourceFormat: FormatFreetext},
			FetchOptions{MaxBytes: 100_000}, func(err error) bool { return errors.Is(err, ErrTooLarge) }},
		{"a server that does not answer times out", Feed{URL: srv.URL + "/slow", SourceFormat: FormatFreetext},
			FetchOptions{Timeout: 50 * time.Millisecond}, func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		{"a malformed headers field is an error that does not echo it", Feed{URL: srv.URL + "/auth", SourceFormat: FormatFreetext, Headers: "s3cret-token"},
			FetchOptions{}, func(err error) bool { return err != nil && !strings.Contains(err.Error(), "s3cret") }},
		{"an unknown format is an error", Feed{URL: srv.URL + "/ipsum.txt", SourceFormat: "stix"}, FetchOptions{},
			func(err error) bool { return errors.Is(err, ErrFormat) }},
		{"an unknown scheme is an error", Feed{URL: "ftp://example.com/list.txt", SourceFormat: FormatFreetext}, FetchOptions{},
			func(err error) bool { return errors.Is(err, ErrSource) }},
		{"bad csv settings are an error", Feed{URL: srv.URL + "/ipblocklist.csv", SourceFormat: FormatCSV,
			Settings: Settings{CSV: CSVSettings{Value: "x"}}}, FetchOptions{}, func(err error) bool { return errors.Is(err, ErrCSVSettings) }},
		{"a bad excluderegex is an error", Feed{URL: srv.URL + "/ipsum.txt", SourceFormat: FormatFreetext,
			Settings: Settings{Common: CommonSettings{ExcludeRegex: "/(/"}}}, FetchOptions{}, func(err error) bool { return err != nil }},
	}
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			tc.feed.Name = "failing"
			tc.opts.Timeout = cmp.Or(tc.opts.Timeout, 30*time.Second)
			res, err := newTestFetcher(srv, tc.opts).Fetch(ctx, tc.feed, FetchState{})
			if res != nil || !tc.check(err) {
				t.Fatalf("got %+v, %v", res, err)
			}
			if !strings.Contains(err.Error(), `fetch feed "failing"`) {
				t.Errorf("error %q does not name the feed", err)
			}
		})
	}
	t.Run("a cancelled context stops the fetch", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		res, err := f.Fetch(cctx, Feed{Name: "x", URL: srv.URL + "/ipsum.txt", SourceFormat: FormatFreetext}, FetchState{})
		if res != nil || !errors.Is(err, context.Canceled) {
			t.Fatalf("got %+v, %v", res, err)
		}
	})
}

func TestFetchLocalSources(t *testing.T) {
	path := shared.Data(t, "feeds", "firehol", "tor_exits.ipset")
	want, err := ParseFreetext(bytes.NewReader(readShared(t, "feeds", "firehol", "tor_exits.ipset")))
	if err != nil {
		t.Fatal(err)
	}
	gzPath := filepath.Join(t.TempDir(), "tor.ipset.gz")
	if err := os.WriteFile(gzPath, gz(t, readShared(t, "feeds", "firehol", "tor_exits.ipset")), 0o600); err != nil {
		t.Fatal(err)
	}
	f := NewFetcher(FetchOptions{}, slog.New(slog.DiscardHandler))
	for _, src := range []string{path, "file://" + path, gzPath} {
		t.Run("the source "+filepath.Base(src)+" is read, then unchanged by hash", func(t *testing.T) {
			feed := Feed{Name: "tor", URL: src, SourceFormat: FormatFreetext}
			res, err := f.Fetch(t.Context(), feed, FetchState{})
			if err != nil || !slices.Equal(res.Result.Prefixes, want.Prefixes) {
				t.Fatalf("got %v, %v", res, err)
			}
			again, err := f.Fetch(t.Context(), feed, res.State)
			if err != nil || !again.NotModified {
				t.Fatalf("got %+v, %v; want NotModified", again, err)
			}
		})
	}
	t.Run("a missing file is an error", func(t *testing.T) {
		res, err := f.Fetch(t.Context(), Feed{Name: "x", URL: filepath.Join(t.TempDir(), "none.txt"), SourceFormat: FormatFreetext}, FetchState{})
		if res != nil || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("got %+v, %v", res, err)
		}
	})
	t.Run("a feed defined in MISP may not read local files", func(t *testing.T) {
		for _, src := range []string{path, "file://" + path} {
			res, err := f.Fetch(t.Context(), Feed{Name: "x", URL: src, SourceFormat: FormatFreetext, Origin: "misp"}, FetchState{})
			if res != nil || !errors.Is(err, ErrSource) {
				t.Fatalf("%s: got %+v, %v", src, res, err)
			}
		}
	})
}

// mispFeedFiles returns the TweetFeed sample as a feed directory: its event
// files, and its manifest cut down to the events the sample holds.
func mispFeedFiles(t *testing.T) (map[string][]byte, []*Event) {
	t.Helper()
	dir := shared.Data(t, "feeds", "misp-feed", "tweetfeed")
	var manifest map[string]json.RawMessage
	if err := json.Unmarshal(readShared(t, "feeds", "misp-feed", "tweetfeed", "manifest.json"), &manifest); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	trimmed := map[string]json.RawMessage{}
	var events []*Event
	for id, entry := range manifest {
		b, err := os.ReadFile(filepath.Join(dir, id+".json"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		ev, err := ParseEvent(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
		files["feed/"+id+".json"] = b
		trimmed[id] = entry
	}
	if len(events) < 5 {
		t.Fatalf("only %d events in the sample", len(events))
	}
	m, err := json.Marshal(trimmed)
	if err != nil {
		t.Fatal(err)
	}
	files["feed/manifest.json"] = m
	return files, events
}

func TestFetchMISPFeed(t *testing.T) {
	noLeaks(t)
	files, events := mispFeedFiles(t)
	want := eventsResult(events)
	srv := newFeedServer(t, files)
	f := newTestFetcher(srv, FetchOptions{Concurrency: 3})
	feed := Feed{Name: "tweetfeed", URL: srv.URL + "/feed/", SourceFormat: FormatMISP}

	t.Run("the manifest and every event are fetched, and the addresses united", func(t *testing.T) {
		before := srv.requests.Load()
		res, err := f.Fetch(t.Context(), feed, FetchState{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.Result.Prefixes, want.Prefixes) || len(want.Prefixes) == 0 {
			t.Fatalf("%d prefixes, want %d", len(res.Result.Prefixes), len(want.Prefixes))
		}
		if len(res.Result.Others) == 0 {
			t.Error("no domains, URLs or hashes kept")
		}
		if n := srv.requests.Load() - before; n != int64(len(events)+1) {
			t.Errorf("%d requests, want %d", n, len(events)+1)
		}
		t.Run("and an unchanged manifest costs one request", func(t *testing.T) {
			before := srv.requests.Load()
			again, err := f.Fetch(t.Context(), feed, res.State)
			if err != nil || !again.NotModified || srv.requests.Load()-before != 1 {
				t.Fatalf("got %+v, %v after %d requests", again, err, srv.requests.Load()-before)
			}
		})
	})
	t.Run("a missing event file fails the whole fetch", func(t *testing.T) {
		broken := map[string][]byte{}
		for k, v := range files {
			broken[k] = v
		}
		for k := range broken {
			if k != "feed/manifest.json" {
				delete(broken, k)
				break
			}
		}
		srv2 := newFeedServer(t, broken)
		res, err := newTestFetcher(srv2, FetchOptions{}).Fetch(t.Context(), Feed{Name: "tweetfeed", URL: srv2.URL + "/feed", SourceFormat: FormatMISP}, FetchState{})
		var se *StatusError
		if res != nil || !errors.As(err, &se) || se.Code != 404 {
			t.Fatalf("got %+v, %v", res, err)
		}
	})
	t.Run("a manifest over the event limit is refused", func(t *testing.T) {
		res, err := newTestFetcher(srv, FetchOptions{MaxEvents: 2}).Fetch(t.Context(), feed, FetchState{})
		if res != nil || !errors.Is(err, ErrTooManyEvents) {
			t.Fatalf("got %+v, %v", res, err)
		}
	})
}
