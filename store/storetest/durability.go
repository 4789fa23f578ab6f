package storetest

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/rampart-ip/rampart/store"
)

func testCancelled(t *testing.T, open Opener) {
	s := openStore(t, open)
	apply(t, s, "src", store.Change{Added: pfxs(t, "192.0.2.1/32", "192.0.2.2/32")}, at(0))
	apply(t, s, "src", store.Change{Removed: pfxs(t, "192.0.2.2/32")}, at(1))
	if err := s.PutSource(t.Context(), fullSource()); err != nil {
		t.Fatalf("put source: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"sources", func() error { _, err := s.Sources(ctx); return err }},
		{"source", func() error { _, err := s.Source(ctx, "blocklist_de"); return err }},
		{"put source", func() error { return s.PutSource(ctx, store.Source{Name: "late"}) }},
		{"apply", func() error {
			return s.Apply(ctx, "src", store.Change{Added: pfxs(t, "192.0.2.3/32"), Removed: pfxs(t, "192.0.2.1/32")}, at(2))
		}},
		{"source listings", func() error { _, err := s.SourceListings(ctx, "src"); return err }},
		{"listings", func() error { return s.Listings(ctx, func(store.Listing) error { return nil }) }},
		{"episodes", func() error { return s.Episodes(ctx, at(-1), func(store.Episode) error { return nil }) }},
		{"purge episodes", func() error { _, err := s.PurgeEpisodes(ctx, at(100)); return err }},
		{"get", func() error { _, err := s.Get(ctx, "k"); return err }},
		{"put", func() error { return s.Put(ctx, "k", "v") }},
	}
	for _, c := range calls {
		t.Run(c.name+" fails", func(t *testing.T) {
			if err := c.call(); !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want context.Canceled", err)
			}
		})
	}
	t.Run("nothing was written", func(t *testing.T) {
		wantListings(t, s, []store.Listing{listing("src", pfx(t, "192.0.2.1/32"), at(0))})
		wantEpisodes(t, s, at(-1), []store.Episode{episode("src", pfx(t, "192.0.2.2/32"), at(0), at(1))})
		if _, err := s.Source(t.Context(), "late"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("source written under a cancelled context: %v", err)
		}
		if _, err := s.Get(t.Context(), "k"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("key written under a cancelled context: %v", err)
		}
	})
}

func testReopen(t *testing.T, open Opener) {
	first, err := open(t.Context())
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	src := fullSource()
	if err := first.PutSource(t.Context(), src); err != nil {
		t.Fatalf("put source: %v", err)
	}
	apply(t, first, src.Name, store.Change{Added: pfxs(t, "192.0.2.1/32", "2001:db8::/32", "198.51.100.0/24")}, at(0))
	apply(t, first, src.Name, store.Change{Removed: pfxs(t, "198.51.100.0/24")}, at(1))
	if err := first.Put(t.Context(), "misp.cursor", "1732096800"); err != nil {
		t.Fatalf("put: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	s := openStore(t, open)
	got, err := s.Source(t.Context(), src.Name)
	if err != nil {
		t.Fatalf("source after reopen: %v", err)
	}
	if err := sameSource(got, src); err != nil {
		t.Fatal(err)
	}
	wantListings(t, s, []store.Listing{
		listing(src.Name, pfx(t, "192.0.2.1/32"), at(0)),
		listing(src.Name, pfx(t, "2001:db8::/32"), at(0)),
	})
	wantEpisodes(t, s, at(0), []store.Episode{episode(src.Name, pfx(t, "198.51.100.0/24"), at(0), at(1))})
	if v, err := s.Get(t.Context(), "misp.cursor"); err != nil || v != "1732096800" {
		t.Fatalf("get after reopen: got %q, %v", v, err)
	}
	// The reopened store keeps working on the same data.
	apply(t, s, src.Name, store.Change{Removed: pfxs(t, "192.0.2.1/32")}, at(2))
	wantSourceListings(t, s, src.Name, pfxs(t, "2001:db8::/32"))
}

// manyPrefixes returns n distinct prefixes: IPv4 and IPv6 hosts and ranges.
func manyPrefixes(n int) []netip.Prefix {
	out := make([]netip.Prefix, 0, n)
	for i := range n {
		var p netip.Prefix
		switch i % 4 {
		case 0:
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		case 1:
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i >> 8), byte(i), 0}), 24)
		case 2:
			p = netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i), 14: byte(i >> 8)}), 128)
		default:
			p = netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 6: byte(i >> 8), 7: byte(i)}), 64)
		}
		out = append(out, p)
	}
	return out
}

func testThousands(t *testing.T, open Opener) {
	s := openStore(t, open)
	const src = "big"
	all := manyPrefixes(3000)
	var even, odd []netip.Prefix
	for i, p := range all {
		if i%2 == 0 {
			even = append(even, p)
		} else {
			odd = append(odd, p)
		}
	}
	apply(t, s, src, store.Change{Added: all}, at(0))
	wantSourceListings(t, s, src, all)

	apply(t, s, src, store.Change{Removed: odd}, at(1))
	wantSourceListings(t, s, src, even)
	if got := len(episodes(t, s, at(1))); got != len(odd) {
		t.Fatalf("episodes after removing %d: got %d", len(odd), got)
	}

	apply(t, s, src, store.Change{Added: all}, at(2))
	var want []store.Listing
	for i, p := range all {
		since := at(0)
		if i%2 == 1 {
			since = at(2)
		}
		want = append(want, store.Listing{Source: src, Prefix: p, Since: since})
	}
	wantListings(t, s, want)

	n, err := s.PurgeEpisodes(t.Context(), at(2))
	if err != nil || n != int64(len(odd)) {
		t.Fatalf("purge: got %d, %v; want %d", n, err, len(odd))
	}
	if got := episodes(t, s, at(-1)); len(got) != 0 {
		t.Fatalf("episodes after purge: got %d, want none", len(got))
	}
}
