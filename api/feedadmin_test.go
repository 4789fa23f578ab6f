package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/ingest"
	"github.com/rampart-ip/rampart/misp"
	"github.com/rampart-ip/rampart/reputation"
	"github.com/rampart-ip/rampart/store"
	"github.com/rampart-ip/rampart/store/sqlite"
)

// engineFeeds maps the engine's errors to this package's, as the command's
// wiring does.
type engineFeeds struct{ eng *ingest.Engine }

func (m engineFeeds) mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ingest.ErrInvalidFeed):
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	case errors.Is(err, ingest.ErrFeedExists), errors.Is(err, ingest.ErrFeedNotEditable):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	case errors.Is(err, ingest.ErrUnknownFeed):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

func (m engineFeeds) AddFeed(ctx context.Context, f misp.Feed) (any, error) {
	st, err := m.eng.AddFeed(ctx, f)
	return st, m.mapErr(err)
}

func (m engineFeeds) ReplaceFeed(ctx context.Context, name string, f misp.Feed) (any, error) {
	st, err := m.eng.ReplaceFeed(ctx, name, f)
	return st, m.mapErr(err)
}

func (m engineFeeds) DeleteFeed(ctx context.Context, name string) error {
	return m.mapErr(m.eng.DeleteFeed(ctx, name))
}

// feedRig is a real engine over a SQLite file, served by a Server.
type feedRig struct {
	h    http.Handler
	eng  *ingest.Engine
	st   store.Store
	path string
	feed *httptest.Server
	stop func()
	svc  *reputation.Service
}

// Public addresses the test feed lists.
const (
	feedHostA = "1.2.3.4"
	feedHostB = "5.6.7.8"
)

func newFeedRig(t *testing.T, path string) *feedRig {
	t.Helper()
	ctx := context.Background()
	if path == "" {
		path = filepath.Join(t.TempDir(), "rampart.db")
	}
	st, err := sqlite.Open(ctx, path, discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	feedSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/a.txt":
			fmt.Fprintf(w, "# test feed\n%s\n%s\n", feedHostA, feedHostB)
		case "/b.txt":
			fmt.Fprintf(w, "%s\n", feedHostB)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(feedSrv.Close)
	svc := reputation.NewService(reputation.ServiceOptions{
		Model: reputation.NewModel(config.Default().Scoring), CacheSize: -1, Logger: discard,
	})
	eng := ingest.NewEngine(ingest.EngineOptions{Store: st, Service: svc, Logger: discard})
	eng.SetFeeds(ingest.OriginConfig, []misp.Feed{{
		Name: "from_config", Provider: "test", URL: feedSrv.URL + "/b.txt", SourceFormat: misp.FormatFreetext, Enabled: true,
	}})
	if err := eng.LoadAPIFeeds(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := eng.Run(runCtx); err != nil {
			t.Errorf("engine run: %v", err)
		}
	})
	stop := sync.OnceFunc(func() { cancel(); wg.Wait() })
	t.Cleanup(stop)
	eventually(t, "engine ready", eng.Ready)
	s := newServer(t, func(o *Options) {
		o.Auth = testKeys(true)
		o.Getenv = getenv
		o.Service = svc
		o.Ready = eng.Ready
		o.Feeds = FeedListerFunc(func() any { return eng.Feeds() })
		o.FeedAdmin = engineFeeds{eng}
	})
	return &feedRig{h: s.Handler(), eng: eng, st: st, path: path, feed: feedSrv, stop: stop, svc: svc}
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *feedRig) feedEntries(t testing.TB, name string) (int, bool) {
	t.Helper()
	for _, f := range r.eng.Feeds() {
		if f.Name == name {
			return f.Entries, true
		}
	}
	return 0, false
}

// listedBy reports whether the served index has an open listing of addr
// by source (not only a past one).
func (r *feedRig) listedBy(t testing.TB, addr, source string) bool {
	t.Helper()
	for _, m := range r.svc.History(netip.MustParseAddr(addr)) {
		if m.Source != nil && m.Source.Name == source && m.Ended.IsZero() {
			return true
		}
	}
	return false
}

const admin = "Authorization"

func TestFeedManagement(t *testing.T) {
	r := newFeedRig(t, "")
	auth := "Bearer " + adminKey
	body := fmt.Sprintf(`{"Feed": {"id": "7", "name": "api_feed", "provider": "ops", "url": %q,
		"source_format": "freetext", "enabled": "1", "settings": "{\"common\":{\"excluderegex\":\"\"}}",
		"distribution": "3", "caching_enabled": true, "headers": "X-Key: s3cret-header"},
		"Tag": {"name": "tlp:white"}}`, r.feed.URL+"/a.txt?apikey=s3cret-query")

	t.Run("an admin adds a MISP-exported feed and it syncs", func(t *testing.T) {
		w := do(t, r.h, http.MethodPost, "/api/v1/feeds", body, admin, auth)
		if w.Code != http.StatusCreated {
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		if b := w.Body.String(); strings.Contains(b, "s3cret") || !strings.Contains(b, `"origin":"api"`) {
			t.Errorf("answer leaks a secret or lacks the origin: %s", b)
		}
		eventually(t, "the added feed synced", func() bool { n, _ := r.feedEntries(t, "api_feed"); return n == 2 })
		eventually(t, "the index answering from the added feed", func() bool { return r.listedBy(t, feedHostA, "api_feed") })
		list := do(t, r.h, http.MethodGet, "/api/v1/feeds", "")
		if !strings.Contains(list.Body.String(), `"name":"api_feed"`) || strings.Contains(list.Body.String(), "s3cret") {
			t.Errorf("GET /api/v1/feeds: %s", list.Body.String())
		}
	})

	t.Run("roles and input are checked", func(t *testing.T) {
		cases := []struct {
			name, method, target, body, key string
			code                            int
			want                            string
		}{
			{"no key is refused", http.MethodPost, "/api/v1/feeds", body, "", http.StatusUnauthorized, "admin key"},
			{"a query key is forbidden", http.MethodPost, "/api/v1/feeds", body, queryKey, http.StatusForbidden, "needs admin"},
			{"a bouncer key may not delete", http.MethodDelete, "/api/v1/feeds/api_feed", "", bouncerKey, http.StatusForbidden, "needs admin"},
			{"the same name twice is a conflict", http.MethodPost, "/api/v1/feeds", body, adminKey, http.StatusConflict, "already defined"},
			{"a config feed's name is a conflict", http.MethodPost, "/api/v1/feeds",
				`{"name": "from_config", "url": "https://x.example/l", "source_format": "freetext"}`, adminKey, http.StatusConflict, "origin config"},
			{"bad JSON is a bad request", http.MethodPost, "/api/v1/feeds", `{"name": `, adminKey, http.StatusBadRequest, "not a JSON object"},
			{"unknown fields and bad types are all named", http.MethodPost, "/api/v1/feeds",
				`{"name": "x", "weigth": 1, "tags": "a", "enabled": "yes"}`, adminKey, http.StatusBadRequest, "enabled: not a boolean"},
			{"every validation problem is listed", http.MethodPost, "/api/v1/feeds",
				`{"name": "", "url": "gopher://h/", "source_format": "xml", "weight": 2, "refresh": "5s"}`, adminKey, http.StatusBadRequest, "refresh:"},
			{"a config feed cannot be replaced", http.MethodPut, "/api/v1/feeds/from_config",
				`{"url": "https://x.example/l", "source_format": "freetext"}`, adminKey, http.StatusConflict, "comes from the config file"},
			{"a config feed cannot be deleted", http.MethodDelete, "/api/v1/feeds/from_config", "", adminKey, http.StatusConflict, "comes from the config file"},
			{"an unknown feed cannot be replaced", http.MethodPut, "/api/v1/feeds/nope",
				`{"url": "https://x.example/l", "source_format": "freetext"}`, adminKey, http.StatusNotFound, "unknown feed"},
			{"an unknown feed cannot be deleted", http.MethodDelete, "/api/v1/feeds/nope", "", adminKey, http.StatusNotFound, "unknown feed"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var hdr []string
				if tc.key != "" {
					hdr = []string{admin, "Bearer " + tc.key}
				}
				w := do(t, r.h, tc.method, tc.target, tc.body, hdr...)
				wantError(t, w, tc.code, tc.want)
			})
		}
		w := do(t, r.h, http.MethodPost, "/api/v1/feeds", `{"name": "", "url": "gopher://h/", "source_format": "xml", "weight": 2}`, admin, auth)
		for _, want := range []string{"name:", "url:", "source_format:", "weight:"} {
			if !strings.Contains(w.Body.String(), want) {
				t.Errorf("validation answer lacks %q: %s", want, w.Body.String())
			}
		}
		w = do(t, r.h, http.MethodPost, "/api/v1/feeds", `{"name": "x", "weigth": 1, "tags": "a"}`, admin, auth)
		for _, want := range []string{"weigth: unknown field", "tags:"} {
			if !strings.Contains(w.Body.String(), want) {
				t.Errorf("decoding answer lacks %q: %s", want, w.Body.String())
			}
		}
	})

	t.Run("an admin replaces the feed", func(t *testing.T) {
		w := do(t, r.h, http.MethodPut, "/api/v1/feeds/api_feed",
			fmt.Sprintf(`{"provider": "ops", "url": %q, "source_format": "freetext", "enabled": true, "category": "scanner"}`, r.feed.URL+"/b.txt"),
			admin, auth)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		eventually(t, "the replaced feed synced", func() bool { n, _ := r.feedEntries(t, "api_feed"); return n == 1 })
		eventually(t, "the dropped address no longer listed by it", func() bool { return !r.listedBy(t, feedHostA, "api_feed") })
		cur, err := r.st.SourceListings(context.Background(), "api_feed")
		if err != nil || len(cur) != 1 || cur[0].Addr().String() != feedHostB {
			t.Errorf("replaced feed's listings: %v, %v; want only %s", cur, err, feedHostB)
		}
	})

	// A restart: a new engine on the same database.
	r.stop()
	r = newFeedRig(t, r.path)
	t.Run("a restart keeps the api feed", func(t *testing.T) {
		if n, ok := r.feedEntries(t, "api_feed"); !ok || n != 1 {
			t.Fatalf("after restart api_feed: defined %v with %d entries, want 1", ok, n)
		}
		if !r.listedBy(t, feedHostB, "api_feed") {
			t.Error("after restart the index does not answer from the api feed")
		}
	})

	t.Run("an admin deletes the feed and its listings end", func(t *testing.T) {
		w := do(t, r.h, http.MethodDelete, "/api/v1/feeds/api_feed", "", admin, auth)
		if w.Code != http.StatusNoContent {
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		if _, ok := r.feedEntries(t, "api_feed"); ok {
			t.Error("deleted feed still listed in feeds")
		}
		if r.listedBy(t, feedHostB, "api_feed") {
			t.Error("deleted feed still answers in /ip")
		}
		cur, err := r.st.SourceListings(context.Background(), "api_feed")
		if err != nil || len(cur) != 0 {
			t.Errorf("deleted feed's listings: %v, %v; want none", cur, err)
		}
		wantError(t, do(t, r.h, http.MethodDelete, "/api/v1/feeds/api_feed", "", admin, auth), http.StatusNotFound, "unknown feed")
	})
}

func TestFeedManagementUnconfigured(t *testing.T) {
	h := newServer(t, func(o *Options) { o.Auth = testKeys(true); o.Getenv = getenv }).Handler()
	w := do(t, h, http.MethodPost, "/api/v1/feeds", `{"name": "x"}`, admin, "Bearer "+adminKey)
	wantError(t, w, http.StatusNotImplemented, "feed management")
}

func TestDecodeFeed(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want misp.Feed
	}{
		{"a bare object with Rampart's fields", `{"name": "a", "url": "https://x.example/l", "source_format": "csv",
			"settings": {"csv": {"value": "2", "delimiter": ","}}, "enabled": true, "weight": 0.5, "refresh": "1h", "tags": ["t"]}`,
			misp.Feed{Name: "a", URL: "https://x.example/l", SourceFormat: "csv", Enabled: true,
				Settings: misp.Settings{CSV: misp.CSVSettings{Value: "2", Delimiter: ","}}, Weight: ptr(0.5), Refresh: misp.Duration(time.Hour), Tags: []string{"t"}}},
		{"a MISP export with string flags and settings", `{"Feed": {"id": "1", "name": "b", "url": "https://x.example/m", "source_format": "freetext",
			"enabled": 0, "settings": "{\"csv\":{\"value\":\"\",\"delimiter\":\",\"}}", "origin": "config"}, "Tag": {"name": "osint"}}`,
			misp.Feed{Name: "b", URL: "https://x.example/m", SourceFormat: "freetext", Settings: misp.Settings{CSV: misp.CSVSettings{Delimiter: ","}}, Tags: []string{"osint"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeFeed([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	for _, in := range []string{`[]`, `null`, `"x"`, `{"Feed": 3}`, `{"enabled": 2}`, `{"lifetime": "forever"}`} {
		if _, err := DecodeFeed([]byte(in)); !errors.Is(err, ErrBadRequest) {
			t.Errorf("DecodeFeed(%s) err = %v, want ErrBadRequest", in, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }
