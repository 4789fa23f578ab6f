package reputation

import (
	"iter"
	"net/netip"
	"time"
)

// Decision is one listed prefix that blocks: for CrowdSec decision streams
// and blocklist exports.
type Decision struct {
	Prefix netip.Prefix
	Judgement
	// Source is the strongest source behind the block (Scored.Strongest).
	Source string
	// Until is when the block would lapse if no source confirmed the
	// listing again (see Blocked for how it is found).
	Until time.Time
}

// BlockHorizon is the furthest ahead Blocked looks for a block to lapse: a
// prefix that still blocks then reports now + BlockHorizon, and the next
// export renews it.
const BlockHorizon = 30 * 24 * time.Hour

// Blocked iterates the listed prefixes whose action is block at now. Each
// distinct listed prefix (host addresses are /32 and /128) is judged once,
// with the matches of its own listings and of every listed supernet, the
// context of its first address and the warnings for the whole prefix:
// ranges first, in address order, then IPv4 hosts. A prefix inside a
// prefix already reported is left out: the block of the supernet covers
// it. Prefixes that cover a whole reserved block (bogon-list entries such
// as 10.0.0.0/8) never block; listings strictly inside one do.
//
// Until is found by asking the model: the prefix is scored again as if
// nothing changed in between, first at now + BlockHorizon (a block that
// holds then reports that), else at now plus 1h, 6h, 1d, 3d and 7d;
// between the last probe that blocks and the first that does not, four
// bisections narrow the lapse to a sixteenth of the interval, and the
// earlier bound is reported, so Until never overstates the block. Each
// decision costs 1 to 10 Score calls: about 10 s of CPU for a million
// blocked hosts on this machine class, so callers serving frequent
// polls (CrowdSec streams) should keep the result per Generation and
// refresh it on a schedule rather than per request.
//
// The iteration reads one index snapshot: a Swap during it does not change
// what it yields.
func (s *Service) Blocked(now time.Time) iter.Seq[Decision] {
	return func(yield func(Decision) bool) {
		idx := s.cur.Load().idx
		cutoff := retentionCutoff(idx, now)
		covered := make([]bool, len(idx.pfx))
		var ev Evidence
		for j := range idx.pfx {
			// Parents sort before their subnets, so covered[parent] is final.
			if p := idx.pfxPar[j]; p >= 0 && covered[p] {
				covered[j] = true
				continue
			}
			d, ok := s.decide(idx, ref(^int32(j)), now, cutoff, &ev)
			if !ok {
				continue
			}
			covered[j] = true
			if !yield(d) {
				return
			}
		}
		for i := range idx.nHosts() {
			if p := idx.matches[idx.hosts4[i].off].par; p >= 0 && covered[p] {
				continue
			}
			d, ok := s.decide(idx, ref(i), now, cutoff, &ev)
			if ok && !yield(d) {
				return
			}
		}
	}
}

// decide judges entry r at now and returns its decision if it blocks. ev
// is reused between calls to spare allocations.
func (s *Service) decide(idx *Index, r ref, now, cutoff time.Time, ev *Evidence) (Decision, bool) {
	p := idx.prefix(r)
	if idx.isBogon(r) {
		return Decision{}, false
	}
	ev.Addr = p.Addr()
	ms, _ := idx.appendEntry(ev.Matches[:0], r, false)
	ev.Matches = filterMatches(ms, cutoff, now, false)
	if len(ev.Matches) == 0 {
		return Decision{}, false
	}
	ev.Context = idx.near.context(p.Addr())
	ev.Metadata = Metadata{}
	if e := s.enricherFor(idx); e != nil {
		ev.Metadata = e.Metadata(p.Addr())
	}
	ev.Warnings = nil
	if w := s.warnerFor(idx); w != nil {
		ev.Warnings = w.Warnings(p)
	}
	sc := s.model.Score(ev, now)
	if sc.Action != ActionBlock {
		return Decision{}, false
	}
	return Decision{
		Prefix:    p,
		Judgement: sc.Judgement,
		Source:    strongest(&sc, ev),
		Until:     s.until(ev, now),
	}, true
}

// until returns the last moment found at which ev still blocks. It
// assumes that without new evidence a score only rises with time (decay),
// so one probe at the horizon settles the blocks that never lapse.
func (s *Service) until(ev *Evidence, now time.Time) time.Time {
	blocks := func(t time.Time) bool { return s.model.Score(ev, t).Action == ActionBlock }
	if blocks(now.Add(BlockHorizon)) {
		return now.Add(BlockHorizon)
	}
	probes := [...]time.Duration{time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour, 7 * 24 * time.Hour, BlockHorizon}
	last := now
	for _, d := range probes {
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

// strongest names the source the model calls strongest, or else the
// source of the most specific open match.
func strongest(sc *Scored, ev *Evidence) string {
	if sc.Strongest != "" {
		return sc.Strongest
	}
	for i := range ev.Matches {
		if ev.Matches[i].Ended.IsZero() {
			return ev.Matches[i].Source.Name
		}
	}
	return ev.Matches[0].Source.Name
}
