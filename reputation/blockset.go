package reputation

import (
	"iter"
	"math"
	"net/netip"
	"sync"
	"time"
)

// BlockSetMaxAge is how far from a caller's now a cached block set may
// have been computed and still be served by Service.BlockSet and Blocked.
// Decay moves scores and lapse times over hours and days, so five minutes
// keeps decisions current while a CrowdSec bouncer polling every ten
// seconds, or a firewall pulling the blocklist, costs one computation per
// five minutes and per index generation.
const BlockSetMaxAge = 5 * time.Minute

// BlockSet is the block decisions of one index generation as of one
// moment: what Blocked yields, held compactly (40 bytes a decision, no
// pointers for the collector to scan) in the order Blocked documents. It
// is immutable and safe for concurrent use. Service.BlockSet keeps one per
// generation; NewBlockSet makes one from any decisions.
type BlockSet struct {
	gen        uint64
	at         time.Time
	entries    []blockEntry
	sources    []string
	judgements []Judgement // distinct verdict and action pairs (Score unused)
}

// blockEntry is one Decision: the prefix in 16-byte form (IPv4 mapped),
// Until as an offset from the set's moment, the source and judgement as
// indexes into the set's tables.
type blockEntry struct {
	hi, lo uint64
	until  int64 // nanoseconds after BlockSet.at, or untilZero
	score  float64
	src    uint32
	jud    uint16
	bits   uint8
	v4     bool
}

// untilZero marks a decision whose Until is the zero time.
const untilZero = math.MinInt64

// NewBlockSet returns the set of decisions ds, labelled with generation
// gen and moment at. Invalid prefixes are skipped. Until is kept to the
// nanosecond relative to at, so that Until of a yielded decision equals
// the one given (including at's location and monotonic reading for
// decisions computed as at plus a duration).
func NewBlockSet(gen uint64, at time.Time, ds iter.Seq[Decision]) *BlockSet {
	b := newBlockSetBuilder(gen, at, 0)
	for d := range ds {
		b.add(&d)
	}
	return b.finish()
}

// Generation returns the index generation the set was computed from.
func (b *BlockSet) Generation() uint64 { return b.gen }

// At returns the moment the decisions were judged at.
func (b *BlockSet) At() time.Time { return b.at }

// Len returns the number of decisions.
func (b *BlockSet) Len() int { return len(b.entries) }

// All iterates the decisions in the set's order.
func (b *BlockSet) All() iter.Seq[Decision] {
	return func(yield func(Decision) bool) {
		for i := range b.entries {
			if !yield(b.decision(&b.entries[i])) {
				return
			}
		}
	}
}

func (b *BlockSet) decision(e *blockEntry) Decision {
	var p netip.Prefix
	if e.v4 {
		p = netip.PrefixFrom(addr4(uint32(e.lo)), int(e.bits))
	} else {
		var a [16]byte
		for i := range 8 {
			a[i] = byte(e.hi >> (56 - 8*i))
			a[8+i] = byte(e.lo >> (56 - 8*i))
		}
		p = netip.PrefixFrom(netip.AddrFrom16(a), int(e.bits))
	}
	d := Decision{Prefix: p, Judgement: b.judgements[e.jud], Source: b.sources[e.src]}
	d.Score = e.score
	if e.until != untilZero {
		d.Until = b.at.Add(time.Duration(e.until))
	}
	return d
}

// fresh reports whether a set computed for generation gen at moment at
// may answer a caller of generation gen at now.
func fresh(gen uint64, at time.Time, wantGen uint64, now time.Time) bool {
	if gen != wantGen {
		return false
	}
	d := now.Sub(at)
	return d >= -BlockSetMaxAge && d <= BlockSetMaxAge
}

// blockSetBuilder collects decisions into a BlockSet.
type blockSetBuilder struct {
	set     *BlockSet
	srcIdx  map[string]uint32
	judIdx  map[[2]string]uint16
	lastSrc string
	lastIdx uint32
}

func newBlockSetBuilder(gen uint64, at time.Time, capacity int) *blockSetBuilder {
	return &blockSetBuilder{
		set:    &BlockSet{gen: gen, at: at, entries: make([]blockEntry, 0, capacity)},
		srcIdx: map[string]uint32{},
		judIdx: map[[2]string]uint16{},
	}
}

func (b *blockSetBuilder) add(d *Decision) {
	if !d.Prefix.IsValid() {
		return
	}
	p := d.Prefix.Masked()
	e := blockEntry{score: d.Score, bits: uint8(p.Bits()), v4: p.Addr().Is4(), until: untilZero}
	a := p.Addr().As16()
	for i := range 8 {
		e.hi = e.hi<<8 | uint64(a[i])
		e.lo = e.lo<<8 | uint64(a[8+i])
	}
	if !d.Until.IsZero() {
		e.until = int64(d.Until.Sub(b.set.at))
	}
	// Decisions come in runs of one source: remember the last one.
	if len(b.set.sources) > 0 && d.Source == b.lastSrc {
		e.src = b.lastIdx
	} else {
		i, ok := b.srcIdx[d.Source]
		if !ok {
			i = uint32(len(b.set.sources))
			b.srcIdx[d.Source] = i
			b.set.sources = append(b.set.sources, d.Source)
		}
		e.src, b.lastSrc, b.lastIdx = i, d.Source, i
	}
	k := [2]string{d.Verdict, d.Action}
	j, ok := b.judIdx[k]
	if !ok {
		if len(b.set.judgements) > math.MaxUint16 {
			// Verdicts and actions are a handful of constants; a set
			// with more is not one the model made.
			j = 0
		} else {
			j = uint16(len(b.set.judgements))
			b.judIdx[k] = j
			b.set.judgements = append(b.set.judgements, Judgement{Verdict: d.Verdict, Action: d.Action})
		}
	}
	e.jud = j
	b.set.entries = append(b.set.entries, e)
}

// finish returns the set, trimmed when the capacity guessed for it was
// far too large.
func (b *blockSetBuilder) finish() *BlockSet {
	s := b.set
	if cap(s.entries)-len(s.entries) > len(s.entries)/4+64 {
		s.entries = append([]blockEntry(nil), s.entries...)
	}
	return s
}

// blockCache holds a Service's current block set and the computation in
// flight, so that concurrent callers share one computation.
type blockCache struct {
	mu     sync.Mutex
	set    *BlockSet
	flight *blockFlight
}

// blockFlight is one block set computation; done is closed when set is
// filled in (left nil if the computation panicked).
type blockFlight struct {
	gen  uint64
	at   time.Time
	done chan struct{}
	set  *BlockSet
}

// BlockSet returns the block decisions of the current index as of a
// moment within BlockSetMaxAge of now: the cached set when the index has
// not been swapped since and the set is that fresh, else a new one,
// computed once however many callers ask for it at the same time (they
// wait for the first caller's computation). Queries and Swap never wait
// for it: it reads one index snapshot.
func (s *Service) BlockSet(now time.Time) *BlockSet {
	c := &s.blocks
	for {
		snap := s.cur.Load()
		c.mu.Lock()
		if set := c.set; set != nil && fresh(set.gen, set.at, snap.gen, now) {
			c.mu.Unlock()
			return set
		}
		if f := c.flight; f != nil && fresh(f.gen, f.at, snap.gen, now) {
			c.mu.Unlock()
			<-f.done
			if f.set != nil {
				return f.set
			}
			continue // the computation failed: try again
		}
		f := &blockFlight{gen: snap.gen, at: now, done: make(chan struct{})}
		c.flight = f
		c.mu.Unlock()
		return s.runBlockFlight(c, f, snap)
	}
}

func (s *Service) runBlockFlight(c *blockCache, f *blockFlight, snap *snapshot) *BlockSet {
	defer func() {
		c.mu.Lock()
		if c.flight == f {
			c.flight = nil
		}
		// The latest computation of the newest generation wins: the next
		// caller most likely asks about the same moment.
		if f.set != nil && (c.set == nil || f.set.gen >= c.set.gen) {
			c.set = f.set
		}
		c.mu.Unlock()
		close(f.done)
	}()
	f.set = s.computeBlockSet(snap, f.at)
	return f.set
}
