package reputation

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// metricNames are the collector's metrics, in the order the expected
// exposition text lists them.
var metricNames = []string{
	"rampart_cache_entries",
	"rampart_cache_evictions_total",
	"rampart_cache_hits_total",
	"rampart_cache_misses_total",
	"rampart_index_build_timestamp_seconds",
	"rampart_index_generation",
	"rampart_index_prefixes",
	"rampart_index_skipped_records",
	"rampart_index_sources",
}

// exposition renders the expected values in the text format, with the
// collector's help texts taken from a scrape so that only values are
// compared.
func exposition(t *testing.T, c prometheus.Collector, values map[string]string) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		v, ok := values[mf.GetName()]
		if !ok {
			t.Fatalf("no expected value for %s", mf.GetName())
		}
		typ := strings.ToLower(mf.GetType().String())
		b.WriteString("# HELP " + mf.GetName() + " " + mf.GetHelp() + "\n# TYPE " + mf.GetName() + " " + typ + "\n" + mf.GetName() + " " + v + "\n")
	}
	return b.String()
}

func TestCollector(t *testing.T) {
	clock := &fakeClock{t: t0}
	built := float64(t0.Unix())
	a := mustAddr(t, "192.0.2.10")
	b := mustAddr(t, "45.0.3.4")
	tests := []struct {
		name string
		opts ServiceOptions
		act  func(s *Service)
		want map[string]string
	}{
		{
			name: "a fresh index counts its prefixes and sources and nothing is cached",
			act:  func(*Service) {},
			want: map[string]string{
				"rampart_index_prefixes": "7", "rampart_index_generation": "1", "rampart_index_sources": "3",
				"rampart_index_build_timestamp_seconds": fmtFloat(built), "rampart_index_skipped_records": "0",
				"rampart_cache_hits_total": "0", "rampart_cache_misses_total": "0",
				"rampart_cache_evictions_total": "0", "rampart_cache_entries": "0",
			},
		},
		{
			name: "a repeated query is one miss then hits",
			act: func(s *Service) {
				s.AppendJSON(nil, a)
				s.AppendJSON(nil, a)
				s.Judge(a)
				s.AppendJSON(nil, b)
			},
			want: map[string]string{
				"rampart_index_prefixes": "7", "rampart_index_generation": "1", "rampart_index_sources": "3",
				"rampart_index_build_timestamp_seconds": fmtFloat(built), "rampart_index_skipped_records": "0",
				"rampart_cache_hits_total": "2", "rampart_cache_misses_total": "2",
				"rampart_cache_evictions_total": "0", "rampart_cache_entries": "2",
			},
		},
		{
			name: "an answer of the previous index or past its TTL is a miss",
			act: func(s *Service) {
				s.AppendJSON(nil, a)
				s.Swap(Build(Data{Sources: testSources()[:1], Listings: serviceData(t).Listings[:1]}, BuildOptions{Now: clock.Now}))
				s.AppendJSON(nil, a) // older generation
				clock.t = clock.t.Add(2 * DefaultCacheTTL)
				s.AppendJSON(nil, a) // expired
				clock.t = t0
			},
			want: map[string]string{
				"rampart_index_prefixes": "1", "rampart_index_generation": "2", "rampart_index_sources": "1",
				"rampart_index_build_timestamp_seconds": fmtFloat(built), "rampart_index_skipped_records": "0",
				"rampart_cache_hits_total": "0", "rampart_cache_misses_total": "3",
				"rampart_cache_evictions_total": "0", "rampart_cache_entries": "1",
			},
		},
		{
			name: "a full shard evicts its oldest answer",
			// One entry per shard: two addresses of the same shard evict each other.
			opts: ServiceOptions{CacheSize: cacheShards},
			act: func(s *Service) {
				x, y := sameShard(t, s.cache)
				s.AppendJSON(nil, x)
				s.AppendJSON(nil, y)
				s.AppendJSON(nil, x)
			},
			want: map[string]string{
				"rampart_index_prefixes": "7", "rampart_index_generation": "1", "rampart_index_sources": "3",
				"rampart_index_build_timestamp_seconds": fmtFloat(built), "rampart_index_skipped_records": "0",
				"rampart_cache_hits_total": "0", "rampart_cache_misses_total": "3",
				"rampart_cache_evictions_total": "2", "rampart_cache_entries": "1",
			},
		},
		{
			name: "a disabled cache reports zeros",
			opts: ServiceOptions{CacheSize: -1},
			act: func(s *Service) {
				s.AppendJSON(nil, a)
				s.AppendJSON(nil, a)
			},
			want: map[string]string{
				"rampart_index_prefixes": "7", "rampart_index_generation": "1", "rampart_index_sources": "3",
				"rampart_index_build_timestamp_seconds": fmtFloat(built), "rampart_index_skipped_records": "0",
				"rampart_cache_hits_total": "0", "rampart_cache_misses_total": "0",
				"rampart_cache_evictions_total": "0", "rampart_cache_entries": "0",
			},
		},
		{
			name: "an invalid record is counted as skipped",
			act: func(s *Service) {
				d := serviceData(t)
				d.Listings = append(d.Listings, listing(t, "alpha", "192.0.2.99/32", time.Time{}))
				s.Swap(Build(d, BuildOptions{Retention: 7 * 24 * time.Hour, Now: clock.Now}))
			},
			want: map[string]string{
				"rampart_index_prefixes": "7", "rampart_index_generation": "2", "rampart_index_sources": "3",
				"rampart_index_build_timestamp_seconds": fmtFloat(built), "rampart_index_skipped_records": "1",
				"rampart_cache_hits_total": "0", "rampart_cache_misses_total": "0",
				"rampart_cache_evictions_total": "0", "rampart_cache_entries": "0",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestService(t, serviceData(t), clock, tt.opts)
			tt.act(s)
			c := NewCollector(s)
			if n := testutil.CollectAndCount(c); n != len(metricNames) {
				t.Errorf("collected %d metrics, want %d", n, len(metricNames))
			}
			if err := testutil.CollectAndCompare(c, strings.NewReader(exposition(t, c, tt.want)), metricNames...); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestCollectorLint(t *testing.T) {
	s := newTestService(t, serviceData(t), &fakeClock{t: t0}, ServiceOptions{})
	problems, err := testutil.CollectAndLint(NewCollector(s))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func TestCacheHitAllocatesNothing(t *testing.T) {
	s := newTestService(t, serviceData(t), &fakeClock{t: t0}, ServiceOptions{})
	a := mustAddr(t, "192.0.2.10")
	buf := s.AppendJSON(make([]byte, 0, 4096), a)
	allocs := testing.AllocsPerRun(100, func() { buf = s.AppendJSON(buf[:0], a) })
	if allocs != 0 {
		t.Errorf("a cache hit allocates %.1f times, want 0", allocs)
	}
	if got := s.CacheStats().Hits; got < 100 {
		t.Errorf("hits = %d after 100 hits", got)
	}
}

// sameShard returns two addresses that fall in the same cache shard.
func sameShard(t *testing.T, c *answerCache) (netip.Addr, netip.Addr) {
	t.Helper()
	first := netip.AddrFrom4([4]byte{198, 51, 100, 1})
	want := c.shard(first)
	for i := 2; i < 256; i++ {
		a := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		if c.shard(a) == want {
			return first, a
		}
	}
	t.Fatal("no two addresses of 198.51.100.0/24 share a shard")
	return netip.Addr{}, netip.Addr{}
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
