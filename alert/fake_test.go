package alert

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSlack is a stand-in for Slack's Web API method chat.postMessage, as
// documented at https://docs.slack.dev/reference/methods/chat.postMessage:
// POST with a form or JSON body, the token in an "Authorization: Bearer"
// header or a "token" form field, HTTP 200 with {"ok": true, "channel",
// "ts", "message"} on success and {"ok": false, "error": "..."} on failure
// (invalid_auth, not_authed, channel_not_found, no_text), and HTTP 429 with
// a Retry-After header in seconds when rate limited.
type fakeSlack struct {
	t       *testing.T
	srv     *httptest.Server
	token   string
	channel string
	clock   *fakeClock
	release chan struct{} // closed to let hung requests go

	mu         sync.Mutex
	calls      []time.Time // the fake time of every request
	got        []posted    // messages accepted
	limitNext  int         // answer the next requests with 429
	retryAfter string
	failNext   int    // answer the next requests with 500
	hang       bool   // never answer
	errorNext  string // answer the next request with this Slack error
}

// posted is one accepted message: where, when (by the fake clock), its
// notification text and its blocks, each as "type: text".
type posted struct {
	Channel string
	At      time.Time
	Text    string
	Blocks  []string
}

const (
	testToken   = "xoxb-123456789012-1234567890123-SeCrEtTeStToKeNvAlUe"
	testChannel = "C0ALERTS"
)

func newFakeSlack(t *testing.T, clock *fakeClock) *fakeSlack {
	f := &fakeSlack{t: t, token: testToken, channel: testChannel, clock: clock, release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/chat.postMessage", f.postMessage)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		close(f.release)
		f.srv.Close()
	})
	return f
}

// url is the API base URL to configure (alerts.slack.api_url).
func (f *fakeSlack) url() string { return f.srv.URL + "/api/" }

func (f *fakeSlack) postMessage(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls = append(f.calls, f.clock.Now())
	hang := f.hang
	limited := f.limitNext > 0
	if limited {
		f.limitNext--
	}
	failed := f.failNext > 0
	if failed {
		f.failNext--
	}
	slackErr := f.errorNext
	f.errorNext = ""
	f.mu.Unlock()

	switch {
	case hang:
		select {
		case <-r.Context().Done():
		case <-f.release:
		}
		return
	case r.Method != http.MethodPost:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	case limited:
		w.Header().Set("Retry-After", f.retryAfter)
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"ok":false,"error":"ratelimited"}`)
		return
	case failed:
		http.Error(w, "<html>internal error</html>", http.StatusInternalServerError)
		return
	}

	var req struct {
		Token   string            `json:"token"`
		Channel string            `json:"channel"`
		Text    string            `json:"text"`
		Blocks  []json.RawMessage `json:"blocks"`
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			f.reply(w, map[string]any{"ok": false, "error": "invalid_json"})
			return
		}
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			f.reply(w, map[string]any{"ok": false, "error": "invalid_form_data"})
			return
		}
		req.Token, req.Channel, req.Text = r.PostForm.Get("token"), r.PostForm.Get("channel"), r.PostForm.Get("text")
		if b := r.PostForm.Get("blocks"); b != "" {
			if err := json.Unmarshal([]byte(b), &req.Blocks); err != nil {
				f.reply(w, map[string]any{"ok": false, "error": "invalid_blocks_format"})
				return
			}
		}
	default:
		f.reply(w, map[string]any{"ok": false, "error": "invalid_form_data"})
		return
	}
	token := req.Token
	if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		token = h
	}
	switch {
	case token == "":
		f.reply(w, map[string]any{"ok": false, "error": "not_authed"})
		return
	case token != f.token:
		f.reply(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	case slackErr != "":
		f.reply(w, map[string]any{"ok": false, "error": slackErr})
		return
	case req.Channel != f.channel:
		f.reply(w, map[string]any{"ok": false, "error": "channel_not_found"})
		return
	case req.Text == "" && len(req.Blocks) == 0:
		f.reply(w, map[string]any{"ok": false, "error": "no_text"})
		return
	}
	p := posted{Channel: req.Channel, At: f.clock.Now(), Text: req.Text}
	for _, raw := range req.Blocks {
		var b struct {
			Type string `json:"type"`
			Text struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"text"`
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			f.reply(w, map[string]any{"ok": false, "error": "invalid_blocks"})
			return
		}
		p.Blocks = append(p.Blocks, b.Type+": "+b.Text.Text)
	}
	f.mu.Lock()
	f.got = append(f.got, p)
	ts := fmt.Sprintf("1700000000.%06d", len(f.got))
	f.mu.Unlock()
	f.reply(w, map[string]any{"ok": true, "channel": req.Channel, "ts": ts,
		"message": map[string]any{"type": "message", "text": req.Text, "ts": ts}})
}

func (f *fakeSlack) reply(w http.ResponseWriter, body map[string]any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if err := json.NewEncoder(w).Encode(body); err != nil {
		f.t.Errorf("fake slack: encode reply: %v", err)
	}
}

func (f *fakeSlack) messages() []posted {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]posted(nil), f.got...)
}

func (f *fakeSlack) callTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.calls...)
}

func (f *fakeSlack) set(fn func(f *fakeSlack)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// fakeClock is the injected clock: it moves only when a test says so.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// redirector answers every request with a redirect to target, so a test
// can check that the token does not follow it.
func redirector(t *testing.T, target string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := url.Parse(target)
		u.Path = r.URL.Path
		http.Redirect(w, r, u.String(), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	return srv
}
