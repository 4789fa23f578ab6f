package reputation

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gaissmai/bart"
)

// bench1M is the 1M-host, 10k-range data set and its index, built once
// for all benchmarks of a run.
var bench1M = sync.OnceValues(func() (Data, *Index) {
	d := synthData(1_000_000, 10_000, 20, 1)
	return d, Build(d, BuildOptions{Retention: 7 * 24 * time.Hour, Now: func() time.Time { return t0 }})
})

// cpuTime returns the process's user+system CPU time. Benchmarks report
// cpu-ns/op beside ns/op because these machines are shared: wall time
// includes the time other tenants hold the cores, CPU time does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per operation since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// benchProbes returns n addresses: every other one a listed host, the
// rest uniformly random.
func benchProbes(d Data, n int) []netip.Addr {
	r := rand.New(rand.NewPCG(3, 4))
	out := make([]netip.Addr, n)
	for i := range out {
		if i%2 == 0 {
			out[i] = d.Listings[r.IntN(len(d.Listings))].Prefix.Addr()
		} else {
			out[i] = addr4(r.Uint32())
		}
	}
	// Let the collector finish with the setup's garbage before timing.
	runtime.GC()
	return out
}

func BenchmarkLookup1M(b *testing.B) {
	d, idx := bench1M()
	probes := benchProbes(d, 1<<16)
	buf := make([]Match, 0, 64)
	b.ReportAllocs()
	i := 0
	start := cpuTime()
	for b.Loop() {
		buf, _ = idx.appendMatches(buf[:0], probes[i&(1<<16-1)], false)
		i++
	}
	reportCPU(b, start)
}

// BenchmarkLookup1MBartHosts is the alternative layout: every host in the
// bart table. Kept to justify the sorted-array fast path.
func BenchmarkLookup1MBartHosts(b *testing.B) {
	d, _ := bench1M()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var t bart.Table[int32]
	for i, l := range d.Listings {
		t.Insert(l.Prefix.Masked(), int32(i))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "table-MB")
	probes := benchProbes(d, 1<<16)
	b.ReportAllocs()
	i := 0
	start := cpuTime()
	for b.Loop() {
		t.Lookup(probes[i&(1<<16-1)])
		i++
	}
	reportCPU(b, start)
}

func BenchmarkBuild1M(b *testing.B) {
	d, _ := bench1M()
	b.ReportAllocs()
	var idx *Index
	for b.Loop() {
		idx = Build(d, BuildOptions{Retention: 7 * 24 * time.Hour, Now: func() time.Time { return t0 }})
	}
	// Heap held by one index: measured with the data set and a second
	// index alive, so the difference is the index alone.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	idx2 := Build(d, BuildOptions{Retention: 7 * 24 * time.Hour, Now: func() time.Time { return t0 }})
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "index-MB")
	runtime.KeepAlive(idx)
	runtime.KeepAlive(idx2)
}

func benchService(b *testing.B, cacheSize int) (*Service, []netip.Addr) {
	d, idx := bench1M()
	s := NewService(ServiceOptions{CacheSize: cacheSize, CacheTTL: time.Hour, Now: func() time.Time { return t0 }})
	s.Swap(idx)
	return s, benchProbes(d, 1<<16)
}

func BenchmarkAppendJSONHit(b *testing.B) {
	s, probes := benchService(b, 1<<17)
	probes = probes[:4096]
	buf := make([]byte, 0, 4096)
	for _, a := range probes {
		buf = s.AppendJSON(buf[:0], a)
	}
	b.ReportAllocs()
	i := 0
	start := cpuTime()
	for b.Loop() {
		buf = s.AppendJSON(buf[:0], probes[i&4095])
		i++
	}
	reportCPU(b, start)
}

func BenchmarkAppendJSONHitParallel(b *testing.B) {
	s, probes := benchService(b, 1<<17)
	probes = probes[:4096]
	for _, a := range probes {
		s.AppendJSON(nil, a)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 0, 4096)
		i := 0
		for pb.Next() {
			buf = s.AppendJSON(buf[:0], probes[i&4095])
			i++
		}
	})
}

// BenchmarkAppendJSONMiss cycles through 64k addresses with a cache of
// 1k, so nearly every call looks up, scores, renders and caches.
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

func BenchmarkJudgeHit(b *testing.B) {
	s, probes := benchService(b, 1<<17)
	probes = probes[:4096]
	for _, a := range probes {
		s.Judge(a)
	}
	b.ReportAllocs()
	i := 0
	start := cpuTime()
	for b.Loop() {
		s.Judge(probes[i&4095])
		i++
	}
	reportCPU(b, start)
}

func BenchmarkCheck(b *testing.B) {
	s, probes := benchService(b, -1)
	b.ReportAllocs()
	i := 0
	start := cpuTime()
	for b.Loop() {
		s.Check(probes[i&(1<<16-1)])
		i++
	}
	reportCPU(b, start)
}

func BenchmarkAppendAnswerJSON(b *testing.B) {
	s, probes := benchService(b, -1)
	a := s.Check(probes[0])
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		buf = AppendAnswerJSON(buf[:0], &a)
	}
	reportCPU(b, start)
}

// BenchmarkBlocked100k iterates the block decisions of 100k hosts.
func BenchmarkBlocked100k(b *testing.B) {
	d := synthData(100_000, 1000, 20, 5)
	s := NewService(ServiceOptions{Now: func() time.Time { return t0 }})
	s.Swap(Build(d, BuildOptions{Now: func() time.Time { return t0 }}))
	b.ReportAllocs()
	n := 0
	start := cpuTime()
	for b.Loop() {
		n = 0
		for range s.Blocked(t0) {
			n++
		}
	}
	reportCPU(b, start)
	b.ReportMetric(float64(n), "decisions")
}

// BenchmarkLookup1MEntry is the lookup alone: the entry holding the
// address, without expanding its matches.
func BenchmarkLookup1MEntry(b *testing.B) {
	d, idx := bench1M()
	probes := benchProbes(d, 1<<16)
	b.ReportAllocs()
	i, n := 0, 0
	start := cpuTime()
	for b.Loop() {
		if _, ok := idx.lookup(probes[i&(1<<16-1)]); ok {
			n++
		}
		i++
	}
	reportCPU(b, start)
	runtime.KeepAlive(n)
}
