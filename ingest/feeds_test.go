package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/misp"
)

func TestFeedLeavingTheSetEndsItsListings(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after []misp.Feed
	}{
		{"a feed removed from its origin ends its listings", nil},
		{"a feed disabled in its origin ends its listings", []misp.Feed{func() misp.Feed { f := feed("f", ""); f.Enabled = false; return f }()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t, harnessOptions{})
			srv := newFeedServer(t)
			srv.set("/feed", sample(t, "feeds", "firehol", "et_compromised.ipset"))
			h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("f", srv.URL+"/feed"), feed("other", srv.URL+"/feed")})
			if err := h.eng.Start(ctx); err != nil {
				t.Fatal(err)
			}
			h.eng.SyncAll(ctx, nil)
			n := len(h.listings(t, "f"))
			addr := h.firstListed(t, "f")
			h.clock.advance(time.Hour)

			for i := range tc.after {
				tc.after[i].URL = srv.URL + "/feed"
			}
			h.eng.SetFeeds(OriginConfig, append(tc.after, feed("other", srv.URL+"/feed")))
			if _, err := h.eng.SyncFeed(ctx, "f"); !errors.Is(err, ErrUnknownFeed) && !errors.Is(err, ErrFeedInactive) {
				t.Errorf("SyncFeed of a feed out of the set: err = %v", err)
			}
			reports := h.eng.SyncAll(ctx, nil)
			if len(reports) != 1 || reports[0].Feed != "other" {
				t.Errorf("SyncAll synced %+v, want only other", reports)
			}
			if got := len(h.listings(t, "f")); got != 0 {
				t.Errorf("%d listings left", got)
			}
			eps := h.episodes(t, "f")
			if len(eps) != n {
				t.Fatalf("%d episodes, want %d", len(eps), n)
			}
			if !eps[0].Ended.Equal(t0.Add(time.Hour)) {
				t.Errorf("episode ended %v", eps[0].Ended)
			}
			if src := h.source(t, "f"); src.Entries != 0 {
				t.Errorf("source entries = %d", src.Entries)
			}
			a := h.svc.Check(addr)
			if a.IsActive && len(a.Blacklists) == 1 && a.Blacklists[0] == "f" {
				t.Errorf("retired feed still active in the index: %+v", a)
			}
			if len(h.listings(t, "other")) != n {
				t.Errorf("the other feed lost listings")
			}
		})
	}
}

func TestRestartRetiresFeedsNoLongerConfigured(t *testing.T) {
	ctx := context.Background()
	srv := newFeedServer(t)
	srv.set("/feed", sample(t, "feeds", "firehol", "et_compromised.ipset"))
	h := newHarness(t, harnessOptions{})
	h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("static", srv.URL+"/feed")})
	h.eng.SetFeeds(OriginMISP, []misp.Feed{feed("from-misp", srv.URL+"/feed")})
	h.eng.SyncAll(ctx, nil)

	// A restart with an empty config: the static feed's listings end at
	// Start; the MISP feed's stay until MISP's feed list says otherwise.
	h2 := newHarness(t, harnessOptions{dbPath: h.path})
	h2.eng.SetFeeds(OriginConfig, nil)
	if err := h2.eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(h2.listings(t, "static")); n != 0 {
		t.Errorf("static feed kept %d listings after leaving the config", n)
	}
	if n := len(h2.listings(t, "from-misp")); n == 0 {
		t.Error("MISP feed lost its listings before MISP was polled")
	}
	h2.eng.SetFeeds(OriginMISP, nil)
	h2.eng.SyncAll(ctx, nil)
	if n := len(h2.listings(t, "from-misp")); n != 0 {
		t.Errorf("MISP feed kept %d listings after leaving MISP's list", n)
	}
}

func TestFeedDefinitionsAcrossOrigins(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	local := feed("local-on-misp", "/var/www/feed.txt")
	local.InputSource = "local"
	fileURL := feed("file-from-misp", "file:///etc/passwd")
	badFormat := feed("stix", "https://example.org/x")
	badFormat.SourceFormat = "stix"
	h.eng.SetFeeds(OriginMISP, []misp.Feed{feed("shared", "https://misp.example/shared"), local, fileURL, feed("misp-only", "https://misp.example/m")})
	h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("shared", "https://config.example/shared"), badFormat})

	byName := map[string][]FeedStatus{}
	for _, f := range h.eng.Feeds() {
		byName[f.Name] = append(byName[f.Name], f)
	}
	for _, tc := range []struct {
		name, feed, origin string
		enabled            bool
		note               string
	}{
		{"a name defined in config and MISP is the config's", "shared", OriginConfig, true, ""},
		{"a feed from MISP keeps its own name", "misp-only", OriginMISP, true, ""},
		{"a MISP feed with local input is skipped with a reason", "local-on-misp", OriginMISP, false, "input_source local"},
		{"a MISP feed with a file url is skipped", "file-from-misp", OriginMISP, false, "http or https"},
		{"an unsupported format is skipped", "stix", OriginConfig, false, "unsupported source_format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := byName[tc.feed]
			if len(fs) == 0 {
				t.Fatalf("feed %s missing from Feeds()", tc.feed)
			}
			f := fs[0]
			if f.Origin != tc.origin || f.Enabled != tc.enabled || !strings.Contains(f.Note, tc.note) {
				t.Errorf("status = %+v", f)
			}
		})
	}
	t.Run("the duplicate from MISP is listed as skipped after the kept one", func(t *testing.T) {
		fs := byName["shared"]
		if len(fs) != 2 || fs[1].Origin != OriginMISP || fs[1].Enabled || !strings.Contains(fs[1].Note, "already defined by origin config") {
			t.Errorf("statuses = %+v", fs)
		}
	})
	t.Run("only the synced feeds have refresh jobs", func(t *testing.T) {
		var names []string
		for _, j := range h.eng.Jobs() {
			if strings.HasPrefix(j.Name, feedJobPrefix) {
				names = append(names, j.Name)
			}
		}
		if strings.Join(names, ",") != "feed:misp-only,feed:shared" {
			t.Errorf("feed jobs = %v", names)
		}
	})
}

func TestFeedStatusJSON(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("f", "https://user:hunter22@example.org/list.txt?apikey=s3cr3tv4lue&format=txt")})
	b, err := json.Marshal(h.eng.Feeds())
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{`"name":"f"`, `"source_format":"freetext"`, `"origin":"config"`, `"enabled":true`, `"entries":0`, `"last_error":""`, `format=txt`} {
		if !strings.Contains(got, want) {
			t.Errorf("JSON %s lacks %s", got, want)
		}
	}
	for _, secret := range []string{"hunter22", "s3cr3tv4lue", "user"} {
		if strings.Contains(got, secret) {
			t.Errorf("JSON %s leaks %q", got, secret)
		}
	}
}

func TestRedaction(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"a plain url is unchanged", "https://example.org/feed.txt", "https://example.org/feed.txt"},
		{"userinfo is replaced", "https://alice:pw@example.org/f", "https://REDACTED@example.org/f"},
		{"a token as user is replaced", "https://ghp_abcdef@example.org/f", "https://REDACTED@example.org/f"},
		{"secret query values are replaced, others kept", "https://example.org/f?api_key=abc&limit=10&Token=xyz", "https://example.org/f?api_key=REDACTED&limit=10&Token=REDACTED"},
		{"a local path is unchanged", "/srv/feeds/list.txt", "/srv/feeds/list.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := redactURL(tc.in); got != tc.want {
				t.Errorf("redactURL(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	t.Run("an error quoting the url loses its secrets", func(t *testing.T) {
		raw := "https://bob:pa55word@example.org/f?key=k3y123"
		msg := `Get "https://bob:***@example.org/f?key=k3y123": dial tcp: refused; password pa55word`
		got := redactIn(msg, raw)
		for _, s := range []string{"bob", "pa55word", "k3y123"} {
			if strings.Contains(got, s) {
				t.Errorf("redactIn left %q in %q", s, got)
			}
		}
	})
}

func TestFeedComingBackIsListedAgain(t *testing.T) {
	for _, tc := range []struct {
		name         string
		noValidators bool
	}{
		{"a feed served with an ETag is listed again when it returns unchanged", false},
		{"a feed without validators is listed again when it returns unchanged", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			srv := newFeedServer(t)
			srv.noValidators = tc.noValidators
			srv.set("/feed", sample(t, "feeds", "firehol", "et_compromised.ipset"))
			h := newHarness(t, harnessOptions{})
			h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("f", srv.URL+"/feed")})
			if err := h.eng.Start(ctx); err != nil {
				t.Fatal(err)
			}
			h.eng.SyncAll(ctx, nil)
			n := len(h.listings(t, "f"))
			addr := h.firstListed(t, "f")

			// A run with the feed left out of the configuration ends its
			// listings; the next run has it again, and the file is the same.
			h2 := newHarness(t, harnessOptions{dbPath: h.path})
			h2.eng.SetFeeds(OriginConfig, nil)
			if err := h2.eng.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if got := len(h2.listings(t, "f")); got != 0 {
				t.Fatalf("%d listings left after the feed left the configuration", got)
			}
			h3 := newHarness(t, harnessOptions{dbPath: h.path})
			h3.eng.SetFeeds(OriginConfig, []misp.Feed{feed("f", srv.URL+"/feed")})
			if err := h3.eng.Start(ctx); err != nil {
				t.Fatal(err)
			}
			reports := h3.eng.SyncAll(ctx, nil)
			if len(reports) != 1 || reports[0].Err != nil || reports[0].NotModified || reports[0].Added != n {
				t.Errorf("sync of the returning feed: %+v, want %d added", reports, n)
			}
			if got := len(h3.listings(t, "f")); got != n {
				t.Errorf("%d listings after the feed came back, want %d", got, n)
			}
			if a := h3.svc.Check(addr); !a.IsActive {
				t.Errorf("%s is not active after its feed came back: %+v", addr, a)
			}
		})
	}
}

func TestFailedSyncErrorCarriesNoSecret(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{})
	url := strings.Replace(closedURL(t), "http://", "http://bob:pa55word@", 1) + "?apikey=k3y123&x=1"
	h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("f", url)})
	rep, err := h.eng.SyncFeed(ctx, "f")
	if err == nil {
		t.Fatal("a sync from a closed port succeeded")
	}
	for _, got := range []string{err.Error(), rep.Err.Error()} {
		for _, s := range []string{"bob", "pa55word", "k3y123"} {
			if strings.Contains(got, s) {
				t.Errorf("the returned error leaks %q: %s", s, got)
			}
		}
		if !strings.Contains(got, "connection refused") {
			t.Errorf("the returned error lost its cause: %s", got)
		}
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("the redacted error no longer wraps its cause: %v", err)
	}
}
