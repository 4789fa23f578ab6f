package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/store"
)

// okSyncer syncs any feed named blocklist_de and knows no other.
type okSyncer struct{}

func (okSyncer) SyncFeed(_ context.Context, name string) (any, error) {
	if name != "blocklist_de" {
		return nil, fmt.Errorf("sync %q: %w", name, store.ErrNotFound)
	}
	return map[string]any{"feed": name, "added": 3, "url": "https://user:hunter2@example.com/list"}, nil
}

// feedStatus is shaped like the sync engine's feed report.
type feedStatus struct {
	Name       string    `json:"name"`
	URL        string    `json:"url"`
	Headers    string    `json:"headers,omitempty"`
	Enabled    bool      `json:"enabled"`
	Entries    int       `json:"entries"`
	LastError  string    `json:"last_error"`
	LastSucc   time.Time `json:"last_success"`
	Settings   any       `json:"settings"`
	MISPAPIKey string    `json:"api_key,omitempty"`
}

func TestListFeedsRedactsSecrets(t *testing.T) {
	feeds := []feedStatus{
		{Name: "a", URL: "https://alice:s3cret-pass@feeds.example.com/list.txt", Enabled: true, Entries: 10},
		{Name: "b", URL: "https://feeds.example.com/x?apikey=s3cret-query&format=csv", Headers: "Authorization: s3cret-header"},
		{Name: "c", URL: "/var/lib/feeds/c.txt", LastError: `fetch "https://bob:s3cret-err@host.example/x": 503`},
		{Name: "d", URL: "https://feeds.example.com/plain.txt", MISPAPIKey: "s3cret-field", Settings: map[string]any{"token": "s3cret-nested"}},
	}
	h := newServer(t, func(o *Options) { o.Feeds = FeedListerFunc(func() any { return feeds }) }).Handler()
	w := do(t, h, http.MethodGet, "/api/v1/feeds", "")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body.String())
	}
	body := w.Body.String()
	if strings.Contains(body, "s3cret") {
		t.Errorf("a secret leaked: %s", body)
	}
	for _, want := range []string{"feeds.example.com/list.txt", "format=csv", "/var/lib/feeds/c.txt", "https://feeds.example.com/plain.txt", `"entries":10`, "503"} {
		if !strings.Contains(body, want) {
			t.Errorf("answer lacks %q: %s", want, body)
		}
	}
}

func TestRedactURL(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"a plain URL is kept", "https://example.com/a.txt", "https://example.com/a.txt"},
		{"user info is replaced", "https://u:p@example.com/a", "https://REDACTED@example.com/a"},
		{"a secret query parameter is replaced", "https://example.com/a?key=abc&x=1", "https://example.com/a?key=REDACTED&x=1"},
		{"a path is kept", "/srv/feeds/a.txt", "/srv/feeds/a.txt"},
		{"an unparsable string with an @ is replaced whole", "http://[::1:80@x", "REDACTED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := RedactURL(tc.in); got != tc.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestSyncFeed(t *testing.T) {
	failing := FeedSyncerFunc(func(context.Context, string) (any, error) {
		return nil, errors.New("fetch https://u:pw@x.example: connection refused")
	})
	ok := newServer(t, func(o *Options) { o.Auth = testKeys(true); o.Getenv = getenv; o.Admin = okSyncer{} }).Handler()
	bad := newServer(t, func(o *Options) { o.Auth = testKeys(true); o.Getenv = getenv; o.Admin = failing }).Handler()
	auth := []string{"X-Api-Key", adminKey}
	t.Run("a sync answers the redacted report", func(t *testing.T) {
		w := do(t, ok, http.MethodPost, "/api/v1/feeds/blocklist_de/sync", "", auth...)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"feed":"blocklist_de"`) || strings.Contains(w.Body.String(), "hunter2") {
			t.Errorf("status %d body %s", w.Code, w.Body.String())
		}
	})
	t.Run("an unknown feed is a 404", func(t *testing.T) {
		wantError(t, do(t, ok, http.MethodPost, "/api/v1/feeds/nope/sync", "", auth...), http.StatusNotFound, "not found")
	})
	t.Run("a failed sync is a 500 that does not leak its cause", func(t *testing.T) {
		w := do(t, bad, http.MethodPost, "/api/v1/feeds/blocklist_de/sync", "", auth...)
		wantError(t, w, http.StatusInternalServerError, "internal error")
		if strings.Contains(w.Body.String(), "pw") {
			t.Errorf("body leaks: %s", w.Body.String())
		}
	})
	for _, tc := range []struct {
		name string
		err  error
		code int
		want string
	}{
		{"a disabled feed is a 409", fmt.Errorf("%w: sync feed \"x\": feed is not enabled", ErrConflict), http.StatusConflict, "not enabled"},
		{"a failed fetch is a 502 that says why, URLs redacted",
			fmt.Errorf("%w: sync feed \"x\": fetch feed \"x\": Get \"https://u:pw-s3cret@feeds.example/l?apikey=q-s3cret&f=1\": connection refused", ErrUpstream),
			http.StatusBadGateway, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newServer(t, func(o *Options) {
				o.Auth = testKeys(true)
				o.Getenv = getenv
				o.Admin = FeedSyncerFunc(func(context.Context, string) (any, error) { return nil, tc.err })
			}).Handler()
			w := do(t, h, http.MethodPost, "/api/v1/feeds/x/sync", "", auth...)
			wantError(t, w, tc.code, tc.want)
			if strings.Contains(w.Body.String(), "s3cret") {
				t.Errorf("body leaks: %s", w.Body.String())
			}
		})
	}
}

func TestRedactURLsInText(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"a quoted URL keeps its quotes and the colon after it",
			`Get "http://bob:***@host.example:1/feed": refused`, `Get "http://REDACTED@host.example:1/feed": refused`},
		{"a secret query value is replaced without user info in the URL",
			`Get "http://host.example/f?apikey=q-s3cret&x=1": refused`, `Get "http://host.example/f?apikey=REDACTED&x=1": refused`},
		{"a sentence ending in a URL keeps its full stop", "see https://u:p@host.example/a.", "see https://REDACTED@host.example/a."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := redactURLsIn(tc.in); got != tc.want {
				t.Errorf("redactURLsIn(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestListJobs(t *testing.T) {
	jobs := []map[string]any{{"name": "sync blocklist_de", "every": "1h0m0s"}}
	h := newServer(t, func(o *Options) { o.Jobs = JobListerFunc(func() any { return jobs }) }).Handler()
	w := do(t, h, http.MethodGet, "/api/v1/jobs", "")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "sync blocklist_de") {
		t.Errorf("status %d body %s", w.Code, w.Body.String())
	}
	t.Run("a job's last error quoting a feed URL is redacted", func(t *testing.T) {
		jobs := []map[string]any{{"name": "feed:q", "last_error": `sync feed "q": Get "http://h.example/f?apikey=q-s3cret": refused`}}
		h := newServer(t, func(o *Options) { o.Jobs = JobListerFunc(func() any { return jobs }) }).Handler()
		w := do(t, h, http.MethodGet, "/api/v1/jobs", "")
		if w.Code != http.StatusOK || strings.Contains(w.Body.String(), "s3cret") || !strings.Contains(w.Body.String(), "refused") {
			t.Errorf("status %d body %s", w.Code, w.Body.String())
		}
	})
}

func TestHistory(t *testing.T) {
	h := newServer(t, nil).Handler()
	t.Run("an ended episode has its end and is not active", func(t *testing.T) {
		w := do(t, h, http.MethodGet, "/api/v1/ip/"+historicHost+"/history", "")
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		eps := decode(t, w)["episodes"].([]any)
		if len(eps) != 1 {
			t.Fatalf("episodes: %s", w.Body.String())
		}
		ep := eps[0].(map[string]any)
		if ep["source"] != "blocklist_de" || ep["prefix"] != historicHost+"/32" || ep["active"] != false ||
			ep["ended"] != testNow.Add(-48*time.Hour).Format(time.RFC3339) || ep["started"] != testNow.Add(-96*time.Hour).Format(time.RFC3339) {
			t.Errorf("episode %v", ep)
		}
	})
	t.Run("an open listing of a containing range has a null end and is active", func(t *testing.T) {
		w := do(t, h, http.MethodGet, "/api/v1/ip/"+rangeInside+"/history", "")
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		if !strings.Contains(w.Body.String(), `"ended":null`) {
			t.Errorf("no null end: %s", w.Body.String())
		}
		ep := decode(t, w)["episodes"].([]any)[0].(map[string]any)
		if ep["source"] != "spamhaus_drop" || ep["prefix"] != "1.10.16.0/20" || ep["active"] != true {
			t.Errorf("episode %v", ep)
		}
	})
	t.Run("an IPv6 address in the path works", func(t *testing.T) {
		w := do(t, h, http.MethodGet, "/api/v1/ip/"+listedV6+"/history", "")
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "2a10:c700::/29") {
			t.Errorf("status %d body %s", w.Code, w.Body.String())
		}
	})
	t.Run("an unlisted address has an empty history", func(t *testing.T) {
		w := do(t, h, http.MethodGet, "/api/v1/ip/"+cleanHost+"/history", "")
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"episodes":[]`) {
			t.Errorf("status %d body %s", w.Code, w.Body.String())
		}
	})
	t.Run("a malformed address is a 400", func(t *testing.T) {
		wantError(t, do(t, h, http.MethodGet, "/api/v1/ip/1.2.3.999/history", ""), http.StatusBadRequest, "1.2.3.999")
	})
}
