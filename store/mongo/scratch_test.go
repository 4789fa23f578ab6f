package mongo

import (
	"net/netip"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/store"
)

func TestScratch(t *testing.T) {
	f := startFerret(t)
	s := f.open(t, f.database())
	var all []netip.Prefix
	for i := range 3000 {
		all = append(all, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 32))
	}
	now := time.Now()
	step := func(name string, fn func() error) {
		start := time.Now()
		if err := fn(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %v", name, time.Since(start))
	}
	step("add 3000", func() error { return s.Apply(t.Context(), "x", store.Change{Added: all}, now) })
	step("remove 1500", func() error { return s.Apply(t.Context(), "x", store.Change{Removed: all[:1500]}, now) })
	step("re-add 3000", func() error { return s.Apply(t.Context(), "x", store.Change{Added: all}, now) })
	step("source listings", func() error { _, err := s.SourceListings(t.Context(), "x"); return err })
	step("listings", func() error { return s.Listings(t.Context(), func(store.Listing) error { return nil }) })
	step("purge", func() error { _, err := s.PurgeEpisodes(t.Context(), now.Add(time.Hour)); return err })
}
