package enrich_test

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/enrich"
	"github.com/rampart-ip/rampart/internal/shared"
	"github.com/rampart-ip/rampart/misp"
	"github.com/rampart-ip/rampart/reputation"
	"github.com/rampart-ip/rampart/store"
)

// The benchmarks here are the /ip hot path as served: a 1M-host index
// built with the real ASN and country databases of shared/data/geoip-real
// and MISP's warninglists, so that a cache miss pays for the MaxMind
// lookups and the warninglist match as it does in production.

var benchT0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

type benchWorld struct {
	enricher *enrich.Enricher
	warner   *misp.Warninglists
	data     reputation.Data
	idx      *reputation.Index
}

var (
	benchOnce sync.Once
	world     *benchWorld
	benchErr  error
)

// benchSetup builds the world once per run.
func benchSetup(b *testing.B) (*benchWorld, error) {
	asn := shared.Data(b, "geoip-real", "asn.mmdb")
	country := shared.Data(b, "geoip-real", "country.mmdb")
	lists := shared.Data(b, "misp", "warninglists")
	benchOnce.Do(func() { world, benchErr = newBenchWorld(asn, country, lists) })
	return world, benchErr
}

func newBenchWorld(asn, country, lists string) (*benchWorld, error) {
	log := slog.New(slog.DiscardHandler)
	e, err := enrich.Open(config.GeoIP{ASN: asn, Country: country}, log)
	if err != nil {
		return nil, err
	}
	w, err := misp.LoadWarninglists(lists)
	if err != nil {
		return nil, err
	}
	d := benchData(1_000_000, 10_000, 20)
	idx := reputation.Build(d, reputation.BuildOptions{
		Enricher: e, Warner: w, Retention: 7 * 24 * time.Hour,
		Now: func() time.Time { return benchT0 },
	})
	return &benchWorld{enricher: e, warner: w, data: d, idx: idx}, nil
}

// benchData is hosts random IPv4 hosts (one in ten an ended episode) and
// ranges random ranges of /16 to /30, spread over sources feeds.
func benchData(hosts, ranges, sources int) reputation.Data {
	r := rand.New(rand.NewPCG(1, 2))
	var d reputation.Data
	for i := range sources {
		d.Sources = append(d.Sources, reputation.SourceInfo{
			Name: fmt.Sprintf("feed-%02d", i), Kind: store.KindFeed, Provider: fmt.Sprintf("provider-%02d", i),
			Category: "bruteforce", Weight: 0.9, ConfirmedAt: benchT0.Add(-time.Hour),
		})
	}
	since := func() time.Time { return benchT0.Add(-time.Duration(r.Int64N(int64(30 * 24 * time.Hour)))) }
	for range hosts {
		p := netip.PrefixFrom(benchAddr(r.Uint32()), 32)
		src := d.Sources[r.IntN(sources)].Name
		if r.IntN(10) == 0 {
			s := since()
			d.Episodes = append(d.Episodes, store.Episode{Source: src, Prefix: p, Started: s, Ended: s.Add(time.Hour)})
			continue
		}
		d.Listings = append(d.Listings, store.Listing{Source: src, Prefix: p, Since: since()})
	}
	for range ranges {
		p, _ := benchAddr(r.Uint32()).Prefix(16 + r.IntN(15))
		d.Listings = append(d.Listings, store.Listing{Source: d.Sources[r.IntN(sources)].Name, Prefix: p, Since: since()})
	}
	return d
}

// cpuTime returns the process's user+system CPU time: benchmarks report
// cpu-ns/op beside ns/op because these machines are shared, and wall time
// includes the time other tenants hold the cores.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

func benchAddr(u uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}

// benchProbes returns n addresses as bench/load.lua draws them: one in
// ten a listed host, the rest random.
func benchProbes(d reputation.Data, n int) []netip.Addr {
	r := rand.New(rand.NewPCG(3, 4))
	out := make([]netip.Addr, n)
	for i := range out {
		if i%10 == 0 {
			out[i] = d.Listings[r.IntN(len(d.Listings))].Prefix.Addr()
		} else {
			out[i] = benchAddr(r.Uint32())
		}
	}
	runtime.GC()
	return out
}

func benchService(b *testing.B, cacheSize int) (*reputation.Service, []netip.Addr) {
	b.Helper()
	w, err := benchSetup(b)
	if err != nil {
		b.Fatal(err)
	}
	s := reputation.NewService(reputation.ServiceOptions{
		CacheSize: cacheSize, CacheTTL: time.Hour, Enricher: w.enricher, Warner: w.warner,
		Now: func() time.Time { return benchT0 },
	})
	s.Swap(w.idx)
	return s, benchProbes(w.data, 1<<16)
}

// BenchmarkAppendJSONMiss cycles through 64k addresses with a cache of
// 1k, so nearly every call looks up, enriches, scores, renders and caches.
func BenchmarkAppendJSONMiss(b *testing.B) {
	s, probes := benchService(b, 1024)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	i := 0
	start := cpuTime()
	for b.Loop() {
		buf = s.AppendJSON(buf[:0], probes[i&(1<<16-1)])
		i++
	}
	reportCPU(b, start)
}

// BenchmarkAppendJSONMissParallel is the load benchmark's shape from every
// core, with the default cache: one address in ten a listed host (mostly
// cached after a while), the rest fresh random addresses (misses).
func BenchmarkAppendJSONMissParallel(b *testing.B) {
	s, probes := benchService(b, 0)
	b.ReportAllocs()
	start := cpuTime()
	defer reportCPU(b, start)
	var next sync.Mutex
	seed := uint64(0)
	b.RunParallel(func(pb *testing.PB) {
		next.Lock()
		seed++
		r := rand.New(rand.NewPCG(seed, 7))
		next.Unlock()
		buf := make([]byte, 0, 4096)
		for i := 0; pb.Next(); i++ {
			a := benchAddr(r.Uint32())
			if i%10 == 0 {
				a = probes[r.IntN(len(probes)/10)*10] // a listed one
			}
			buf = s.AppendJSON(buf[:0], a)
		}
	})
}

// BenchmarkEnrich is the enricher's share of a miss: the metadata and the
// ASN and country the context features ask for, as the service asks.
func BenchmarkEnrich(b *testing.B) {
	w, err := benchSetup(b)
	if err != nil {
		b.Fatal(err)
	}
	probes := benchProbes(w.data, 1<<16)
	b.ReportAllocs()
	i := 0
	start := cpuTime()
	for b.Loop() {
		a := probes[i&(1<<16-1)]
		w.enricher.ASN(a)
		w.enricher.Country(a)
		w.enricher.Metadata(a)
		i++
	}
	reportCPU(b, start)
}
