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

// cached is one rendered answer. It is immutable once in the cache.
type cached struct {
	gen       uint64 // index generation it was computed from
	expires   int64  // Unix nanoseconds after which it is recomputed
	judgement Judgement
	body      []byte // the /ip JSON
}

// answerCache is a sharded LRU of rendered answers keyed by address.
// Entries carry the index generation, so Swap invalidates every entry at
// once by bumping the generation, without purging (and without taking
// every shard's lock while readers wait); stale entries age out of the
// LRU or are replaced on their next request.
type answerCache struct {
	shards [cacheShards]*lru.Cache[netip.Addr, *cached]
	stats  [cacheShards]shardStats
}

// shardStats counts one shard's lookups for the metrics. Counters are per
// shard and padded to a cache line, so that concurrent hits on different
// shards do not contend for one counter's line; a shard's own lock is
// already shared by its readers.
type shardStats struct {
	hits, misses, evictions atomic.Uint64
	_                       [64 - 3*8]byte
}

// newAnswerCache returns a cache of about size entries, or nil for size <= 0.
func newAnswerCache(size int) *answerCache {
	if size <= 0 {
		return nil
	}
	per := max(size/cacheShards, 1)
	c := &answerCache{}
	for i := range c.shards {
		// lru.New fails only for a size <= 0.
		c.shards[i], _ = lru.New[netip.Addr, *cached](per)
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
		return nil, false
	}
	c.stats[i].hits.Add(1)
	return e, true
}

func (c *answerCache) add(a netip.Addr, e *cached) {
	if c == nil {
		return
	}
	i := c.shard(a)
	if c.shards[i].Add(a, e) {
		c.stats[i].evictions.Add(1)
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
