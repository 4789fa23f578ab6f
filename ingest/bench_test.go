package ingest

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/rampart-ip/rampart/misp"
)

const benchEntries = 1_000_000

// writeSynthetic writes a freetext feed of n distinct public IPv4
// addresses (from 11.0.0.0, every 13th) with a comment header and returns
// its path.
func writeSynthetic(b *testing.B, dir string, n int, header string) string {
	b.Helper()
	path := filepath.Join(dir, "feed.txt")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, "# synthetic feed %s\n", header)
	base := uint32(11 << 24)
	for i := range n {
		v := base + uint32(i)*13
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		w.WriteString(a.String())
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkFirstSync1M is a first sync of a 1M-address file into an empty
// SQLite store, index rebuild and swap included.
func BenchmarkFirstSync1M(b *testing.B) {
	ctx := context.Background()
	path := writeSynthetic(b, b.TempDir(), benchEntries, "v1")
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		h := newHarness(b, harnessOptions{maxBytes: 1 << 30})
		h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("synthetic", path)})
		b.StartTimer()
		rep, err := h.eng.SyncFeed(ctx, "synthetic")
		if err != nil || rep.Added != benchEntries {
			b.Fatalf("sync: %+v %v", rep, err)
		}
		b.StopTimer()
		if n := h.svc.Index().Len(); n < benchEntries {
			b.Fatalf("index has %d entries", n)
		}
		_ = h.raw.Close()
		b.StartTimer()
	}
}

// BenchmarkSyncUnchanged1M re-syncs an unchanged 1M-address file: the
// content hash matches, so nothing is parsed or written but the source row.
func BenchmarkSyncUnchanged1M(b *testing.B) {
	ctx := context.Background()
	h := syncedHarness(b)
	c0 := h.st.counts()
	b.ReportAllocs()
	for b.Loop() {
		rep, err := h.eng.SyncFeed(ctx, "synthetic")
		if err != nil || !rep.NotModified {
			b.Fatalf("sync: %+v %v", rep, err)
		}
	}
	c1 := h.st.counts()
	b.ReportMetric(float64(c1.applied-c0.applied)/float64(b.N), "listing-writes/op")
	b.ReportMetric(float64(c1.listingsReads-c0.listingsReads)/float64(b.N), "rebuilds/op")
}

// BenchmarkSyncSameEntries1M re-syncs a 1M-address file whose body changed
// but whose entries did not (a new comment header): it is fetched, parsed
// and diffed against the store's listings, and writes no listing.
func BenchmarkSyncSameEntries1M(b *testing.B) {
	ctx := context.Background()
	h := syncedHarness(b)
	dir := filepath.Dir(h.feedPath)
	c0 := h.st.counts()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		writeSynthetic(b, dir, benchEntries, fmt.Sprint("v", i+1))
		b.StartTimer()
		rep, err := h.eng.SyncFeed(ctx, "synthetic")
		if err != nil || rep.NotModified || rep.Added+rep.Removed != 0 {
			b.Fatalf("sync: %+v %v", rep, err)
		}
	}
	c1 := h.st.counts()
	b.ReportMetric(float64(c1.applied-c0.applied)/float64(b.N), "listing-writes/op")
}

// BenchmarkRebuild1M reads 1M listings from SQLite, builds the index and
// swaps it in.
func BenchmarkRebuild1M(b *testing.B) {
	ctx := context.Background()
	h := syncedHarness(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := h.eng.Rebuild(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

type syncedBench struct {
	*harness
	feedPath string
}

func syncedHarness(b *testing.B) syncedBench {
	b.Helper()
	dir := b.TempDir()
	path := writeSynthetic(b, dir, benchEntries, "v1")
	h := newHarness(b, harnessOptions{maxBytes: 1 << 30})
	h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("synthetic", path)})
	if rep, err := h.eng.SyncFeed(context.Background(), "synthetic"); err != nil || rep.Added != benchEntries {
		b.Fatalf("first sync: %+v %v", rep, err)
	}
	return syncedBench{harness: h, feedPath: path}
}
