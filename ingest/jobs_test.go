package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/misp"
	"github.com/rampart-ip/rampart/store"
)

func TestReady(t *testing.T) {
	t.Run("an empty store is not ready until every feed was tried", func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t, harnessOptions{})
		srv := newFeedServer(t)
		srv.set("/feed", sample(t, "feeds", "firehol", "et_compromised.ipset"))
		h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("up", srv.URL+"/feed"), feed("down", closedURL(t))})
		if err := h.eng.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if h.eng.Ready() {
			t.Fatal("ready before any sync")
		}
		if _, err := h.eng.SyncFeed(ctx, "up"); err != nil {
			t.Fatal(err)
		}
		if h.eng.Ready() {
			t.Fatal("ready with one feed never tried")
		}
		if _, err := h.eng.SyncFeed(ctx, "down"); err == nil {
			t.Fatal("sync of a closed port succeeded")
		}
		if !h.eng.Ready() {
			t.Fatal("not ready after every feed was tried")
		}
	})
	t.Run("a store with listings is ready at Start before any fetch", func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t, harnessOptions{})
		if err := h.raw.PutSource(ctx, store.Source{Name: "f", Kind: store.KindFeed, Entries: 1, LastSuccess: t0}); err != nil {
			t.Fatal(err)
		}
		if err := h.raw.Apply(ctx, "f", store.Change{Added: []netip.Prefix{mustPrefix(t, "5.6.7.8")}}, t0); err != nil {
			t.Fatal(err)
		}
		h2 := newHarness(t, harnessOptions{dbPath: h.path})
		h2.eng.SetFeeds(OriginConfig, []misp.Feed{feed("f", closedURL(t))})
		if h2.eng.Ready() {
			t.Fatal("ready before Start")
		}
		if err := h2.eng.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if !h2.eng.Ready() {
			t.Fatal("not ready after loading a non-empty store")
		}
		if a := h2.svc.Check(mustPrefix(t, "5.6.7.8").Addr()); !a.IsActive {
			t.Errorf("stored listing not served: %+v", a)
		}
	})
	t.Run("a machine without network becomes ready under Run", func(t *testing.T) {
		h := newHarness(t, harnessOptions{})
		h.eng.SetFeeds(OriginCatalog, []misp.Feed{feed("a", closedURL(t)), feed("b", closedURL(t))})
		stop := runEngine(t, h.eng)
		eventually(t, "ready", h.eng.Ready)
		stop()
		for _, f := range h.eng.Feeds() {
			if f.LastError == "" || f.LastAttempt.IsZero() {
				t.Errorf("feed %s: %+v, want a visible failure", f.Name, f)
			}
		}
	})
}

// runEngine runs eng until the returned stop is called (or the test ends)
// and fails the test if Run returns an error or does not return.
func runEngine(t *testing.T, eng *Engine) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	var stopped atomic.Bool
	stop = func() {
		if stopped.Swap(true) {
			return
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancellation")
		}
	}
	t.Cleanup(stop)
	return stop
}

func TestRunSchedulesJobs(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	srv := newFeedServer(t)
	srv.set("/a", sample(t, "feeds", "firehol", "et_compromised.ipset"))
	srv.set("/b", sample(t, "feeds", "firehol", "spamhaus_drop.netset"))
	h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("a", srv.URL+"/a")})
	var ticks atomic.Int32
	h.eng.AddJob("test:tick", 50*time.Millisecond, func(ctx context.Context) error {
		if ticks.Add(1) == 1 {
			return errors.New("first tick fails")
		}
		return nil
	})
	stop := runEngine(t, h.eng)
	eventually(t, "initial sync", func() bool { return h.status(t, "a").Entries > 0 })

	t.Run("every periodic task is listed with its interval", func(t *testing.T) {
		want := map[string]time.Duration{"feed:a": time.Hour, JobPurge: 24 * time.Hour, JobRescore: time.Hour, "test:tick": 50 * time.Millisecond}
		got := map[string]JobStatus{}
		for _, j := range h.eng.Jobs() {
			got[j.Name] = j
		}
		for name, every := range want {
			j, ok := got[name]
			if !ok {
				t.Errorf("job %s missing", name)
				continue
			}
			if j.Interval.Std() != every || j.NextRun.IsZero() {
				t.Errorf("job %s = %+v, want interval %v and a next run", name, j, every)
			}
		}
	})
	t.Run("a job's runs and last error are recorded", func(t *testing.T) {
		eventually(t, "two ticks", func() bool { return ticks.Load() >= 2 })
		eventually(t, "the tick's status", func() bool {
			for _, j := range h.eng.Jobs() {
				if j.Name == "test:tick" {
					return j.Runs >= 2 && j.LastError == "" && !j.LastRun.IsZero()
				}
			}
			return false
		})
		b, err := json.Marshal(h.eng.Jobs())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"interval":"24h0m0s"`) || !strings.Contains(string(b), `"last_duration":`) {
			t.Errorf("jobs JSON = %s", b)
		}
	})
	t.Run("the purge runs soon after start", func(t *testing.T) {
		eventually(t, "purge run", func() bool {
			for _, j := range h.eng.Jobs() {
				if j.Name == JobPurge {
					return j.Runs >= 1 && j.LastError == ""
				}
			}
			return false
		})
	})
	t.Run("a feed added while running gets a job and is synced", func(t *testing.T) {
		h.eng.SetFeeds(OriginMISP, []misp.Feed{feed("b", srv.URL+"/b")})
		eventually(t, "feed b synced", func() bool { return h.status(t, "b").Entries > 0 })
		eventually(t, "feed b in the index", func() bool {
			return len(h.svc.Check(h.firstListed(t, "b")).Blacklists) > 0
		})
	})
	t.Run("a feed removed while running loses its job and its listings", func(t *testing.T) {
		h.eng.SetFeeds(OriginMISP, nil)
		eventually(t, "feed b retired", func() bool { return len(h.listings(t, "b")) == 0 })
		for _, j := range h.eng.Jobs() {
			if j.Name == "feed:b" {
				t.Errorf("job feed:b still listed")
			}
		}
	})
	stop()
	t.Run("a stopped engine has no next runs", func(t *testing.T) {
		for _, j := range h.eng.Jobs() {
			if !j.NextRun.IsZero() || j.Running {
				t.Errorf("job after stop = %+v", j)
			}
		}
	})
}

func TestPurgeWithInjectedClock(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{})
	srv := newFeedServer(t)
	body := sample(t, "feeds", "firehol", "et_compromised.ipset")
	srv.set("/feed", body)
	h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("f", srv.URL+"/feed")})
	if _, err := h.eng.SyncFeed(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	srv.set("/feed", lines(body, func(i int, _ []byte) bool { return i%10 != 0 }))
	h.clock.advance(time.Hour)
	rep, err := h.eng.SyncFeed(ctx, "f")
	if err != nil || rep.Removed == 0 {
		t.Fatalf("sync: %+v %v", rep, err)
	}
	ended := h.clock.now()

	for _, tc := range []struct {
		name    string
		advance time.Duration
		purged  int64
	}{
		{"episodes inside retention are kept", 167 * time.Hour, 0},
		{"episodes past retention are purged", 2 * time.Hour, int64(rep.Removed)},
		{"a second purge finds nothing", time.Hour, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.clock.advance(tc.advance)
			n, err := h.eng.Purge(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.purged {
				t.Errorf("purged %d, want %d (episodes ended %v, now %v)", n, tc.purged, ended, h.clock.now())
			}
			left, want := len(h.episodes(t, "f")), rep.Removed
			if tc.purged != 0 || h.clock.now().Sub(ended) >= 168*time.Hour {
				want = 0
			}
			if left != want {
				t.Errorf("%d episodes left, want %d", left, want)
			}
		})
	}
}
