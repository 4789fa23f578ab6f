package misp_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/misp"
	"github.com/rampart-ip/rampart/misp/misptest"
)

// logBuffer collects log output for secret checks.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newClient(t *testing.T, srv *misptest.Server, mod func(*misp.ClientOptions), log *slog.Logger) *misp.Client {
	t.Helper()
	opts := misp.ClientOptions{URL: srv.URL, Key: srv.Key, Timeout: 5 * time.Second, RetryBase: time.Millisecond}
	if mod != nil {
		mod(&opts)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := misp.NewClient(opts, log)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientSendsMISPHeaders(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		_, _ = w.Write([]byte(`[]`))
	}))
	defer srv.Close()
	c, err := misp.NewClient(misp.ClientOptions{URL: srv.URL + "/", Key: "k3yk3yk3y"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Feeds(context.Background()); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"Authorization": "k3yk3yk3y", "Accept": "application/json", "Content-Type": "application/json"} {
		if got.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, got.Get(k), want)
		}
	}
}

func TestClientFeeds(t *testing.T) {
	srv := misptest.New()
	defer srv.Close()
	srv.AddFeed(misptest.Feed{Name: "CSV feed", Provider: "ex", URL: "https://example.test/a.csv", SourceFormat: "csv", Enabled: true,
		Settings: `{"csv":{"value":"2","delimiter":";"},"common":{"excluderegex":""}}`, Headers: "X-A: 1\nX-B: 2"})
	srv.AddFeed(misptest.Feed{Name: "Local", URL: "/var/feeds/x", SourceFormat: "freetext", InputSource: "local"})
	c := newClient(t, srv, nil, nil)
	recs, err := c.Feeds(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("got %d feeds, want 2", len(recs))
	}
	r := recs[0]
	if r.ID != "1" || r.Name != "CSV feed" || !r.Enabled || r.SourceFormat != "csv" || r.Headers != "X-A: 1\nX-B: 2" || r.InputSource != "network" {
		t.Errorf("record = %+v", r)
	}
	f, err := r.Feed()
	if err != nil {
		t.Fatal(err)
	}
	if f.Settings.CSV.Value != "2" || f.Settings.CSV.Delimiter != ";" || f.Origin != "misp" || f.URL != r.URL {
		t.Errorf("feed = %+v", f)
	}
	if recs[1].Enabled || recs[1].InputSource != "local" {
		t.Errorf("second record = %+v", recs[1])
	}
}

func TestClientSearchAttributes(t *testing.T) {
	srv := misptest.New()
	defer srv.Close()
	now := time.Unix(1_700_000_000, 0)
	srv.SetClock(func() time.Time { return now })
	ev := srv.AddEvent(misptest.Event{Info: "Botnet C2", ThreatLevel: 1, Tags: []string{"tlp:green"}})
	a1 := srv.AddAttribute(ev, misptest.Attribute{Type: "ip-dst", Value: "198.51.100.7", ToIDs: true, Tags: []string{"own"}})
	srv.AddAttribute(ev, misptest.Attribute{Type: "domain", Value: "bad.example", ToIDs: true})
	srv.AddAttribute(ev, misptest.Attribute{Type: "ip-src", Value: "203.0.113.0/24", ToIDs: false})
	now = now.Add(time.Hour)
	del := srv.AddAttribute(ev, misptest.Attribute{Type: "ip-src|port", Value: "192.0.2.1|443", ToIDs: true})
	srv.DeleteAttribute(del)
	c := newClient(t, srv, nil, nil)
	ips := []string{"ip-src", "ip-dst", "ip-src|port"}

	tests := []struct {
		name string
		q    misp.AttributeQuery
		want []string
	}{
		{"types filter out the domain", misp.AttributeQuery{Types: ips, Limit: 10}, []string{"198.51.100.7", "203.0.113.0/24"}},
		{"to_ids keeps flagged attributes only", misp.AttributeQuery{Types: ips, ToIDs: true, Limit: 10}, []string{"198.51.100.7"}},
		{"deleted adds soft-deleted attributes", misp.AttributeQuery{Types: ips, Deleted: true, Limit: 10}, []string{"198.51.100.7", "203.0.113.0/24", "192.0.2.1|443"}},
		{"timestamp keeps later changes", misp.AttributeQuery{Types: ips, Deleted: true, Timestamp: now.Unix(), Limit: 10}, []string{"192.0.2.1|443"}},
		{"page two holds the rest", misp.AttributeQuery{Types: ips, Page: 2, Limit: 1}, []string{"203.0.113.0/24"}},
		{"a page past the end is empty", misp.AttributeQuery{Types: ips, Page: 9, Limit: 1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := c.SearchAttributes(context.Background(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.Value)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("values = %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("records carry event, tags, flags and timestamps", func(t *testing.T) {
		recs, err := c.SearchAttributes(context.Background(), misp.AttributeQuery{Types: ips, Deleted: true, IncludeEventTags: true, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		r := recs[0]
		if r.ID != a1 || r.EventID != ev || r.Event.Info != "Botnet C2" || r.Event.UUID == "" || !r.ToIDs || r.Deleted || r.Timestamp != 1_700_000_000 {
			t.Errorf("record = %+v", r)
		}
		if len(r.Tags) != 2 || r.Tags[0] != (misp.TagRecord{Name: "own"}) || r.Tags[1] != (misp.TagRecord{Name: "tlp:green", Inherited: true}) {
			t.Errorf("tags = %+v", r.Tags)
		}
		if !recs[2].Deleted {
			t.Errorf("deleted flag lost: %+v", recs[2])
		}
	})
}

func TestClientEvent(t *testing.T) {
	srv := misptest.New()
	defer srv.Close()
	ev := srv.AddEvent(misptest.Event{Info: "Phishing wave", ThreatLevel: 2, Tags: []string{"tlp:amber", "misp-galaxy:x"}})
	c := newClient(t, srv, nil, nil)
	for range 2 {
		got, err := c.Event(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		if got.ThreatLevel != 2 || got.Info != "Phishing wave" || len(got.Tags) != 2 || got.UUID == "" {
			t.Errorf("event = %+v", got)
		}
	}
	if n := srv.Requests("/events/view/" + ev); n != 1 {
		t.Errorf("event fetched %d times, want 1 (cached)", n)
	}
	_, err := c.Event(context.Background(), "999")
	var ae *misp.APIError
	if !errors.Is(err, misp.ErrNotFound) || !errors.As(err, &ae) || ae.Status != 404 || ae.Message != "Invalid event" {
		t.Errorf("unknown event: err = %v", err)
	}
	if _, err := c.Event(context.Background(), "../feeds"); err == nil {
		t.Error("an id that is not a number was accepted")
	}
}

func TestClientFailures(t *testing.T) {
	tests := []struct {
		name     string
		failure  misptest.Failure
		times    int
		key      string
		opts     func(*misp.ClientOptions)
		wantErr  error
		requests int // requests that reached the server
	}{
		{name: "a wrong key is ErrUnauthorized and not retried", key: "0123456789abcdef0123456789abcdef01234567", wantErr: misp.ErrUnauthorized, requests: 1},
		{name: "500s are retried up to the attempt limit", failure: misptest.Internal, wantErr: nil, requests: 3},
		{name: "a 500 that goes away is retried into success", failure: misptest.Internal, times: 2, requests: 3},
		{name: "invalid JSON is ErrResponse and not retried", failure: misptest.InvalidJSON, wantErr: misp.ErrResponse, requests: 1},
		{name: "an HTML page is ErrResponse", failure: misptest.HTML, wantErr: misp.ErrResponse, requests: 1},
		{name: "a body that never ends is ErrResponseTooLarge", failure: misptest.EndlessBody, wantErr: misp.ErrResponseTooLarge, requests: 1,
			opts: func(o *misp.ClientOptions) { o.MaxBytes = 1 << 20 }},
		{name: "a slow answer times out, retried", failure: misptest.Slow, requests: 2,
			opts: func(o *misp.ClientOptions) { o.Timeout = 100 * time.Millisecond; o.Attempts = 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := misptest.New()
			defer srv.Close()
			srv.Fail(tt.failure, tt.times)
			logs := &logBuffer{}
			log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c := newClient(t, srv, func(o *misp.ClientOptions) {
				if tt.key != "" {
					o.Key = tt.key
				}
				if tt.opts != nil {
					tt.opts(o)
				}
			}, log)
			_, err := c.SearchAttributes(context.Background(), misp.AttributeQuery{Types: []string{"ip-dst"}, Limit: 10})
			switch {
			case tt.times > 0 && err != nil:
				t.Fatalf("err = %v, want success after retries", err)
			case tt.times == 0 && err == nil:
				t.Fatal("no error")
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if n := srv.Requests("/attributes/restSearch"); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			for _, k := range []string{srv.Key, tt.key} {
				if k == "" {
					continue
				}
				if err != nil && strings.Contains(err.Error(), k) {
					t.Errorf("error holds the key: %v", err)
				}
				if strings.Contains(logs.String(), k) {
					t.Errorf("log holds the key: %s", logs.String())
				}
			}
		})
	}
}

func TestClientHonoursCancellation(t *testing.T) {
	srv := misptest.New()
	defer srv.Close()
	srv.Fail(misptest.Slow, 0)
	c := newClient(t, srv, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Feeds(ctx)
		done <- err
	}()
	deadline := time.After(10 * time.Second)
	for srv.Requests("/feeds/index") == 0 {
		select {
		case <-deadline:
			t.Fatal("request never arrived")
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if n := srv.Requests("/feeds/index"); n != 1 {
		t.Errorf("%d requests after cancellation, want 1", n)
	}
}

func TestClientTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`[]`)) }))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		opts     misp.ClientOptions
		ok       bool
		warnLogs bool
	}{
		{name: "an unknown certificate is refused by default", opts: misp.ClientOptions{}, ok: false},
		{name: "ca_file makes the certificate trusted", opts: misp.ClientOptions{CAFile: caFile}, ok: true},
		{name: "verification off is accepted and logged", opts: misp.ClientOptions{InsecureSkipVerify: true}, ok: true, warnLogs: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logBuffer{}
			tt.opts.URL, tt.opts.Key, tt.opts.Attempts = srv.URL, "secretkeysecretkey", 1
			c, err := misp.NewClient(tt.opts, slog.New(slog.NewTextHandler(logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Feeds(context.Background())
			if (err == nil) != tt.ok {
				t.Errorf("err = %v, want ok=%v", err, tt.ok)
			}
			if got := strings.Contains(logs.String(), "verify_tls"); got != tt.warnLogs {
				t.Errorf("warning logged = %v, want %v: %s", got, tt.warnLogs, logs.String())
			}
			if strings.Contains(logs.String(), "secretkey") {
				t.Error("log holds the key")
			}
		})
	}
	if _, err := misp.NewClient(misp.ClientOptions{URL: srv.URL, Key: "k", CAFile: filepath.Join(t.TempDir(), "none.pem")}, nil); err == nil {
		t.Error("a missing ca_file was accepted")
	}
}

func TestNewClientRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts misp.ClientOptions
	}{
		{"no url", misp.ClientOptions{Key: "k"}},
		{"a url that is not http", misp.ClientOptions{URL: "ftp://misp", Key: "k"}},
		{"credentials in the url", misp.ClientOptions{URL: "https://u:p@misp", Key: "k"}},
		{"no key", misp.ClientOptions{URL: "https://misp"}},
		{"a key with a line break", misp.ClientOptions{URL: "https://misp", Key: "abc\r\nX-Evil: 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := misp.NewClient(tt.opts, nil); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestClientStringHidesKey(t *testing.T) {
	c, err := misp.NewClient(misp.ClientOptions{URL: "https://misp.example", Key: "supersecretkey0123"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	slog.New(slog.NewJSONHandler(logs, nil)).Info("client", "misp", c)
	for _, s := range []string{c.String(), logs.String()} {
		if strings.Contains(s, "supersecretkey0123") || !strings.Contains(s, "misp.example") {
			t.Errorf("%q", s)
		}
	}
}
