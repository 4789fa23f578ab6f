package enrich

import (
	"net/netip"
	"testing"

	"github.com/rampart-ip/rampart/internal/shared"
	"github.com/rampart-ip/rampart/misp"
	"github.com/rampart-ip/rampart/reputation"
)

func TestWarnerAgreesWithTheWarninglists(t *testing.T) {
	lists, err := misp.LoadWarninglists(shared.Data(t, "misp", "warninglists"))
	if err != nil {
		t.Fatal(err)
	}
	w := NewWarner(lists)
	tests := []struct {
		name   string
		prefix string
		hit    bool
	}{
		{"a public resolver has warnings", "8.8.8.8/32", true},
		{"a private range inside RFC 1918 has warnings", "10.20.0.0/16", true},
		{"an IPv4-mapped private address has warnings", "::ffff:10.1.2.3/128", true},
		{"an ordinary address has none", "93.184.216.34/32", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := netip.MustParsePrefix(tt.prefix)
			got := w.Warnings(p)
			want := lists.Warnings(p)
			if len(got) != len(want) || (len(got) > 0) != tt.hit {
				t.Fatalf("Warnings(%s) = %v, misp says %v, want hit %v", p, got, want, tt.hit)
			}
			for i := range got {
				if got[i] != (reputation.Warning{List: want[i].List, Match: want[i].Match}) {
					t.Errorf("Warnings(%s)[%d] = %v, misp says %v", p, i, got[i], want[i])
				}
			}
		})
	}
	t.Run("every listed range gets the same warnings as from misp", func(t *testing.T) {
		n := 0
		for p, want := range lists.All() {
			got := w.Warnings(p)
			if len(got) != len(want) {
				t.Fatalf("Warnings(%s) = %v, misp says %v", p, got, want)
			}
			for i := range got {
				if got[i].List != want[i].List || got[i].Match != want[i].Match {
					t.Fatalf("Warnings(%s) = %v, misp says %v", p, got, want)
				}
			}
			n++
		}
		if n != lists.Len() {
			t.Errorf("All yielded %d ranges, Len says %d", n, lists.Len())
		}
	})
	t.Run("a nil list set gives a warner that matches nothing", func(t *testing.T) {
		if ws := NewWarner(nil).Warnings(netip.MustParsePrefix("10.0.0.1/32")); ws != nil {
			t.Errorf("Warnings = %v, want nil", ws)
		}
	})
	t.Run("lookups do not allocate", func(t *testing.T) {
		for _, s := range []string{"8.8.8.8/32", "93.184.216.34/32"} {
			p := netip.MustParsePrefix(s)
			if n := testing.AllocsPerRun(100, func() { _ = w.Warnings(p) }); n != 0 {
				t.Errorf("Warnings(%s) allocates %v times", s, n)
			}
		}
	})
}

func BenchmarkWarner(b *testing.B) {
	lists, err := misp.LoadWarninglists(shared.Data(b, "misp", "warninglists"))
	if err != nil {
		b.Fatal(err)
	}
	w := NewWarner(lists)
	for _, s := range []string{"93.184.216.34/32", "8.8.8.8/32", "2a00:1450:4001:800::1/128"} {
		p := netip.MustParsePrefix(s)
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = w.Warnings(p)
			}
		})
	}
}
