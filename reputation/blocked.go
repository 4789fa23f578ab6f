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

// Blocked iterates the listed prefixes whose action is block, as of a
// moment within BlockSetMaxAge of now: the decisions of BlockSet(now),
// computed once per index generation and refreshed when they grow older
// than that. Each distinct listed prefix (host addresses are /32 and
// /128) is judged once, with the matches of its own listings and of every
// listed supernet, the context of its first address and the warnings for
// the whole prefix: ranges first, in address order, then IPv4 hosts. A
// prefix inside a prefix already reported is left out: the block of the
// supernet covers it. Prefixes that cover a whole reserved block
// (bogon-list entries such as 10.0.0.0/8) never block; listings strictly
// inside one do.
//
// Until is found by asking the model: the prefix is scored again as if
// nothing changed in between, first at the moment plus BlockHorizon (a
// block that holds then reports that), else at the moment plus 1h, 6h,
// 1d, 3d and 7d; between the last probe that blocks and the first that
// does not, four bisections narrow the lapse to a sixteenth of the
// interval, and the earlier bound is reported, so Until never overstates
// the block. This assumes, as the model's decay does, that without new
// evidence a score only rises with time. Decisions with the same sources
// and last-seen times usually lapse in the same sixteenth: the first
// such decision's interval is tried first for the next one, and two
// probes at its ends settle it (exactly the answer of the full search,
// given that assumption); a miss falls back to the full search.
//
// The iteration reads one index snapshot: a Swap during it does not change
// what it yields.
func (s *Service) Blocked(now time.Time) iter.Seq[Decision] {
	return s.BlockSet(now).All()
}

// computeBlockSet judges every listed prefix of the snapshot at now.
func (s *Service) computeBlockSet(snap *snapshot, now time.Time) *BlockSet {
	idx := snap.idx
	j := &blockJudge{
		s: s, idx: idx, now: now, cutoff: retentionCutoff(idx, now),
		enricher: s.enricherFor(idx), warner: s.warnerFor(idx),
		cells: map[uint64]untilCell{}, srcID: map[*SourceInfo]uint64{},
	}
	b := newBlockSetBuilder(snap.gen, now, idx.Len())
	covered := make([]bool, len(idx.pfx))
	var d Decision
	for k := range idx.pfx {
		// Parents sort before their subnets, so covered[parent] is final.
		if p := idx.pfxPar[k]; p >= 0 && covered[p] {
			covered[k] = true
			continue
		}
		if j.decide(ref(^int32(k)), &d) {
			covered[k] = true
			b.add(&d)
		}
	}
	for i := range idx.nHosts() {
		if p := idx.matches[idx.hosts4[i].off].par; p >= 0 && covered[p] {
			continue
		}
		if j.decide(ref(i), &d) {
			b.add(&d)
		}
	}
	return b.finish()
}

// blockJudge judges the entries of one index at one moment, reusing its
// evidence buffer and the lapse intervals it has found.
type blockJudge struct {
	s        *Service
	idx      *Index
	now      time.Time
	cutoff   time.Time
	enricher Enricher
	warner   Warner
	ev       Evidence

	// cells maps an evidence signature to the interval its lapse was
	// last found in; srcID numbers the sources for signatures.
	cells map[uint64]untilCell
	srcID map[*SourceInfo]uint64
}

// maxUntilCells bounds the intervals remembered in one computation: real
// data has a few signatures per feed; hostile data must not grow it.
const maxUntilCells = 1 << 16

// untilCell is where a lapse was found: in (now+lo, now+hi], reported as
// now+lo; or, with horizon set, beyond the horizon.
type untilCell struct {
	lo, hi  time.Duration
	horizon bool
}

// decide judges entry r and fills d if it blocks.
func (j *blockJudge) decide(r ref, d *Decision) bool {
	idx, ev := j.idx, &j.ev
	p := idx.prefix(r)
	if idx.isBogon(r) {
		return false
	}
	ev.Addr = p.Addr()
	ms, _ := idx.appendEntry(ev.Matches[:0], r, false)
	ev.Matches = filterMatches(ms, j.cutoff, j.now, false)
	if len(ev.Matches) == 0 {
		return false
	}
	ev.Context = idx.near.context(p.Addr())
	ev.Metadata = Metadata{}
	if j.enricher != nil {
		ev.Metadata = j.enricher.Metadata(p.Addr())
	}
	ev.Warnings = nil
	if j.warner != nil {
		ev.Warnings = j.warner.Warnings(p)
	}
	sc := j.s.model.Score(ev, j.now)
	if sc.Action != ActionBlock {
		return false
	}
	*d = Decision{Prefix: p, Judgement: sc.Judgement, Source: strongest(&sc, ev), Until: j.until()}
	return true
}

func (j *blockJudge) blocks(after time.Duration) bool {
	return j.s.model.Score(&j.ev, j.now.Add(after)).Action == ActionBlock
}

// until returns the last moment found at which the evidence still blocks
// (see Blocked). The evidence blocks at now.
func (j *blockJudge) until() time.Time {
	key := j.signature()
	c, seen := j.cells[key]
	horizonChecked := false
	if seen {
		switch {
		case c.horizon:
			if j.blocks(BlockHorizon) {
				return j.now.Add(BlockHorizon)
			}
			horizonChecked = true
		case !j.blocks(c.hi) && (c.lo == 0 || j.blocks(c.lo)):
			// Monotony puts the lapse in (lo, hi], the cell the full
			// search would end in.
			return j.now.Add(c.lo)
		}
	}
	c, ok := j.search(horizonChecked)
	if ok && (seen || len(j.cells) < maxUntilCells) {
		j.cells[key] = c
	}
	if c.horizon {
		return j.now.Add(BlockHorizon)
	}
	return j.now.Add(c.lo)
}

// search is the full search for the lapse; horizonChecked skips the
// first probe when it is known not to block. It reports false when no
// probe failed (which monotony rules out).
func (j *blockJudge) search(horizonChecked bool) (untilCell, bool) {
	if !horizonChecked && j.blocks(BlockHorizon) {
		return untilCell{horizon: true}, true
	}
	probes := [...]time.Duration{time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour, 7 * 24 * time.Hour, BlockHorizon}
	var last time.Duration
	for _, t := range probes {
		if !j.blocks(t) {
			lo, hi := last, t
			for range 4 {
				mid := lo + (hi-lo)/2
				if j.blocks(mid) {
					lo = mid
				} else {
					hi = mid
				}
			}
			return untilCell{lo: lo, hi: hi}, true
		}
		last = t
	}
	return untilCell{lo: last, hi: last}, false
}

// signature hashes what the lapse mostly depends on: each match's
// source, last seen and end, and the warnings' count. Equal evidence
// gives equal signatures; a collision only costs the two probes.
func (j *blockJudge) signature() uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	mix := func(v uint64) { h = (h ^ v) * prime; h ^= h >> 29 }
	for i := range j.ev.Matches {
		m := &j.ev.Matches[i]
		id, ok := j.srcID[m.Source]
		if !ok {
			id = uint64(len(j.srcID)) + 1
			j.srcID[m.Source] = id
		}
		mix(id)
		mix(uint64(toNanos(m.LastSeen)))
		mix(uint64(toNanos(m.Ended)))
	}
	mix(uint64(len(j.ev.Warnings)))
	return h
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
