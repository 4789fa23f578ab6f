package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/misp"
	"github.com/rampart-ip/rampart/misp/misptest"
	"github.com/rampart-ip/rampart/store"
)

// kvCounter counts the key/value writes the MISP poller makes.
type kvCounter struct {
	store.Store
	mu   sync.Mutex
	puts int
}

func (k *kvCounter) Put(ctx context.Context, key, value string) error {
	k.mu.Lock()
	k.puts++
	k.mu.Unlock()
	return k.Store.Put(ctx, key, value)
}

func (k *kvCounter) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.puts
}

// syncLog is a concurrency-safe log sink for secret checks.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type mispHarness struct {
	*harness
	srv    *misptest.Server
	poller *MISP
	kv     *kvCounter
	logs   *syncLog
	cfg    config.MISP
}

func newMISPHarness(t testing.TB, mod func(*config.MISP, *MISPOptions)) *mispHarness {
	t.Helper()
	h := newHarness(t, harnessOptions{})
	srv := misptest.New()
	t.Cleanup(srv.Close)
	// MISP stamps changes in whole seconds; a clock that ticks a second
	// per change keeps changes made within one test apart.
	var tick sync.Mutex
	stamp := time.Unix(1_790_000_000, 0)
	srv.SetClock(func() time.Time {
		tick.Lock()
		defer tick.Unlock()
		stamp = stamp.Add(time.Second)
		return stamp
	})
	cfg := config.Default().MISP
	cfg.URL, cfg.Key = srv.URL, srv.Key
	cfg.Timeout = config.Duration(2 * time.Second)
	cfg.Attributes.PageSize = 100
	opts := MISPOptions{Engine: h.eng, Config: cfg}
	if mod != nil {
		mod(&opts.Config, &opts)
	}
	logs := &syncLog{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	co := MISPClientOptions(opts.Config)
	co.RetryBase = time.Millisecond
	client, err := misp.NewClient(co, log)
	if err != nil {
		t.Fatal(err)
	}
	kv := &kvCounter{Store: h.st}
	opts.Store, opts.Client, opts.Logger = kv, client, log
	return &mispHarness{harness: h, srv: srv, poller: NewMISP(opts), kv: kv, logs: logs, cfg: opts.Config}
}

func (m *mispHarness) pull(t testing.TB) AttributeReport {
	t.Helper()
	rep, err := m.poller.PullAttributes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func (m *mispHarness) prefixes(t testing.TB, source string) []string {
	t.Helper()
	ps, err := m.raw.SourceListings(context.Background(), source)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	slices.Sort(out)
	return out
}

func (m *mispHarness) ended(t testing.TB, source string) []string {
	t.Helper()
	var out []string
	for _, e := range m.episodes(t, source) {
		out = append(out, e.Prefix.String())
	}
	slices.Sort(out)
	return out
}

func TestMISPFeedsFollowMISP(t *testing.T) {
	m := newMISPHarness(t, func(c *config.MISP, _ *MISPOptions) { c.PollInterval = config.Duration(50 * time.Millisecond) })
	fs := newFeedServer(t)
	fs.set("/list.txt", []byte("198.51.100.1\n198.51.100.2\n"))
	fs.set("/list.csv", []byte("# id;ip\n1;203.0.113.9\n"))
	m.poller.Register()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.eng.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	id := m.srv.AddFeed(misptest.Feed{Name: "MISP list", Provider: "ops", URL: fs.URL + "/list.txt", SourceFormat: "freetext", Enabled: true})
	m.srv.AddFeed(misptest.Feed{Name: "MISP csv", URL: fs.URL + "/list.csv", SourceFormat: "csv", Enabled: true,
		Settings: `{"csv":{"value":"2","delimiter":";"},"common":{"excluderegex":""}}`})
	m.srv.AddFeed(misptest.Feed{Name: "On the MISP host", URL: "/srv/feeds/x.txt", SourceFormat: "freetext", Enabled: true, InputSource: "local"})
	m.srv.AddFeed(misptest.Feed{Name: "Off", URL: fs.URL + "/list.txt", SourceFormat: "freetext", Enabled: false})

	t.Run("a feed added in MISP is synced after one poll", func(t *testing.T) {
		eventually(t, "MISP feed listings", func() bool {
			return len(m.listings(t, "MISP list")) == 2 && len(m.listings(t, "MISP csv")) == 1
		})
		if got := m.prefixes(t, "MISP csv"); !slices.Equal(got, []string{"203.0.113.9/32"}) {
			t.Errorf("csv feed lists %v", got)
		}
	})
	t.Run("a local feed is shown as skipped with its reason and a disabled one is absent", func(t *testing.T) {
		var local *FeedStatus
		for _, f := range m.eng.Feeds() {
			if f.Name == "On the MISP host" {
				local = &f
			}
			if f.Name == "Off" {
				t.Error("a disabled MISP feed is defined")
			}
		}
		if local == nil || local.Enabled || !strings.Contains(local.Note, "input_source local") || local.Origin != OriginMISP {
			t.Errorf("local feed status = %+v", local)
		}
		if !strings.Contains(m.logs.String(), "input_source local") {
			t.Error("skipped local feed not logged")
		}
	})
	t.Run("a feed disabled in MISP has its listings ended", func(t *testing.T) {
		m.srv.EditFeed(id, func(f *misptest.Feed) { f.Enabled = false })
		eventually(t, "listings to end", func() bool { return len(m.listings(t, "MISP list")) == 0 })
		if got := m.ended(t, "MISP list"); len(got) != 2 {
			t.Errorf("history = %v, want both addresses", got)
		}
	})
	t.Run("a feed deleted in MISP has its listings ended", func(t *testing.T) {
		m.srv.DeleteFeed("2")
		eventually(t, "csv listings to end", func() bool { return len(m.listings(t, "MISP csv")) == 0 })
	})
}

func TestMISPFeedsKeepLastListOnFailure(t *testing.T) {
	m := newMISPHarness(t, nil)
	ctx := context.Background()
	m.srv.AddFeed(misptest.Feed{Name: "kept", URL: "http://127.0.0.1:1/x", SourceFormat: "freetext", Enabled: true})
	if _, err := m.poller.SyncFeeds(ctx); err != nil {
		t.Fatal(err)
	}
	m.srv.Fail(misptest.Internal, 0)
	if _, err := m.poller.SyncFeeds(ctx); err == nil {
		t.Fatal("no error from a failing MISP")
	}
	found := false
	for _, f := range m.eng.Feeds() {
		found = found || (f.Name == "kept" && f.Enabled)
	}
	if !found {
		t.Error("the MISP feed was dropped when MISP failed")
	}
}

func TestMISPAttributes(t *testing.T) {
	m := newMISPHarness(t, nil)
	ev := m.srv.AddEvent(misptest.Event{Info: "APT C2 servers", ThreatLevel: 1, Tags: []string{"tlp:amber", "apt"}})
	attrs := map[string]string{}
	for _, a := range []misptest.Attribute{
		{Type: "ip-src", Value: "198.51.100.1", ToIDs: true},
		{Type: "ip-dst", Value: "198.51.100.0/28", ToIDs: true},
		{Type: "ip-src|port", Value: "203.0.113.5|22", ToIDs: true},
		{Type: "ip-dst|port", Value: "2001:db8::1|443", ToIDs: true},
		{Type: "domain|ip", Value: "evil.example|192.0.2.44", ToIDs: true},
		{Type: "ip-dst", Value: "2001:db8:beef::/48", ToIDs: true},
		{Type: "ip-dst", Value: "192.0.2.99/32", ToIDs: true},
		{Type: "ip-dst", Value: "192.0.2.200", ToIDs: false}, // not for detection
		{Type: "domain", Value: "evil.example", ToIDs: true},
		{Type: "ip-dst", Value: "not-an-address", ToIDs: true},
		{Type: "ip-dst", Value: "192.0.2.1", ToIDs: true}, // shared by two attributes
		{Type: "ip-src", Value: "192.0.2.1", ToIDs: true},
	} {
		attrs[a.Type+" "+a.Value] = m.srv.AddAttribute(ev, a)
	}
	name := "APT C2 servers"
	want := []string{"192.0.2.1/32", "192.0.2.44/32", "192.0.2.99/32", "198.51.100.0/28", "198.51.100.1/32", "203.0.113.5/32", "2001:db8::1/128", "2001:db8:beef::/48"}
	slices.Sort(want)
	rep := m.pull(t)
	var other string

	t.Run("every IP type and CIDR value is listed under the event's info", func(t *testing.T) {
		if got := m.prefixes(t, name); !slices.Equal(got, want) {
			t.Errorf("listings = %v\nwant       %v", got, want)
		}
		if rep.Malformed != 1 {
			t.Errorf("malformed = %d, want 1", rep.Malformed)
		}
	})
	t.Run("threat level, tags and event uuid reach the source", func(t *testing.T) {
		src := m.source(t, name)
		if src.Kind != store.KindMISPEvent || src.Meta["threat_level"] != "1" || src.Meta["tags"] != "apt,tlp:amber" || src.Meta["event_uuid"] == "" || src.Entries != len(want) {
			t.Errorf("source = %+v", src)
		}
	})
	t.Run("the index answers for a listed address", func(t *testing.T) {
		a := m.svc.Check(netip.MustParseAddr("198.51.100.9"))
		if !a.IsIoC || !slices.Contains(a.Blacklists, name) {
			t.Errorf("answer = %+v", a)
		}
	})
	t.Run("a poll that finds nothing new writes nothing", func(t *testing.T) {
		before, kv := m.st.counts(), m.kv.count()
		m.pull(t)
		if after := m.st.counts(); after != before || m.kv.count() != kv {
			t.Errorf("writes: %+v then %+v, kv %d then %d", before, after, kv, m.kv.count())
		}
	})
	t.Run("an address shared by two attributes ends only when both are deleted", func(t *testing.T) {
		m.srv.DeleteAttribute(attrs["ip-dst 192.0.2.1"])
		m.pull(t)
		if !slices.Contains(m.prefixes(t, name), "192.0.2.1/32") {
			t.Fatal("ended while another attribute still lists it")
		}
		m.srv.DeleteAttribute(attrs["ip-src 192.0.2.1"])
		m.pull(t)
		if slices.Contains(m.prefixes(t, name), "192.0.2.1/32") {
			t.Fatal("still listed after both attributes were deleted")
		}
		if got := m.ended(t, name); !slices.Equal(got, []string{"192.0.2.1/32"}) {
			t.Errorf("history = %v", got)
		}
	})
	t.Run("clearing to_ids and editing a value end the old listing", func(t *testing.T) {
		m.srv.EditAttribute(attrs["ip-src 198.51.100.1"], func(a *misptest.Attribute) { a.ToIDs = false })
		m.srv.EditAttribute(attrs["ip-dst|port 2001:db8::1|443"], func(a *misptest.Attribute) { a.Value = "2001:db8::2|443" })
		m.pull(t)
		got := m.prefixes(t, name)
		if slices.Contains(got, "198.51.100.1/32") || slices.Contains(got, "2001:db8::1/128") || !slices.Contains(got, "2001:db8::2/128") {
			t.Errorf("listings = %v", got)
		}
	})
	t.Run("a new event with the same info gets a distinct name", func(t *testing.T) {
		ev2 := m.srv.AddEvent(misptest.Event{Info: "APT C2 servers"})
		m.srv.AddAttribute(ev2, misptest.Attribute{Type: "ip-dst", Value: "192.0.2.77", ToIDs: true})
		m.pull(t)
		other = fmt.Sprintf("APT C2 servers (event %s)", ev2)
		if got := m.prefixes(t, other); !slices.Equal(got, []string{"192.0.2.77/32"}) {
			t.Errorf("%q lists %v", other, got)
		}
		if slices.Contains(m.prefixes(t, name), "192.0.2.77/32") {
			t.Error("the second event's address went to the first event's source")
		}
		if tl := m.source(t, other).Meta["threat_level"]; tl != "4" {
			t.Errorf("threat level of an event without one = %q, want 4 (undefined)", tl)
		}
	})
	t.Run("republishing an event refreshes its threat level", func(t *testing.T) {
		m.srv.EditEvent(ev, func(e *misptest.Event) { e.ThreatLevel = 3 })
		m.srv.AddAttribute(ev, misptest.Attribute{Type: "ip-dst", Value: "192.0.2.123", ToIDs: true})
		m.pull(t)
		if tl := m.source(t, name).Meta["threat_level"]; tl != "3" {
			t.Errorf("threat level = %q, want 3", tl)
		}
	})
	t.Run("a reconcile ends the listings of an event deleted in MISP", func(t *testing.T) {
		m.srv.DeleteEvent(ev)
		m.pull(t)
		if len(m.prefixes(t, name)) == 0 {
			t.Fatal("an incremental pull saw a hard delete; the test cannot tell reconcile's work apart")
		}
		if _, err := m.poller.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := m.prefixes(t, name); len(got) != 0 {
			t.Errorf("listings after reconcile = %v", got)
		}
		if got := m.prefixes(t, other); !slices.Equal(got, []string{"192.0.2.77/32"}) {
			t.Errorf("reconcile changed the other event: %v", got)
		}
	})
}

func TestMISPFaultsKeepListings(t *testing.T) {
	tests := []struct {
		name    string
		failure misptest.Failure
		wrong   bool // use a wrong key
		down    bool // MISP not reachable at all
		wantErr error
	}{
		{name: "MISP unreachable", down: true},
		{name: "MISP answering 500", failure: misptest.Internal},
		{name: "MISP too slow", failure: misptest.Slow},
		{name: "invalid JSON", failure: misptest.InvalidJSON, wantErr: misp.ErrResponse},
		{name: "an HTML login page", failure: misptest.HTML, wantErr: misp.ErrResponse},
		{name: "pages that never end", failure: misptest.EndlessPages, wantErr: ErrEndlessPages},
		{name: "a wrong key", wrong: true, wantErr: misp.ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name+" leaves listings and cursor unchanged and reports why", func(t *testing.T) {
			m := newMISPHarness(t, func(c *config.MISP, _ *MISPOptions) {
				c.Timeout = config.Duration(200 * time.Millisecond)
				c.Attributes.PageSize = 2
			})
			ctx := context.Background()
			ev := m.srv.AddEvent(misptest.Event{Info: "Scanners"})
			ids := []string{
				m.srv.AddAttribute(ev, misptest.Attribute{Type: "ip-src", Value: "192.0.2.1", ToIDs: true}),
				m.srv.AddAttribute(ev, misptest.Attribute{Type: "ip-src", Value: "192.0.2.2", ToIDs: true}),
				m.srv.AddAttribute(ev, misptest.Attribute{Type: "ip-src", Value: "192.0.2.3", ToIDs: true}),
			}
			m.pull(t)
			before := m.prefixes(t, "Scanners")
			cursor, _ := m.raw.Get(ctx, MISPCursorKey)
			m.srv.DeleteAttribute(ids[0])
			m.srv.DeleteAttribute(ids[1])
			m.srv.AddAttribute(ev, misptest.Attribute{Type: "ip-src", Value: "192.0.2.4", ToIDs: true})

			poller := m.poller
			if tt.wrong || tt.down {
				url, key := m.srv.URL, strings.Repeat("x", 40)
				if tt.down {
					url, key = strings.TrimSuffix(closedURL(t), "/feed.txt"), m.srv.Key
				}
				c, err := misp.NewClient(misp.ClientOptions{URL: url, Key: key, RetryBase: time.Millisecond},
					slog.New(slog.NewTextHandler(m.logs, nil)))
				if err != nil {
					t.Fatal(err)
				}
				poller = NewMISP(MISPOptions{Engine: m.eng, Store: m.kv, Client: c, Config: m.cfg})
			} else {
				m.srv.Fail(tt.failure, 0)
			}
			_, err := poller.PullAttributes(ctx)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.failure == misptest.EndlessPages {
				// Full pages of true data may have been applied; nothing may be lost.
				for _, p := range []string{"192.0.2.3/32"} {
					if !slices.Contains(m.prefixes(t, "Scanners"), p) {
						t.Errorf("%s lost", p)
					}
				}
			} else if got := m.prefixes(t, "Scanners"); !slices.Equal(got, before) {
				t.Errorf("listings changed: %v, were %v", got, before)
			}
			if got, _ := m.raw.Get(ctx, MISPCursorKey); got != cursor {
				t.Errorf("cursor moved from %s to %s", cursor, got)
			}
			for _, k := range []string{m.srv.Key, strings.Repeat("x", 40)} {
				if strings.Contains(err.Error(), k) || strings.Contains(m.logs.String(), k) {
					t.Error("the key leaked into an error or a log line")
				}
			}

			m.srv.Fail(misptest.OK, 0)
			m.pull(t)
			if got := m.prefixes(t, "Scanners"); !slices.Equal(got, []string{"192.0.2.3/32", "192.0.2.4/32"}) {
				t.Errorf("after recovery listings = %v", got)
			}
		})
	}
}

func TestMISPInterruptedPullRepeats(t *testing.T) {
	m := newMISPHarness(t, func(c *config.MISP, o *MISPOptions) { c.Attributes.PageSize = 1; o.MaxPages = 2 })
	ctx := context.Background()
	ev := m.srv.AddEvent(misptest.Event{Info: "Wave"})
	for _, v := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		m.srv.AddAttribute(ev, misptest.Attribute{Type: "ip-dst", Value: v, ToIDs: true})
	}
	if _, err := m.poller.PullAttributes(ctx); !errors.Is(err, ErrEndlessPages) {
		t.Fatalf("err = %v, want the page bound", err)
	}
	if _, err := m.raw.Get(ctx, MISPCursorKey); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("cursor written by an interrupted pull: %v", err)
	}
	if got := m.prefixes(t, "Wave"); len(got) != 2 {
		t.Errorf("the pages read were not applied: %v", got)
	}
	m.poller.maxPages = 10
	m.pull(t)
	if got := m.prefixes(t, "Wave"); len(got) != 3 {
		t.Errorf("the repeated pull did not complete: %v", got)
	}
}

func TestMISPReconcileHoldsBackAnEmptyAnswer(t *testing.T) {
	m := newMISPHarness(t, nil)
	ctx := context.Background()
	ev := m.srv.AddEvent(misptest.Event{Info: "Only event"})
	m.srv.AddAttribute(ev, misptest.Attribute{Type: "ip-dst", Value: "192.0.2.1", ToIDs: true})
	m.pull(t)
	m.srv.DeleteEvent(ev)
	if _, err := m.poller.Reconcile(ctx); !errors.Is(err, ErrSuspiciousPull) {
		t.Fatalf("err = %v, want ErrSuspiciousPull", err)
	}
	if len(m.prefixes(t, "Only event")) != 1 {
		t.Fatal("listings ended on the first empty answer")
	}
	if _, err := m.poller.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if len(m.prefixes(t, "Only event")) != 0 {
		t.Error("listings kept after two empty answers")
	}
}

func TestMISPSyncOnce(t *testing.T) {
	m := newMISPHarness(t, nil)
	fs := newFeedServer(t)
	fs.set("/l.txt", []byte("198.51.100.50\n"))
	m.srv.AddFeed(misptest.Feed{Name: "from MISP", URL: fs.URL + "/l.txt", SourceFormat: "freetext", Enabled: true})
	ev := m.srv.AddEvent(misptest.Event{Info: "Once"})
	m.srv.AddAttribute(ev, misptest.Attribute{Type: "ip-dst", Value: "192.0.2.8", ToIDs: true})
	var steps []string
	if err := m.poller.SyncOnce(context.Background(), func(p MISPProgress) { steps = append(steps, p.Step) }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(steps, []string{"feeds", "feed", "attributes"}) {
		t.Errorf("steps = %v", steps)
	}
	if len(m.prefixes(t, "from MISP")) != 1 || len(m.prefixes(t, "Once")) != 1 {
		t.Error("sync did not list the feed and the event")
	}
	if a := m.svc.Check(netip.MustParseAddr("192.0.2.8")); !a.IsIoC {
		t.Errorf("index not rebuilt: %+v", a)
	}
}

// BenchmarkMISPIncrementalPull measures an incremental pull of 100,000 new
// attributes (100 events of 1,000) from the stand-in into a real SQLite
// store, with an index rebuild; each iteration adds a fresh 100,000 (the
// stand-in's in-memory insert is inside the timing and small next to the
// pull). It reports the store writes per pull.
func BenchmarkMISPIncrementalPull(b *testing.B) {
	m := newMISPHarness(b, func(c *config.MISP, _ *MISPOptions) { c.Attributes.PageSize = 1000 })
	m.srv.AddAttributes(m.srv.AddEvent(misptest.Event{Info: "seed"}), []misptest.Attribute{{Type: "ip-dst", Value: "192.0.2.1", ToIDs: true}})
	m.pull(b) // a cursor exists: what follows is incremental
	b.ReportAllocs()
	round := 0
	for b.Loop() {
		round++
		for e := range 100 {
			ev := m.srv.AddEvent(misptest.Event{Info: fmt.Sprintf("round %d event %d", round, e)})
			attrs := make([]misptest.Attribute, 1000)
			for i := range attrs {
				n := (round*100+e)*1000 + i
				attrs[i] = misptest.Attribute{Type: "ip-dst", Value: fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255), ToIDs: true}
			}
			m.srv.AddAttributes(ev, attrs)
		}
		before, kv := m.st.counts(), m.kv.count()
		rep := m.pull(b)
		if rep.Added != 100_000 {
			b.Fatalf("added %d, want 100000", rep.Added)
		}
		after := m.st.counts()
		b.ReportMetric(float64(after.applied-before.applied), "listing-writes/op")
		b.ReportMetric(float64(after.applyCalls-before.applyCalls+after.puts-before.puts+m.kv.count()-kv), "store-calls/op")
	}
}

// BenchmarkMISPPollNothingNew measures a poll when MISP has nothing new
// over 100,000 pulled attributes: the attributes at the cursor's second
// are pulled again and nothing is written.
func BenchmarkMISPPollNothingNew(b *testing.B) {
	m := newMISPHarness(b, func(c *config.MISP, _ *MISPOptions) { c.Attributes.PageSize = 1000 })
	for e := range 100 {
		ev := m.srv.AddEvent(misptest.Event{Info: fmt.Sprintf("event %d", e)})
		attrs := make([]misptest.Attribute, 1000)
		for i := range attrs {
			n := e*1000 + i
			attrs[i] = misptest.Attribute{Type: "ip-dst", Value: fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255), ToIDs: true}
		}
		m.srv.AddAttributes(ev, attrs)
	}
	m.pull(b)
	b.ReportAllocs()
	for b.Loop() {
		before, kv := m.st.counts(), m.kv.count()
		m.pull(b)
		after := m.st.counts()
		writes := after.applyCalls - before.applyCalls + after.puts - before.puts + m.kv.count() - kv
		if writes != 0 {
			b.Fatalf("%d writes on a poll with nothing new", writes)
		}
		b.ReportMetric(float64(writes), "writes/op")
	}
}
