package reputation

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/store"
)

func blockedData(t testing.TB) Data {
	d := serviceData(t)
	d.Sources = append(d.Sources, SourceInfo{Name: "brief", Kind: store.KindFeed, Provider: "d", Weight: 0.9,
		Lifetime: 6 * time.Hour, ConfirmedAt: t0})
	d.Listings = append(d.Listings,
		listing(t, "alpha", "45.0.5.5/32", t0.Add(-time.Hour)), // inside the blocked 45.0.0.0/16
		listing(t, "brief", "192.0.2.77/32", t0.Add(-time.Hour)),
		listing(t, "alpha", "0.0.0.0/1", t0.Add(-time.Hour)), // a broken feed: half the Internet
	)
	return d
}

func decisions(s *Service, now time.Time) map[netip.Prefix]Decision {
	out := map[netip.Prefix]Decision{}
	for d := range s.Blocked(now) {
		out[d.Prefix] = d
	}
	return out
}

func TestBlocked(t *testing.T) {
	clock := &fakeClock{t: t0}
	s := newTestService(t, blockedData(t), clock, ServiceOptions{})
	got := decisions(s, t0)
	// 10.1.2.3 is listed specifically, so whether it blocks is the
	// model's call, and Blocked must agree with Check.
	explicit := mustPrefix(t, "10.1.2.3/32")
	if _, ok := got[explicit]; ok != (s.Check(explicit.Addr()).Action == ActionBlock) {
		t.Errorf("Blocked and Check disagree on %s", explicit)
	}
	delete(got, explicit)
	var prefixes []string
	for p := range got {
		prefixes = append(prefixes, p.String())
	}
	slices.Sort(prefixes)
	// 10.0.0.0/8, 198.18.0.0/15 and 0.0.0.0/1 cover reserved blocks and
	// never block, nor does 45.10.0.1 (historical, inside 0.0.0.0/1);
	// 45.0.5.5 is inside the blocked 45.0.0.0/16.
	want := []string{"192.0.2.10/32", "192.0.2.77/32", "2a00:1450:4001::/48", "45.0.0.0/16"}
	if !slices.Equal(prefixes, want) {
		t.Fatalf("blocked prefixes = %q, want %q", prefixes, want)
	}
	for p, d := range got {
		if d.Action != ActionBlock || d.Verdict != VerdictDangerous {
			t.Errorf("%s: judgement %+v", p, d.Judgement)
		}
		if d.Until.Before(t0) || d.Until.After(t0.Add(BlockHorizon)) {
			t.Errorf("%s: until %s outside [now, now+horizon]", p, d.Until)
		}
		if j := s.Judge(p.Addr()); j.Action != ActionBlock {
			t.Errorf("%s: Blocked yields it but Check says %q", p, j.Action)
		}
	}
	t.Run("the strongest source is named", func(t *testing.T) {
		if src := got[mustPrefix(t, "45.0.0.0/16")].Source; src != "gamma" {
			t.Errorf("source = %q, want gamma", src)
		}
	})
	t.Run("a short lifetime lapses within hours, a long one within the horizon", func(t *testing.T) {
		short := got[mustPrefix(t, "192.0.2.77/32")].Until
		long := got[mustPrefix(t, "192.0.2.10/32")].Until
		if !short.Before(t0.Add(3*24*time.Hour)) || !short.After(t0) {
			t.Errorf("6h-lifetime block until %s, want within three days", short)
		}
		if !long.After(short) {
			t.Errorf("14-day-lifetime block until %s, not after the short one %s", long, short)
		}
	})
	t.Run("until is when the block still holds", func(t *testing.T) {
		d := got[mustPrefix(t, "192.0.2.77/32")]
		if a, err := s.CheckAt(mustAddr(t, "192.0.2.77"), t0); err != nil || a.Action != ActionBlock {
			t.Fatalf("now: %v %v", a.Action, err)
		}
		clock.t = d.Until
		if j := s.Check(mustAddr(t, "192.0.2.77")); j.Action != ActionBlock {
			t.Errorf("at until %s the block already lapsed (score %v)", d.Until, j.Score)
		}
		clock.t = d.Until.Add(6 * time.Hour)
		if j := s.Check(mustAddr(t, "192.0.2.77")); j.Action == ActionBlock {
			t.Errorf("six hours after until the block still holds (score %v)", j.Score)
		}
		clock.t = t0
	})
	t.Run("iteration stops when the consumer stops", func(t *testing.T) {
		n := 0
		for range s.Blocked(t0) {
			n++
			break
		}
		if n != 1 {
			t.Errorf("got %d decisions after break", n)
		}
	})
}

func TestListingsCoveringReservedBlocksAreNoEvidence(t *testing.T) {
	clock := &fakeClock{t: t0}
	s := newTestService(t, blockedData(t), clock, ServiceOptions{})
	a := s.Check(mustAddr(t, "45.10.0.1"))
	if slices.Contains(a.Blacklists, "alpha") || a.IsActive {
		t.Errorf("the 0.0.0.0/1 listing counts as evidence: %q active %v", a.Blacklists, a.IsActive)
	}
	h := s.History(mustAddr(t, "45.10.0.1"))
	if got := matchSet(h); !slices.Contains(got, "alpha 0.0.0.0/1") {
		t.Errorf("History leaves out the bogon listing: %q", got)
	}
}

func TestBlockedLaterIsEmptier(t *testing.T) {
	clock := &fakeClock{t: t0}
	s := newTestService(t, blockedData(t), clock, ServiceOptions{})
	later := decisions(s, t0.Add(2*24*time.Hour))
	if _, ok := later[mustPrefix(t, "192.0.2.77/32")]; ok {
		t.Error("a 6h-lifetime listing still blocks two days later")
	}
	if _, ok := later[mustPrefix(t, "192.0.2.10/32")]; !ok {
		t.Error("a 14-day-lifetime listing no longer blocks two days later")
	}
}

// referenceBlocked is the definition of Blocked without the block set:
// every listed prefix judged afresh at now, the lapse found by the full
// search for each decision alone.
func referenceBlocked(s *Service, now time.Time) []Decision {
	idx := s.cur.Load().idx
	cutoff := retentionCutoff(idx, now)
	covered := make([]bool, len(idx.pfx))
	var out []Decision
	judge := func(r ref) (Decision, bool) {
		p := idx.prefix(r)
		if idx.isBogon(r) {
			return Decision{}, false
		}
		ev := &Evidence{Addr: p.Addr()}
		ms, _ := idx.appendEntry(nil, r, false)
		ev.Matches = filterMatches(ms, cutoff, now, false)
		if len(ev.Matches) == 0 {
			return Decision{}, false
		}
		ev.Context = idx.near.context(p.Addr())
		if e := s.enricherFor(idx); e != nil {
			ev.Metadata = e.Metadata(p.Addr())
		}
		if w := s.warnerFor(idx); w != nil {
			ev.Warnings = w.Warnings(p)
		}
		sc := s.model.Score(ev, now)
		if sc.Action != ActionBlock {
			return Decision{}, false
		}
		blocks := func(t time.Time) bool { return s.model.Score(ev, t).Action == ActionBlock }
		until := func() time.Time {
			if blocks(now.Add(BlockHorizon)) {
				return now.Add(BlockHorizon)
			}
			last := now
			for _, d := range []time.Duration{time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour, 7 * 24 * time.Hour, BlockHorizon} {
				t := now.Add(d)
				if !blocks(t) {
					lo, hi := last, t
					for range 4 {
						mid := lo.Add(hi.Sub(lo) / 2)
						if blocks(mid) {
							lo = mid
						} else {
							hi = mid
						}
					}
					return lo
				}
				last = t
			}
			return last
		}
		return Decision{Prefix: p, Judgement: sc.Judgement, Source: strongest(&sc, ev), Until: until()}, true
	}
	for j := range idx.pfx {
		if p := idx.pfxPar[j]; p >= 0 && covered[p] {
			covered[j] = true
			continue
		}
		if d, ok := judge(ref(^int32(j))); ok {
			covered[j] = true
			out = append(out, d)
		}
	}
	for i := range idx.nHosts() {
		if p := idx.matches[idx.hosts4[i].off].par; p >= 0 && covered[p] {
			continue
		}
		if d, ok := judge(ref(i)); ok {
			out = append(out, d)
		}
	}
	return out
}

// randomBlockData is a varied data set for comparing the block set with
// its definition: sources of every lifetime and weight, confirmed at
// different times; IPv4 and IPv6 hosts and nested ranges; open listings
// and ended episodes.
func randomBlockData(seed uint64, hosts int) Data {
	r := rand.New(rand.NewPCG(seed, seed^0xb10c))
	lifetimes := []time.Duration{0, 6 * time.Hour, 36 * time.Hour, 4 * 24 * time.Hour, 14 * 24 * time.Hour, 60 * 24 * time.Hour}
	weights := []float64{0, 0.5, 0.8, 0.9, 1}
	var d Data
	for i := range 12 {
		d.Sources = append(d.Sources, SourceInfo{
			Name: fmt.Sprintf("src-%02d", i), Kind: store.KindFeed, Provider: fmt.Sprintf("p%d", i%8),
			Category: "bruteforce", Weight: weights[r.IntN(len(weights))], Lifetime: lifetimes[r.IntN(len(lifetimes))],
			ConfirmedAt: t0.Add(-time.Duration(r.IntN(96)) * time.Hour),
		})
	}
	src := func() string { return d.Sources[r.IntN(len(d.Sources))].Name }
	ago := func(max time.Duration) time.Time { return t0.Add(-time.Duration(r.Int64N(int64(max)))) }
	addPrefix := func(p netip.Prefix) {
		for range 1 + r.IntN(3) {
			if r.IntN(6) == 0 {
				s := ago(10 * 24 * time.Hour)
				d.Episodes = append(d.Episodes, store.Episode{Source: src(), Prefix: p, Started: s.Add(-48 * time.Hour), Ended: s})
				continue
			}
			d.Listings = append(d.Listings, store.Listing{Source: src(), Prefix: p, Since: ago(20 * 24 * time.Hour)})
		}
	}
	// Hosts and ranges crowd into 64 /16s, so that ranges nest and hosts
	// fall inside them.
	base := func() uint32 { return uint32(45+r.IntN(64))<<24 | r.Uint32N(1<<8)<<16 }
	for range hosts {
		addPrefix(netip.PrefixFrom(addr4(base()|r.Uint32N(1<<16)), 32))
	}
	for range hosts / 20 {
		p, _ := addr4(base() | r.Uint32N(1<<16)).Prefix(16 + r.IntN(15))
		addPrefix(p)
	}
	for range hosts / 10 {
		var a [16]byte
		a[0], a[1], a[5], a[15] = 0x2a, 0x01, byte(r.IntN(4)), byte(r.IntN(256))
		bits := []int{32, 48, 64, 128}[r.IntN(4)]
		p, _ := netip.AddrFrom16(a).Prefix(bits)
		addPrefix(p)
	}
	return d
}

func TestBlockSetEqualsTheDefinition(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprintf("random data set %d", seed), func(t *testing.T) {
			clock := &fakeClock{t: t0}
			w := &tableWarner{ranges: map[string]netip.Prefix{"Example CDN": mustPrefix(t, "46.0.0.0/8"), "v6": mustPrefix(t, "2a01:0:0:0::/64")}}
			s := newTestService(t, randomBlockData(seed, 3000), clock, ServiceOptions{Warner: w})
			want := referenceBlocked(s, t0)
			got := slices.Collect(s.Blocked(t0))
			if len(want) < 100 {
				t.Fatalf("only %d decisions: the data set does not exercise the set", len(want))
			}
			lapses := map[time.Duration]bool{}
			for _, d := range want {
				lapses[d.Until.Sub(t0)] = true
			}
			if len(lapses) < 5 {
				t.Fatalf("only %d distinct lapses: the data set does not exercise the search", len(lapses))
			}
			if len(got) != len(want) {
				t.Fatalf("%d decisions, want %d", len(got), len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.Prefix != w.Prefix || g.Judgement != w.Judgement || g.Source != w.Source || !g.Until.Equal(w.Until) {
					t.Fatalf("decision %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestBlockSetIsCachedPerGeneration(t *testing.T) {
	clock := &fakeClock{t: t0}
	s := newTestService(t, blockedData(t), clock, ServiceOptions{})
	first := s.BlockSet(t0)
	if first.Generation() != s.Generation() || !first.At().Equal(t0) || first.Len() == 0 {
		t.Fatalf("set of generation %d at %s with %d decisions", first.Generation(), first.At(), first.Len())
	}
	t.Run("the set is reused within a generation and its age bound", func(t *testing.T) {
		for _, now := range []time.Time{t0, t0.Add(time.Minute), t0.Add(BlockSetMaxAge), t0.Add(-time.Minute)} {
			if got := s.BlockSet(now); got != first {
				t.Errorf("at %s: a new set", now)
			}
		}
	})
	t.Run("an older set is computed again at the asked moment", func(t *testing.T) {
		now := t0.Add(BlockSetMaxAge + time.Second)
		got := s.BlockSet(now)
		if got == first || !got.At().Equal(now) {
			t.Fatalf("set at %s, want a new one at %s", got.At(), now)
		}
		if again := s.BlockSet(now.Add(time.Minute)); again != got {
			t.Error("the recomputed set is not kept")
		}
	})
	t.Run("a swap replaces the set", func(t *testing.T) {
		d := blockedData(t)
		d.Listings = append(d.Listings, listing(t, "gamma", "203.0.113.9/32", t0.Add(-time.Hour)))
		s.Swap(Build(d, BuildOptions{Retention: 7 * 24 * time.Hour, Now: clock.Now}))
		got := s.BlockSet(t0)
		if got.Generation() != s.Generation() || got.Generation() == first.Generation() {
			t.Fatalf("generation %d after swap, service at %d", got.Generation(), s.Generation())
		}
		if _, ok := decisions(s, t0)[mustPrefix(t, "203.0.113.9/32")]; !ok {
			t.Error("the new index's listing does not block")
		}
		if got.Len() != first.Len()+1 {
			t.Errorf("%d decisions after adding one, had %d", got.Len(), first.Len())
		}
	})
}

// gatedWarner counts its calls and holds the first one for gated until
// the gate opens, so that a test can keep a block set computation in
// flight. Queries ask about single addresses and never wait.
type gatedWarner struct {
	gated netip.Prefix
	gate  chan struct{}
	held  chan struct{} // closed once the gated call waits
	once  sync.Once
	calls atomic.Int64
}

func (w *gatedWarner) Warnings(p netip.Prefix) []Warning {
	w.calls.Add(1)
	if p == w.gated {
		w.once.Do(func() {
			close(w.held)
			<-w.gate
		})
	}
	return nil
}

func TestConcurrentFirstCallersComputeOnce(t *testing.T) {
	clock := &fakeClock{t: t0}
	w := &gatedWarner{gated: mustPrefix(t, "45.0.0.0/16"), gate: make(chan struct{}), held: make(chan struct{})}
	s := newTestService(t, blockedData(t), clock, ServiceOptions{Warner: w, CacheSize: -1})

	const callers = 8
	sets := make(chan *BlockSet, callers)
	var started sync.WaitGroup
	started.Add(callers)
	for range callers {
		go func() {
			started.Done()
			sets <- s.BlockSet(t0)
		}()
	}
	started.Wait()
	<-w.held // one computation is in flight, held in the middle

	t.Run("queries and swaps do not wait for the computation", func(t *testing.T) {
		if a := s.Check(mustAddr(t, "192.0.2.10")); a.Action != ActionBlock {
			t.Errorf("check during the computation: %q", a.Action)
		}
	})
	close(w.gate)
	var first *BlockSet
	for range callers {
		got := <-sets
		if first == nil {
			first = got
		}
		if got != first {
			t.Fatal("callers got different sets")
		}
	}
	total := w.calls.Load()
	// One more computation from scratch tells how many calls one makes.
	s.Swap(Build(blockedData(t), BuildOptions{Retention: 7 * 24 * time.Hour, Now: clock.Now}))
	before := w.calls.Load()
	s.BlockSet(t0)
	one := w.calls.Load() - before
	if one == 0 || total != one+1 {
		t.Errorf("%d warninglist calls for %d concurrent callers, %d for one computation (plus one check)", total, callers, one)
	}
}

func TestNewBlockSetKeepsEveryField(t *testing.T) {
	at := t0.In(time.FixedZone("east", 3600))
	in := []Decision{
		{Prefix: mustPrefix(t, "45.0.0.0/16"), Judgement: Judgement{Score: 1.5, Verdict: VerdictDangerous, Action: ActionBlock}, Source: "gamma", Until: at.Add(90 * time.Minute)},
		{Prefix: mustPrefix(t, "2a00:1450:4001::/48"), Judgement: Judgement{Score: 20, Verdict: VerdictDangerous, Action: ActionBlock}, Source: "beta", Until: at.Add(BlockHorizon)},
		{Prefix: mustPrefix(t, "192.0.2.10/32"), Judgement: Judgement{Score: 0, Verdict: "odd", Action: "odd"}, Source: "gamma"},
		{Prefix: mustPrefix(t, "::ffff:198.51.100.0/120"), Source: "mapped", Until: at.Add(-time.Hour)},
		{Source: "invalid prefix"},
	}
	set := NewBlockSet(7, at, slices.Values(in))
	got := slices.Collect(set.All())
	if set.Generation() != 7 || set.At() != at || set.Len() != 4 || len(got) != 4 {
		t.Fatalf("generation %d, at %s, %d decisions (%d yielded)", set.Generation(), set.At(), set.Len(), len(got))
	}
	for i, d := range got {
		if d != in[i] {
			t.Errorf("decision %d = %+v, want %+v", i, d, in[i])
		}
	}
}

func BenchmarkBlockSet1M(b *testing.B) {
	_, idx := bench1M()
	s := NewService(ServiceOptions{Now: func() time.Time { return t0 }})
	s.Swap(idx)
	snap := s.cur.Load()
	runtime.GC()
	b.ReportAllocs()
	n := 0
	start := cpuTime()
	for b.Loop() {
		n = s.computeBlockSet(snap, t0).Len()
	}
	reportCPU(b, start)
	b.ReportMetric(float64(n), "decisions")
	b.ReportMetric(float64(idx.Len()), "prefixes")
}

// BenchmarkBlockSet1MReference is the same computation by the definition
// (every decision searched alone), for comparison.
func BenchmarkBlockSet1MReference(b *testing.B) {
	_, idx := bench1M()
	s := NewService(ServiceOptions{Now: func() time.Time { return t0 }})
	s.Swap(idx)
	runtime.GC()
	b.ReportAllocs()
	n := 0
	start := cpuTime()
	for b.Loop() {
		n = len(referenceBlocked(s, t0))
	}
	reportCPU(b, start)
	b.ReportMetric(float64(n), "decisions")
}

// BenchmarkBlockedCached iterates the cached decisions of 1M hosts.
func BenchmarkBlockedCached(b *testing.B) {
	_, idx := bench1M()
	s := NewService(ServiceOptions{Now: func() time.Time { return t0 }})
	s.Swap(idx)
	s.BlockSet(t0)
	runtime.GC()
	b.ReportAllocs()
	n := 0
	start := cpuTime()
	for b.Loop() {
		n = 0
		for range s.Blocked(t0) {
			n++
		}
	}
	reportCPU(b, start)
	b.ReportMetric(float64(n), "decisions")
}
