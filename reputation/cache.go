package reputation

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
)

// cacheShards splits the answer cache so that concurrent requests on
// different addresses rarely wait for the same lock: an LRU Get is a write
// (it moves the entry to the front), so one lock would serialise every
// request.
const cacheShards = 32

// cachedOverhead is what one entry costs beside its body, counted against
// the byte bound: the cached struct (64 bytes), the LRU's list element and
// map slot (about 100 bytes together), rounded up for allocator size
// classes.
const cachedOverhead = 192

// cached is one rendered answer. It is immutable once in the cache.
type cached struct {
	gen       uint64 // index generation it was computed from
	expires   int64  // Unix nanoseconds after which it is recomputed
	judgement Judgement
	body      []byte // the /ip JSON, exactly as long as it needs to be
}

// cost is what e counts against the cache's byte bound.
func (e *cached) cost() int64 { return int64(cap(e.body)) + cachedOverhead }

// answerCache is a sharded LRU of rendered answers keyed by address.
// Entries carry the index generation, so Swap invalidates every entry at
// once by bumping the generation, without purging (and without taking
// every shard's lock while readers wait); stale entries age out of the
// LRU or are replaced on their next request.
//
// Besides its entry count the cache is bounded by bytes: answers vary in
// size (an address listed by many feeds renders many reasons), and the
// bound is what keeps the process's memory predictable.
type answerCache struct {
	shards   [cacheShards]*lru.Cache[netip.Addr, *cached]
	stats    [cacheShards]shardStats
	perShard int64 // byte bound of one shard
}

// shardStats counts one shard's lookups for the metrics. Counters are per
// shard and padded to a cache line, so that concurrent hits on different
// shards do not contend for one counter's line; a shard's own lock is
// already shared by its readers.
// bytes is the cost of the shard's entries, kept by add and the LRU's
// eviction callback.
type shardStats struct {
	hits, misses, evictions atomic.Uint64
	bytes                   atomic.Int64
	_                       [64 - 4*8]byte
}

// newAnswerCache returns a cache of about size entries and maxBytes bytes,
// or nil for size <= 0. maxBytes <= 0 leaves only the entry bound.
func newAnswerCache(size int, maxBytes int64) *answerCache {
	if size <= 0 {
		return nil
	}
	per := max(size/cacheShards, 1)
	c := &answerCache{perShard: maxBytes / cacheShards}
	if maxBytes <= 0 {
		c.perShard = 1<<63 - 1
	}
	for i := range c.shards {
		st := &c.stats[i]
		// lru.NewWithEvict fails only for a size <= 0. The callback runs
		// for every entry leaving the shard (evicted, removed as stale or
		// trimmed for bytes), so bytes stays exact.
		c.shards[i], _ = lru.NewWithEvict(per, func(_ netip.Addr, e *cached) { st.bytes.Add(-e.cost()) })
	}
	return c
}

// shard returns the index of a's shard.
func (c *answerCache) shard(a netip.Addr) int {
	b := a.As16()
	h := binary.LittleEndian.Uint64(b[:8]) ^ binary.LittleEndian.Uint64(b[8:])
	h *= 0x9e3779b97f4a7c15
	return int(h >> 59)
}

// get returns the entry for a if it is of generation gen and fresh at now.
// An entry of an older generation or past its TTL counts as a miss: the
// answer is recomputed.
func (c *answerCache) get(a netip.Addr, gen uint64, now int64) (*cached, bool) {
	if c == nil {
		return nil, false
	}
	i := c.shard(a)
	e, ok := c.shards[i].Get(a)
	if !ok || e.gen != gen || now >= e.expires {
		c.stats[i].misses.Add(1)
		if ok {
			// Stale: drop it, so that add (which keeps an entry already
			// present) stores the fresh answer.
			c.shards[i].Remove(a)
		}
		return nil, false
	}
	c.stats[i].hits.Add(1)
	return e, true
}

// add stores e for a unless an entry for a is already there (a
// concurrent miss on the same address stored it first; both are fresh),
// then evicts the least recently used entries while the shard is over its
// byte bound.
func (c *answerCache) add(a netip.Addr, e *cached) {
	if c == nil {
		return
	}
	i := c.shard(a)
	sh, st := c.shards[i], &c.stats[i]
	_, found, evicted := sh.PeekOrAdd(a, e)
	if found {
		return
	}
	st.bytes.Add(e.cost())
	if evicted {
		st.evictions.Add(1)
	}
	for st.bytes.Load() > c.perShard {
		if _, _, ok := sh.RemoveOldest(); !ok {
			break
		}
		st.evictions.Add(1)
	}
}

// counts returns the hits, misses and evictions so far.
func (c *answerCache) counts() (hits, misses, evictions uint64) {
	if c == nil {
		return 0, 0, 0
	}
	for i := range c.stats {
		hits += c.stats[i].hits.Load()
		misses += c.stats[i].misses.Load()
		evictions += c.stats[i].evictions.Load()
	}
	return hits, misses, evictions
}

// size returns the bytes counted against the bound.
func (c *answerCache) size() int64 {
	if c == nil {
		return 0
	}
	var n int64
	for i := range c.stats {
		n += c.stats[i].bytes.Load()
	}
	return n
}

// len returns the number of entries, stale ones included.
func (c *answerCache) len() int {
	if c == nil {
		return 0
	}
	n := 0
	for _, s := range c.shards {
		n += s.Len()
	}
	return n
}
