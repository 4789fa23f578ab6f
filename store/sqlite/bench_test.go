package sqlite

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/store"
)

// million returns n distinct IPv4 host prefixes in ascending order, the
// shape of a large feed after parsing.
func million(n int) []netip.Prefix {
	out := make([]netip.Prefix, n)
	for i := range out {
		v := uint32(0x0b000000 + i*7)
		out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 32)
	}
	return out
}

func benchStore(b *testing.B) *Store {
	b.Helper()
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"), discard())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

var benchNow = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// BenchmarkApply1M measures the first sync of a one-million-entry feed:
// every prefix is new. Each iteration writes into a fresh source.
func BenchmarkApply1M(b *testing.B) {
	ps := million(1_000_000)
	s := benchStore(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		src := fmt.Sprintf("feed-%d", i)
		if err := s.Apply(b.Context(), src, store.Change{Added: ps}, benchNow); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(ps)), "prefixes/op")
}

func loaded1M(b *testing.B) *Store {
	b.Helper()
	s := benchStore(b)
	if err := s.Apply(b.Context(), "big", store.Change{Added: million(1_000_000)}, benchNow); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkListings1M measures streaming a million current listings, what
// an index build at startup reads.
func BenchmarkListings1M(b *testing.B) {
	s := loaded1M(b)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		if err := s.Listings(b.Context(), func(store.Listing) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n != 1_000_000 {
			b.Fatalf("streamed %d listings", n)
		}
	}
}

// BenchmarkSourceListings1M measures reading one source's million prefixes,
// what a sync diffs a new pull against.
func BenchmarkSourceListings1M(b *testing.B) {
	s := loaded1M(b)
	b.ReportAllocs()
	for b.Loop() {
		ps, err := s.SourceListings(b.Context(), "big")
		if err != nil || len(ps) != 1_000_000 {
			b.Fatalf("got %d prefixes, %v", len(ps), err)
		}
	}
}

// BenchmarkApplyUnchanged1M measures an unchanged re-sync of a loaded
// million-entry feed: an empty change.
func BenchmarkApplyUnchanged1M(b *testing.B) {
	s := loaded1M(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Apply(b.Context(), "big", store.Change{}, benchNow); err != nil {
			b.Fatal(err)
		}
	}
}
