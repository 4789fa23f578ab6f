package reputation

import (
	"github.com/prometheus/client_golang/prometheus"
)

// CacheStats counts the answer cache's work since the service started.
// A lookup that finds an entry of an older index generation or past its
// TTL is a miss (the answer is recomputed). With the cache disabled every
// count is 0.
type CacheStats struct {
	Hits      uint64
	Misses    uint64
	Evictions uint64
	// Entries is the number of cached answers, stale ones included.
	Entries int
}

// CacheStats returns the answer cache's counters. It takes no lock that
// the hot path takes for long: each shard's length is read under its own
// lock, one at a time.
func (s *Service) CacheStats() CacheStats {
	h, m, ev := s.cache.counts()
	return CacheStats{Hits: h, Misses: m, Evictions: ev, Entries: s.cache.len()}
}

// collector exports a Service's index and cache state. It reads the state
// at scrape time, so the hot path pays only for its cache counters.
type collector struct {
	svc *Service

	prefixes, generation, built, sources, skipped *prometheus.Desc
	hits, misses, evictions, entries              *prometheus.Desc
}

var _ prometheus.Collector = (*collector)(nil)

// NewCollector returns a Prometheus collector of svc's current index
// (size, generation, build time) and answer cache (hits, misses,
// evictions, entries). Register it once per registry.
func NewCollector(svc *Service) prometheus.Collector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &collector{
		svc:        svc,
		prefixes:   d("rampart_index_prefixes", "Distinct prefixes in the current index (host addresses count as prefixes), current or historical."),
		generation: d("rampart_index_generation", "Generation of the current index: 0 before the first swap, one more on each swap."),
		built:      d("rampart_index_build_timestamp_seconds", "When the current index was built, in seconds since the Unix epoch."),
		sources:    d("rampart_index_sources", "Sources (feeds and MISP events) described in the current index."),
		skipped:    d("rampart_index_skipped_records", "Listings and episodes that the build of the current index skipped as invalid (bad prefix or time)."),
		hits:       d("rampart_cache_hits_total", "Answers served from the answer cache."),
		misses:     d("rampart_cache_misses_total", "Answer cache lookups that computed the answer: absent, of an older index, or past the TTL."),
		evictions:  d("rampart_cache_evictions_total", "Cached answers evicted to make room for another."),
		entries:    d("rampart_cache_entries", "Answers in the cache, stale ones included."),
	}
}

// Describe sends the descriptors of every metric Collect sends.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.prefixes, c.generation, c.built, c.sources, c.skipped, c.hits, c.misses, c.evictions, c.entries} {
		ch <- d
	}
}

// Collect reads the current snapshot once, so that the index metrics of
// one scrape describe the same index.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	snap := c.svc.cur.Load()
	idx := snap.idx
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(c.prefixes, float64(idx.Len()))
	gauge(c.generation, float64(snap.gen))
	gauge(c.built, float64(idx.BuiltAt().UnixNano())/1e9)
	gauge(c.sources, float64(len(idx.sources)))
	gauge(c.skipped, float64(idx.stats.Skipped))
	cs := c.svc.CacheStats()
	counter(c.hits, cs.Hits)
	counter(c.misses, cs.Misses)
	counter(c.evictions, cs.Evictions)
	gauge(c.entries, float64(cs.Entries))
}
