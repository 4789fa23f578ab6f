package reputation

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/store"
)

// newTestService returns a service over d at the fake clock's time.
func newTestService(t testing.TB, d Data, clock *fakeClock, o ServiceOptions) *Service {
	t.Helper()
	o.Now = clock.Now
	o.Logger = slog.New(slog.DiscardHandler)
	if o.Model == nil {
		o.Model = NewModel(config.Default().Scoring)
	}
	s := NewService(o)
	s.Swap(Build(d, BuildOptions{Retention: 7 * 24 * time.Hour, Now: clock.Now}))
	return s
}

func serviceData(t testing.TB) Data {
	day := 24 * time.Hour
	return Data{
		Sources: testSources(),
		Listings: []store.Listing{
			listing(t, "alpha", "192.0.2.10/32", t0.Add(-day)),
			listing(t, "beta", "192.0.2.10/32", t0.Add(-2*day)),
			listing(t, "alpha", "198.18.0.0/15", t0.Add(-day)), // the whole reserved block: a bogon entry
			listing(t, "gamma", "10.1.2.3/32", t0.Add(-day)),   // an internal host, listed on purpose
			listing(t, "alpha", "10.0.0.0/8", t0.Add(-day)),    // bogon entry
			listing(t, "gamma", "45.0.0.0/16", t0.Add(-day)),
			listing(t, "beta", "2a00:1450:4001::/48", t0.Add(-day)),
		},
		Episodes: []store.Episode{
			episode(t, "beta", "45.10.0.1/32", t0.Add(-4*day), t0.Add(-3*day)),
		},
	}
}

func TestCheck(t *testing.T) {
	clock := &fakeClock{t: t0}
	s := newTestService(t, serviceData(t), clock, ServiceOptions{})
	tests := []struct {
		name, addr string
		ip         string
		ioc        bool
		active     bool
		historical bool
		action     string
		lists      []string
	}{
		{"a host listed by two feeds now is an active IoC and blocks", "192.0.2.10", "192.0.2.10", true, true, false, ActionBlock, []string{"alpha", "beta"}},
		{"an address inside a listed /16 is an active IoC", "45.0.200.1", "45.0.200.1", true, true, false, ActionBlock, []string{"gamma"}},
		{"an IPv6 address inside a listed /48 is an active IoC", "2a00:1450:4001:81c::200e", "2a00:1450:4001:81c::200e", true, true, false, ActionBlock, []string{"beta"}},
		{"an address listed only in the past is historical and does not block", "45.10.0.1", "45.10.0.1", true, false, true, "", []string{"beta"}},
		{"an unlisted address is clean", "8.8.8.8", "8.8.8.8", false, false, false, ActionAllow, []string{}},
		{"an IPv4-mapped address answers as IPv4", "::ffff:192.0.2.10", "192.0.2.10", true, true, false, ActionBlock, []string{"alpha", "beta"}},
		{"a zone is dropped", "2a00:1450:4001::1%eth0", "2a00:1450:4001::1", true, true, false, ActionBlock, []string{"beta"}},
		{"an IPv6 address is canonical", "2A00:1450:4001:0000:0000:0000:0000:0001", "2a00:1450:4001::1", true, true, false, ActionBlock, []string{"beta"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := s.Check(mustAddr(t, tt.addr))
			if a.IP != tt.ip || a.IsIoC != tt.ioc || a.IsActive != tt.active || a.Historical != tt.historical {
				t.Errorf("got ip %q ioc %v active %v historical %v; want %q %v %v %v",
					a.IP, a.IsIoC, a.IsActive, a.Historical, tt.ip, tt.ioc, tt.active, tt.historical)
			}
			if tt.action != "" && a.Action != tt.action {
				t.Errorf("action = %q (score %v, %q), want %q", a.Action, a.Score, a.Description, tt.action)
			}
			if tt.historical && a.Action == ActionBlock {
				t.Errorf("a historical-only address blocks (score %v)", a.Score)
			}
			if !slices.Equal(a.Blacklists, tt.lists) {
				t.Errorf("blacklists = %q, want %q", a.Blacklists, tt.lists)
			}
			if a.Blacklists == nil || a.Type == nil || a.Reasons == nil {
				t.Error("a slice of the answer is nil")
			}
			if tt.ioc != (a.FirstSeen != nil && a.LastSeen != nil) {
				t.Errorf("first/last seen = %v/%v for ioc=%v", a.FirstSeen, a.LastSeen, tt.ioc)
			}
		})
	}
}

func TestCheckFirstAndLastSeen(t *testing.T) {
	clock := &fakeClock{t: t0}
	s := newTestService(t, serviceData(t), clock, ServiceOptions{})
	a := s.Check(mustAddr(t, "192.0.2.10"))
	if a.FirstSeen == nil || !a.FirstSeen.Equal(t0.Add(-48*time.Hour)) {
		t.Errorf("first_seen = %v, want the earliest listing %v", a.FirstSeen, t0.Add(-48*time.Hour))
	}
	if a.LastSeen == nil || !a.LastSeen.Equal(t0.Add(-time.Hour)) {
		t.Errorf("last_seen = %v, want the sources' confirmation %v", a.LastSeen, t0.Add(-time.Hour))
	}
	h := s.Check(mustAddr(t, "45.10.0.1"))
	if h.LastSeen == nil || !h.LastSeen.Equal(t0.Add(-72*time.Hour)) {
		t.Errorf("historical last_seen = %v, want the episode's end", h.LastSeen)
	}
}

func TestReservedAddresses(t *testing.T) {
	clock := &fakeClock{t: t0}
	s := newTestService(t, serviceData(t), clock, ServiceOptions{})
	tests := []struct {
		name, addr, mention string
	}{
		{"an RFC 1918 address inside a bogon listing of 10/8", "10.9.9.9", "RFC 1918"},
		{"an RFC 1918 address of 192.168/16", "192.168.1.1", "RFC 1918"},
		{"a 172.16/12 address", "172.31.255.255", "RFC 1918"},
		{"loopback", "127.0.0.1", "loopback"},
		{"link-local", "169.254.169.254", "link-local"},
		{"CGNAT", "100.64.1.1", "carrier-grade NAT"},
		{"benchmarking space listed whole by a bogon list", "198.18.5.5", "benchmarking"},
		{"documentation TEST-NET-3", "203.0.113.7", "TEST-NET-3"},
		{"multicast", "224.0.0.251", "multicast"},
		{"limited broadcast", "255.255.255.255", "broadcast"},
		{"the unspecified IPv4 address", "0.0.0.0", "unspecified"},
		{"IPv6 loopback", "::1", "loopback"},
		{"IPv6 unspecified", "::", "unspecified"},
		{"IPv6 unique local", "fd12:3456::1", "unique local"},
		{"IPv6 link-local", "fe80::1", "link-local"},
		{"IPv6 documentation", "2001:db8::1", "documentation"},
		{"IPv6 multicast", "ff02::1", "multicast"},
		{"IPv4-mapped loopback", "::ffff:127.0.0.1", "loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is allowed and says why", func(t *testing.T) {
			a := s.Check(mustAddr(t, tt.addr))
			if a.Score != 100 || a.Verdict != VerdictNone || a.Action != ActionAllow || a.IsIoC {
				t.Errorf("got score %v verdict %q action %q ioc %v", a.Score, a.Verdict, a.Action, a.IsIoC)
			}
			if !strings.Contains(a.Description, "reserved") || !strings.Contains(a.Description, tt.mention) {
				t.Errorf("description %q does not name the reserved block (%s)", a.Description, tt.mention)
			}
		})
	}
	t.Run("a listing more specific than the reserved block is scored", func(t *testing.T) {
		a := s.Check(mustAddr(t, "10.1.2.3"))
		if !a.IsIoC || !slices.Equal(a.Blacklists, []string{"gamma"}) {
			t.Errorf("got ioc %v blacklists %q; want the explicit listing by gamma only", a.IsIoC, a.Blacklists)
		}
	})
	t.Run("the ignored bogon listings are counted in the description", func(t *testing.T) {
		a := s.Check(mustAddr(t, "10.9.9.9"))
		if !strings.Contains(a.Description, "1 listings of the whole block ignored") {
			t.Errorf("description %q", a.Description)
		}
	})
}

func TestCheckAt(t *testing.T) {
	day := 24 * time.Hour
	clock := &fakeClock{t: t0}
	s := newTestService(t, serviceData(t), clock, ServiceOptions{})
	ep := mustAddr(t, "45.10.0.1") // episode from -4d to -3d
	tests := []struct {
		name       string
		at         time.Time
		ioc        bool
		active     bool
		historical bool
	}{
		{"before the episode the address was clean", t0.Add(-5 * day), false, false, false},
		{"during the episode the address was active", t0.Add(-3*day - time.Hour), true, true, false},
		{"after the episode the address is historical", t0.Add(-2 * day), true, false, true},
		{"now the address is historical", t0, true, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := s.CheckAt(ep, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			if a.IsIoC != tt.ioc || a.IsActive != tt.active || a.Historical != tt.historical {
				t.Errorf("at %s: ioc %v active %v historical %v", tt.at, a.IsIoC, a.IsActive, a.Historical)
			}
			if a.LastSeen != nil && a.LastSeen.After(tt.at) {
				t.Errorf("last_seen %s is after the moment asked %s", a.LastSeen, tt.at)
			}
		})
	}
	t.Run("a listing that began later is not seen", func(t *testing.T) {
		a, err := s.CheckAt(mustAddr(t, "192.0.2.10"), t0.Add(-36*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(a.Blacklists, []string{"beta"}) {
			t.Errorf("blacklists = %q, want only beta (alpha began at -24h)", a.Blacklists)
		}
	})
	for _, bad := range []struct {
		name string
		at   time.Time
	}{
		{"a moment before the retention window is refused", t0.Add(-8 * day)},
		{"a moment in the future is refused", t0.Add(time.Minute)},
	} {
		t.Run(bad.name, func(t *testing.T) {
			if _, err := s.CheckAt(ep, bad.at); !errors.Is(err, ErrOutsideRetention) {
				t.Errorf("err = %v, want ErrOutsideRetention", err)
			}
		})
	}
}

func TestCheckDropsEpisodesThatLeftRetention(t *testing.T) {
	clock := &fakeClock{t: t0}
	s := newTestService(t, serviceData(t), clock, ServiceOptions{})
	clock.t = t0.Add(5 * 24 * time.Hour) // the episode ended 8 days ago; the index is older
	if a := s.Check(mustAddr(t, "45.10.0.1")); a.IsIoC {
		t.Errorf("an episode older than retention still counts: %q", a.Blacklists)
	}
}

func TestAppendJSONIsCheckRendered(t *testing.T) {
	clock := &fakeClock{t: t0}
	s := newTestService(t, serviceData(t), clock, ServiceOptions{})
	for _, addr := range []string{"192.0.2.10", "8.8.8.8", "10.9.9.9", "45.10.0.1", "2a00:1450:4001::1"} {
		a := mustAddr(t, addr)
		want, err := json.Marshal(s.Check(a))
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // miss, then hit
			if got := s.AppendJSON(nil, a); !bytes.Equal(got, want) {
				t.Errorf("%s: AppendJSON = %s\nwant %s", addr, got, want)
			}
		}
		j := s.Judge(a)
		var ans Answer
		if err := json.Unmarshal(want, &ans); err != nil {
			t.Fatal(err)
		}
		if j != (Judgement{Score: ans.Score, Verdict: ans.Verdict, Action: ans.Action}) {
			t.Errorf("%s: Judge = %+v, want the answer's judgement", addr, j)
		}
	}
}

func TestSwapInvalidatesCache(t *testing.T) {
	clock := &fakeClock{t: t0}
	s := newTestService(t, serviceData(t), clock, ServiceOptions{})
	a := mustAddr(t, "8.8.8.8")
	if got := s.Judge(a).Action; got != ActionAllow {
		t.Fatalf("before: action %q", got)
	}
	gen := s.Generation()
	d := serviceData(t)
	d.Listings = append(d.Listings, listing(t, "alpha", "8.8.8.0/24", t0.Add(-time.Hour)))
	s.Swap(Build(d, BuildOptions{Now: clock.Now}))
	if s.Generation() != gen+1 {
		t.Errorf("generation %d after swap, want %d", s.Generation(), gen+1)
	}
	if got := s.Judge(a).Action; got != ActionBlock {
		t.Errorf("after swap: cached judgement survived, action %q", got)
	}
	if !bytes.Contains(s.AppendJSON(nil, a), []byte(`"is_IoC":true`)) {
		t.Error("after swap: cached JSON survived")
	}
}

func TestCacheExpiresAfterTTL(t *testing.T) {
	clock := &fakeClock{t: t0}
	s := newTestService(t, serviceData(t), clock, ServiceOptions{CacheTTL: time.Minute})
	a := mustAddr(t, "45.10.0.1")
	first := s.Judge(a)
	clock.t = t0.Add(30 * time.Second)
	if s.Judge(a) != first {
		t.Fatal("judgement changed within the TTL")
	}
	// Four days on, the historical listing has decayed: a fresh answer
	// must show it.
	clock.t = t0.Add(4 * 24 * time.Hour)
	fresh := s.Check(a)
	if got := s.Judge(a); got.Score != fresh.Score {
		t.Errorf("after the TTL the cache served score %v, a fresh answer says %v", got.Score, fresh.Score)
	}
	if fresh.Score == first.Score {
		t.Errorf("the test is void: the score did not change over four days (%v)", fresh.Score)
	}
}

func TestCacheDisabled(t *testing.T) {
	clock := &fakeClock{t: t0}
	s := newTestService(t, serviceData(t), clock, ServiceOptions{CacheSize: -1})
	a := mustAddr(t, "192.0.2.10")
	if s.Judge(a).Action != ActionBlock || s.cache.len() != 0 {
		t.Error("a disabled cache still caches or answers wrong")
	}
}

func TestReadyAndGeneration(t *testing.T) {
	s := NewService(ServiceOptions{Now: (&fakeClock{t: t0}).Now})
	if s.Ready() || s.Generation() != 0 {
		t.Fatalf("new service: ready %v generation %d", s.Ready(), s.Generation())
	}
	if a := s.Check(netip.MustParseAddr("192.0.2.1")); a.IsIoC || a.Blacklists == nil {
		t.Errorf("an empty service answers %+v", a)
	}
	s.Swap(nil)
	if !s.Ready() || s.Generation() != 1 {
		t.Errorf("after swap: ready %v generation %d", s.Ready(), s.Generation())
	}
}

func TestHistory(t *testing.T) {
	clock := &fakeClock{t: t0}
	s := newTestService(t, serviceData(t), clock, ServiceOptions{})
	h := s.History(mustAddr(t, "192.0.2.10"))
	if got := matchSet(h); !slices.Equal(got, []string{"alpha 192.0.2.10/32", "beta 192.0.2.10/32"}) {
		t.Errorf("History = %q", got)
	}
	if len(h) == 2 && h[0].Since.After(h[1].Since) {
		t.Error("History is not oldest first")
	}
	if h := s.History(mustAddr(t, "10.1.2.3")); len(h) != 2 {
		t.Errorf("History of 10.1.2.3 = %q, want the host and the 10/8 listing", matchSet(h))
	}
	if h := s.History(mustAddr(t, "8.8.4.4")); h == nil || len(h) != 0 {
		t.Errorf("History of an unlisted address = %#v, want empty and not nil", h)
	}
}

func TestConcurrentCheckDuringSwap(t *testing.T) {
	clock := &fakeClock{t: t0}
	d := synthData(2000, 20, 3, 11)
	s := newTestService(t, d, clock, ServiceOptions{CacheSize: 256})
	addrs := make([]netip.Addr, 0, 64)
	for _, l := range d.Listings[:64] {
		addrs = append(addrs, l.Prefix.Addr())
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			var buf []byte
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				a := addrs[i%len(addrs)]
				buf = s.AppendJSON(buf[:0], a)
				if !json.Valid(buf) {
					t.Errorf("invalid JSON for %s", a)
					return
				}
				_ = s.Judge(a)
				_ = s.Check(a)
			}
		})
	}
	for i := range 10 {
		s.Swap(Build(synthData(2000, 20, 3, uint64(12+i)), BuildOptions{Now: clock.Now}))
	}
	close(stop)
	wg.Wait()
	if s.Generation() != 11 {
		t.Errorf("generation %d, want 11", s.Generation())
	}
}

// tableWarner is a warninglist of fixed ranges: a stand-in for
// misp.Warninglists with the same contract.
type tableWarner struct{ ranges map[string]netip.Prefix }

var _ Warner = (*tableWarner)(nil)

func (w *tableWarner) Warnings(p netip.Prefix) []Warning {
	var out []Warning
	for name, r := range w.ranges {
		if r.Overlaps(p) && r.Bits() <= p.Bits() {
			out = append(out, Warning{List: name, Match: r.String()})
		}
	}
	return out
}

func TestWarningsReachTheAnswer(t *testing.T) {
	clock := &fakeClock{t: t0}
	w := &tableWarner{ranges: map[string]netip.Prefix{"Example CDN": mustPrefix(t, "45.0.0.0/20")}}
	s := newTestService(t, serviceData(t), clock, ServiceOptions{Warner: w})
	a := s.Check(mustAddr(t, "45.0.1.1"))
	if len(a.Warnings) != 1 || a.Warnings[0].List != "Example CDN" || a.Warnings[0].Match != "45.0.0.0/20" {
		t.Errorf("warnings = %+v", a.Warnings)
	}
	if b := s.Check(mustAddr(t, "45.0.200.1")); len(b.Warnings) != 0 {
		t.Errorf("an address outside the warninglist has warnings %+v", b.Warnings)
	}
	if !bytes.Contains(s.AppendJSON(nil, mustAddr(t, "45.0.1.1")), []byte(`"warnings":[{"list":"Example CDN"`)) {
		t.Error("the rendered answer lacks the warning")
	}
}
