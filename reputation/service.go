package reputation

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-ip/rampart/config"
)

// ErrOutsideRetention is returned by CheckAt for a moment the index cannot
// answer for: before the retention window, or in the future.
var ErrOutsideRetention = errors.New("time outside retention window")

// DefaultCacheTTL is how long a rendered answer is served before it is
// recomputed when ServiceOptions.CacheTTL is 0. Scores decay over hours
// and days, so a minute keeps answers current at a negligible cost.
const DefaultCacheTTL = time.Minute

// DefaultCacheSize is the number of cached answers when
// ServiceOptions.CacheSize is 0.
const DefaultCacheSize = 100_000

// DefaultCacheBytes bounds the memory of cached answers when
// ServiceOptions.CacheBytes is 0: 48 MiB, which holds DefaultCacheSize
// answers of typical size (about 300 bytes for an unlisted address, 500 to
// 1,000 for a listed one, plus the entry's own overhead) and keeps a
// process with a million indicators within its memory budget.
const DefaultCacheBytes = 48 << 20

// renderBufSize is the initial capacity of a pooled rendering buffer:
// enough for nearly every answer, so that rendering does not grow it.
const renderBufSize = 2048

// ServiceOptions configure a Service.
type ServiceOptions struct {
	// Model scores evidence; nil means NewModel(config.Default().Scoring).
	Model *Model
	// CacheSize is the number of rendered answers kept; 0 means
	// DefaultCacheSize, a negative value disables the cache.
	CacheSize int
	// Doorkeeper, if set, caches an address only on its second miss within
	// the doorkeeper's memory, so that addresses seen once (scans, random
	// traffic) are answered without churning the cache.
	Doorkeeper bool
	// CacheBytes bounds the memory held by cached answers (their bodies
	// and per-entry overhead); the least recently used are evicted beyond
	// it. 0 means DefaultCacheBytes, a negative value leaves only the
	// CacheSize bound.
	CacheBytes int64
	// CacheTTL is how long a rendered answer is served before it is
	// recomputed, so that decay shows; 0 means DefaultCacheTTL.
	CacheTTL time.Duration
	// Enricher gives metadata; nil falls back to the index's enricher.
	Enricher Enricher
	// Warner gives warninglist hits; nil falls back to the index's warner.
	Warner Warner
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger
	// Observe, if set, is called with every freshly computed current answer
	// (cache misses and Check, not CheckAt), for alerting. It must not block
	// nor keep a reference it mutates.
	Observe func(*Answer)
}

// snapshot is an index with the generation it was swapped in as. Readers
// load it once per request, so index and generation always agree.
type snapshot struct {
	idx *Index
	gen uint64
}

// Service answers "how bad is this address" from the current index. It is
// safe for concurrent use: readers never wait for Swap, and Swap never
// waits for readers.
type Service struct {
	model    *Model
	enricher Enricher
	warner   Warner
	now      func() time.Time
	log      *slog.Logger
	ttl      time.Duration
	reserved *reservedSet
	cache    *answerCache
	door     *doorkeeper // nil: every miss is cached
	observe  func(*Answer)

	cur   atomic.Pointer[snapshot]
	ready atomic.Bool
	swap  sync.Mutex // serialises writers only

	blocks blockCache // the block set of the current generation (blockset.go)

	// scratch pools the per-miss working memory (evidence buffers and the
	// rendering buffer), so that a cache miss allocates only what it keeps.
	scratch sync.Pool
}

// scratch is one miss's working memory.
type scratch struct {
	ev        Evidence
	buf       []byte
	judgement Judgement
}

func (s *Service) getScratch() *scratch {
	if sc, ok := s.scratch.Get().(*scratch); ok {
		return sc
	}
	return &scratch{ev: Evidence{Matches: make([]Match, 0, 16)}, buf: make([]byte, 0, renderBufSize)}
}

// putScratch returns sc to the pool, unless a rare huge answer grew it:
// one such answer must not pin its memory for good.
func (s *Service) putScratch(sc *scratch) {
	if cap(sc.buf) > 64<<10 || cap(sc.ev.Matches) > 1024 {
		return
	}
	clear(sc.ev.Matches)
	sc.ev = Evidence{Matches: sc.ev.Matches[:0]}
	s.scratch.Put(sc)
}

// NewService returns a service holding an empty index; it is not Ready
// until the first Swap.
func NewService(o ServiceOptions) *Service {
	s := &Service{
		model:    o.Model,
		enricher: o.Enricher,
		warner:   o.Warner,
		now:      o.Now,
		log:      o.Logger,
		ttl:      o.CacheTTL,
		reserved: newReservedSet(),
		observe:  o.Observe,
	}
	if s.model == nil {
		s.model = NewModel(config.Default().Scoring)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "reputation")
	if s.ttl <= 0 {
		s.ttl = DefaultCacheTTL
	}
	size := o.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	bytes := o.CacheBytes
	if bytes == 0 {
		bytes = DefaultCacheBytes
	}
	s.cache = newAnswerCache(size, bytes)
	if o.Doorkeeper && size > 0 {
		s.door = newDoorkeeper(size)
	}
	s.cur.Store(&snapshot{idx: Build(Data{}, BuildOptions{Now: s.now})})
	return s
}

// Swap replaces the index whole. Cached answers of the previous index are
// not served again. A nil index is an empty one.
func (s *Service) Swap(idx *Index) {
	if idx == nil {
		idx = Build(Data{}, BuildOptions{Now: s.now})
	}
	s.swap.Lock()
	defer s.swap.Unlock()
	gen := s.cur.Load().gen + 1
	s.cur.Store(&snapshot{idx: idx, gen: gen})
	s.ready.Store(true)
	s.log.Info("index swapped", "generation", gen, "prefixes", idx.Len(), "sources", len(idx.sources))
}

// Ready reports whether an index has been swapped in.
func (s *Service) Ready() bool { return s.ready.Load() }

// Generation returns the current index's generation: 0 before the first
// Swap, then one more on each Swap.
func (s *Service) Generation() uint64 { return s.cur.Load().gen }

// Index returns the current index.
func (s *Service) Index() *Index { return s.cur.Load().idx }

// Check answers for addr now. It is computed afresh; AppendJSON and Judge
// are the cached paths. IPv4-mapped IPv6 addresses are answered as IPv4,
// zones are dropped.
func (s *Service) Check(addr netip.Addr) Answer {
	idx := s.cur.Load().idx
	now := s.now()
	sc := s.getScratch()
	a := s.answer(idx, canonical(addr), now, retentionCutoff(idx, now), false, &sc.ev)
	s.putScratch(sc)
	if s.observe != nil {
		// A copy, so that only observed answers move to the heap.
		o := a
		s.observe(&o)
	}
	return a
}

// CheckAt answers for addr as it stood at time at: listings that began
// later are ignored, episodes that had not yet ended are active, and last
// seen is no later than at. The context features and metadata are the
// current ones. at must be within the index's retention window and not in
// the future; otherwise the error wraps ErrOutsideRetention.
func (s *Service) CheckAt(addr netip.Addr, at time.Time) (Answer, error) {
	idx := s.cur.Load().idx
	now := s.now()
	if at.After(now) {
		return Answer{}, fmt.Errorf("check at %s: in the future: %w", at.Format(time.RFC3339), ErrOutsideRetention)
	}
	if r := idx.retention; r > 0 && at.Before(now.Add(-r)) {
		return Answer{}, fmt.Errorf("check at %s: more than %s ago: %w", at.Format(time.RFC3339), r, ErrOutsideRetention)
	}
	sc := s.getScratch()
	a := s.answer(idx, canonical(addr), at, retentionCutoff(idx, now), true, &sc.ev)
	s.putScratch(sc)
	return a, nil
}

// AppendJSON appends the /ip JSON body for addr to dst. A cached answer of
// the current index, fresh within the cache TTL, is appended without any
// allocation beyond growing dst.
func (s *Service) AppendJSON(dst []byte, addr netip.Addr) []byte {
	e, sc := s.entry(addr)
	if e != nil {
		return append(dst, e.body...)
	}
	dst = append(dst, sc.buf...)
	s.putScratch(sc)
	return dst
}

// Judge returns the judgement of addr, from the same cache as AppendJSON:
// the cheap path for forward-auth and ext_authz.
func (s *Service) Judge(addr netip.Addr) Judgement {
	e, sc := s.entry(addr)
	if e != nil {
		return e.judgement
	}
	j := sc.judgement
	s.putScratch(sc)
	return j
}

// entry returns the cached answer for addr, computing it on a miss. When
// the doorkeeper does not admit addr to the cache (its first sighting
// within the doorkeeper's memory), the answer is not cached: e is nil and
// the scratch holds the rendered body and judgement until the caller
// returns it with putScratch. One-time addresses (scans, random traffic)
// thus never churn the cache.
func (s *Service) entry(addr netip.Addr) (e *cached, sc *scratch) {
	addr = canonical(addr)
	snap := s.cur.Load()
	now := s.now()
	nowNs := now.UnixNano()
	if e, ok := s.cache.get(addr, snap.gen, nowNs); ok {
		return e, nil
	}
	sc = s.getScratch()
	a := s.answer(snap.idx, addr, now, retentionCutoff(snap.idx, now), false, &sc.ev)
	if s.observe != nil {
		// A copy, so that only observed answers move to the heap.
		o := a
		s.observe(&o)
	}
	sc.buf = AppendAnswerJSON(sc.buf[:0], &a)
	sc.judgement = Judgement{Score: a.Score, Verdict: a.Verdict, Action: a.Action}
	if s.door != nil && !s.door.admit(addr) {
		return nil, sc
	}
	// Copied into an exact-length slice: the cache keeps no spare capacity.
	e = &cached{
		gen:       snap.gen,
		expires:   nowNs + int64(s.ttl),
		judgement: sc.judgement,
		body:      append([]byte(nil), sc.buf...),
	}
	s.putScratch(sc)
	s.cache.add(addr, e)
	return e, nil
}

// canonical drops the zone and unmaps IPv4-mapped IPv6 addresses: the
// index holds IPv4 space once, under IPv4.
func canonical(a netip.Addr) netip.Addr {
	if a.Is6() && a.Zone() != "" {
		a = a.WithZone("")
	}
	return a.Unmap()
}

// evidence gathers what is known about addr at time at: the matches (for
// Check, without episodes that left the retention window; for CheckAt,
// as of at, and never listings that cover a whole reserved block), the
// context, metadata and warnings. It returns the reserved block holding
// addr, if any, and how many bogon-list matches it left out (see doc.go).
func (s *Service) evidence(idx *Index, addr netip.Addr, at, cutoff time.Time, asOf bool, ev *Evidence) (res reservedBlock, isReserved bool, ignored int) {
	ev.Addr = addr
	ev.Matches, ignored = idx.appendMatches(ev.Matches[:0], addr, false)
	ev.Matches = filterMatches(ev.Matches, cutoff, at, asOf)
	res, isReserved = s.reserved.lookup(addr)
	ev.Context = idx.near.context(addr)
	if e := s.enricherFor(idx); e != nil {
		ev.Metadata = e.Metadata(addr)
	}
	if w := s.warnerFor(idx); w != nil {
		ev.Warnings = w.Warnings(netip.PrefixFrom(addr, addr.BitLen()))
	}
	return res, isReserved, ignored
}

// filterMatches drops what the index still holds but the moment does not
// see: episodes that ended before the retention window, and (as of a past
// moment) listings that began after it. For a past moment an episode that
// ended later was still open then.
func filterMatches(ms []Match, cutoff, at time.Time, asOf bool) []Match {
	kept := ms[:0]
	for _, m := range ms {
		if !cutoff.IsZero() && !m.Ended.IsZero() && m.Ended.Before(cutoff) {
			continue
		}
		if asOf {
			if m.Since.After(at) {
				continue
			}
			if !m.Ended.IsZero() && m.Ended.After(at) {
				m.Ended = time.Time{}
			}
			if m.LastSeen.After(at) {
				m.LastSeen = at.UTC()
			}
		}
		kept = append(kept, m)
	}
	return kept
}

// retentionCutoff returns the oldest episode end still in the window at
// now, or zero without retention.
func retentionCutoff(idx *Index, now time.Time) time.Time {
	if idx.retention <= 0 {
		return time.Time{}
	}
	return now.Add(-idx.retention)
}

func (s *Service) enricherFor(idx *Index) Enricher {
	if s.enricher != nil {
		return s.enricher
	}
	return idx.enricher
}

func (s *Service) warnerFor(idx *Index) Warner {
	if s.warner != nil {
		return s.warner
	}
	return idx.warner
}

// answer computes the answer for a canonical address, gathering the
// evidence into ev (pooled working memory: the answer keeps nothing of it
// but copies).
func (s *Service) answer(idx *Index, addr netip.Addr, at, cutoff time.Time, asOf bool, ev *Evidence) Answer {
	if !addr.IsValid() {
		return Answer{
			IP: "", Score: 100, Verdict: VerdictNone, Action: ActionAllow,
			Description: "invalid address", Blacklists: []string{}, Type: []string{}, Reasons: []Reason{},
		}
	}
	res, isReserved, ignored := s.evidence(idx, addr, at, cutoff, asOf, ev)
	if isReserved && len(ev.Matches) == 0 {
		return reservedAnswer(addr, res, ignored, ev.Metadata, ev.Warnings)
	}
	sc := s.model.Score(ev, at)
	a := Answer{
		IP:          addr.String(),
		IsIoC:       sc.IsIoC,
		IsActive:    sc.IsActive,
		Historical:  sc.Historical,
		Score:       sc.Score,
		Verdict:     sc.Verdict,
		Action:      sc.Action,
		Description: sc.Description,
		Blacklists:  nonNil(sc.Blacklists),
		Type:        nonNil(sc.Type),
		Metadata:    ev.Metadata,
		Reasons:     nonNil(sc.Reasons),
		Warnings:    ev.Warnings,
	}
	if !sc.FirstSeen.IsZero() {
		t := sc.FirstSeen.UTC()
		a.FirstSeen = &t
	}
	if !sc.LastSeen.IsZero() {
		t := sc.LastSeen.UTC()
		a.LastSeen = &t
	}
	return a
}

// reservedAnswer is the answer for an address in a reserved block that no
// source lists specifically.
func reservedAnswer(addr netip.Addr, r reservedBlock, ignored int, md Metadata, ws []Warning) Answer {
	desc := "reserved address: " + r.name + ", " + r.prefix.String() + "; not scored"
	if ignored > 0 {
		desc += fmt.Sprintf("; %d listings of the whole block ignored", ignored)
	}
	return Answer{
		IP:          addr.String(),
		Score:       100,
		Verdict:     VerdictNone,
		Action:      ActionAllow,
		Description: desc,
		Blacklists:  []string{},
		Type:        []string{},
		Metadata:    md,
		Reasons:     []Reason{{Factor: "reserved", Detail: r.prefix.String() + " " + r.name, Weight: 0}},
		Warnings:    ws,
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Context returns the context features the current index computes for
// addr: what the model weighs for an address that no source lists.
func (s *Service) Context(addr netip.Addr) Context {
	return s.cur.Load().idx.near.context(canonical(addr))
}
