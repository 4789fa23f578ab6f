package reputation

import (
	"net/netip"
	"testing"
)

func TestAnswerCacheBounds(t *testing.T) {
	body := make([]byte, 1000)
	entry := func() *cached { return &cached{gen: 1, expires: 1 << 62, body: body} }
	tests := []struct {
		name        string
		size        int
		bytes       int64
		adds        int
		wantAtMostN int
	}{
		{"the byte bound evicts before the entry bound", 1 << 16, cacheShards * 10 * (1000 + cachedOverhead), 5000, cacheShards * 10},
		{"the entry bound holds without a byte bound", cacheShards * 8, -1, 5000, cacheShards * 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newAnswerCache(tt.size, tt.bytes)
			for i := range tt.adds {
				c.add(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), entry())
			}
			if n := c.len(); n > tt.wantAtMostN || n == 0 {
				t.Fatalf("%d entries, want 1..%d", n, tt.wantAtMostN)
			}
			if got, want := c.size(), int64(c.len())*(1000+cachedOverhead); got != want {
				t.Fatalf("counted %d bytes for %d entries, want %d", got, c.len(), want)
			}
			_, _, ev := c.counts()
			if ev == 0 {
				t.Fatal("no eviction counted")
			}
		})
	}
	t.Run("a stale entry is replaced by the fresh one", func(t *testing.T) {
		c := newAnswerCache(1024, 0)
		a := netip.MustParseAddr("192.0.2.1")
		c.add(a, &cached{gen: 1, expires: 1 << 62, body: body})
		if _, ok := c.get(a, 2, 0); ok {
			t.Fatal("an entry of an older generation was served")
		}
		c.add(a, &cached{gen: 2, expires: 1 << 62, body: make([]byte, 10)})
		if e, ok := c.get(a, 2, 0); !ok || len(e.body) != 10 {
			t.Fatalf("fresh entry not served: %v", ok)
		}
		if got := c.size(); got != 10+cachedOverhead {
			t.Fatalf("counted %d bytes, want %d", got, 10+cachedOverhead)
		}
	})
}
