package reputation

import (
	"net/netip"
	"slices"
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
