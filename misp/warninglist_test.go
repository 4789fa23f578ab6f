package misp

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rampart-ip/rampart/internal/shared"
)

const (
	listPublicDNS4 = "List of known IPv4 public DNS resolvers"
	listRFC1918    = "List of RFC 1918 CIDR blocks"
	listRFC5735    = "List of RFC 5735 CIDR blocks"
	listPublicDNS6 = "List of known IPv6 public DNS resolvers"
	listLinkLocal6 = "List of IPv6 link local blocks"
)

// realLists loads every shared warninglist once per test binary.
var realLists = sync.OnceValues(func() (*Warninglists, error) {
	return LoadWarninglists(filepath.Join("..", "..", "shared", "data", "misp", "warninglists"))
})

func loadReal(t testing.TB) *Warninglists {
	t.Helper()
	shared.Data(t, "misp", "warninglists")
	w, err := realLists()
	if err != nil {
		t.Fatalf("LoadWarninglists: %v", err)
	}
	return w
}

func hit(ws []Warning, list string) (string, bool) {
	for _, w := range ws {
		if w.List == list {
			return w.Match, true
		}
	}
	return "", false
}

func TestWarningsOnTheRealLists(t *testing.T) {
	w := loadReal(t)
	tests := []struct {
		name   string
		prefix string
		list   string // "" means: no list at all
		match  string
	}{
		{"Google's resolver is a public DNS resolver", "8.8.8.8/32", listPublicDNS4, "8.8.8.8"},
		{"Cloudflare's resolver is a public DNS resolver", "1.1.1.1/32", listPublicDNS4, "1.1.1.1"},
		{"an RFC 1918 address is in the RFC 1918 list with its /8", "10.1.2.3/32", listRFC1918, "10.0.0.0/8"},
		{"a range inside 192.168.0.0/16 matches RFC 1918", "192.168.10.0/24", listRFC1918, "192.168.0.0/16"},
		{"a range wider than every RFC 1918 block does not match it", "10.0.0.0/7", "", ""},
		{"loopback is special use per RFC 5735", "127.0.0.1/32", listRFC5735, "127.0.0.0/8"},
		{"an IPv6 public resolver matches the IPv6 list", "2001:4860:4860::8888/128", listPublicDNS6, "2001:4860:4860::8888"},
		{"an IPv6 link-local address matches the link-local list", "fe80::1/128", listLinkLocal6, "fe80::/10"},
		{"an IPv4-mapped address matches like its IPv4 form", "::ffff:10.1.2.3/128", listRFC1918, "10.0.0.0/8"},
		{"an ordinary residential address is in no list", "93.184.216.34/32", "", ""},
		{"a documentation IPv6 address outside every list matches nothing", "2a00:1450:4001:800::1/128", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := w.Warnings(netip.MustParsePrefix(tt.prefix))
			if tt.list == "" {
				if len(ws) != 0 {
					t.Fatalf("Warnings(%s) = %v, want none", tt.prefix, ws)
				}
				return
			}
			got, ok := hit(ws, tt.list)
			if !ok {
				t.Fatalf("Warnings(%s) = %v, want a hit on %q", tt.prefix, ws, tt.list)
			}
			if got != tt.match {
				t.Errorf("Warnings(%s) on %q matched %q, want %q", tt.prefix, tt.list, got, tt.match)
			}
		})
	}
}

func TestLoadWarninglistsReportsTheRealLists(t *testing.T) {
	w := loadReal(t)
	lists := w.Lists()
	if len(lists) < 50 {
		t.Fatalf("loaded %d lists, want the ~80 shared ones", len(lists))
	}
	total := 0
	for _, l := range lists {
		if l.Skipped {
			t.Errorf("list %q (%s) skipped, but every shared list is cidr", l.Name, l.Path)
		}
		total += l.Entries
	}
	if w.Len() == 0 || w.Len() > total {
		t.Errorf("Len() = %d, want between 1 and the %d entries", w.Len(), total)
	}
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWarningsMatchLikeMISP(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.json", `{"name": "A", "version": 3, "type": "cidr", "list": [
		"198.51.100.0/24", "198.51.100.0/25", "203.0.113.7", "2001:db8::/32", "192.0.2.5/24",
		"not an address", "300.1.1.1", "fe80::1%eth0"]}`)
	writeFile(t, dir, "sub/b.json", `{"name": "B", "version": "x", "type": "cidr", "list": ["198.51.100.0/26"]}`)
	writeFile(t, dir, "c.json", `{"name": "C", "type": "string", "list": ["example.com"]}`)
	w, err := LoadWarninglists(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		prefix string
		want   []Warning
	}{
		{"an address in nested ranges of two lists gets the broadest range of each", "198.51.100.1/32",
			[]Warning{{List: "A", Match: "198.51.100.0/24"}, {List: "B", Match: "198.51.100.0/26"}}},
		{"an address outside the inner list gets only the outer one", "198.51.100.200/32",
			[]Warning{{List: "A", Match: "198.51.100.0/24"}}},
		{"a range wholly inside a listed range matches", "198.51.100.64/26",
			[]Warning{{List: "A", Match: "198.51.100.0/24"}}},
		{"a range equal to a listed range matches", "198.51.100.0/24",
			[]Warning{{List: "A", Match: "198.51.100.0/24"}}},
		{"a range wider than every listed range does not match", "198.51.100.0/23", nil},
		{"a range overlapping only a smaller listed range does not match", "203.0.113.0/24", nil},
		{"a listed single address matches as itself", "203.0.113.7/32",
			[]Warning{{List: "A", Match: "203.0.113.7"}}},
		{"a neighbour of a listed address does not match", "203.0.113.8/32", nil},
		{"a listed range with host bits set is masked", "192.0.2.200/32",
			[]Warning{{List: "A", Match: "192.0.2.0/24"}}},
		{"an IPv6 range inside a listed IPv6 range matches", "2001:db8:1::/48",
			[]Warning{{List: "A", Match: "2001:db8::/32"}}},
		{"a prefix given unmasked is masked before matching", "198.51.100.77/25",
			[]Warning{{List: "A", Match: "198.51.100.0/24"}}},
		{"the zero prefix matches nothing", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p netip.Prefix
			if tt.prefix != "" {
				p = netip.MustParsePrefix(tt.prefix)
			}
			if got := w.Warnings(p); !slices.Equal(got, tt.want) {
				t.Errorf("Warnings(%s) = %v, want %v", tt.prefix, got, tt.want)
			}
		})
	}

	t.Run("malformed entries are counted and a non-cidr list is reported as skipped", func(t *testing.T) {
		byName := map[string]ListInfo{}
		for _, l := range w.Lists() {
			byName[l.Name] = l
		}
		if a := byName["A"]; a.Entries != 5 || a.Malformed != 3 || a.Version != "3" || a.Skipped {
			t.Errorf("list A = %+v, want 5 entries, 3 malformed, version 3, used", a)
		}
		if c := byName["C"]; !c.Skipped || c.Type != "string" {
			t.Errorf("list C = %+v, want skipped string list", c)
		}
		if w.Len() != 6 {
			t.Errorf("Len() = %d, want 6 distinct ranges", w.Len())
		}
	})
}

func TestLoadWarninglistsRejectsMalformedFiles(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"a file that is not JSON", `name: A`, "invalid character"},
		{"a list without a name", `{"type": "cidr", "list": []}`, "no name"},
		{"a list without a type", `{"name": "A", "list": []}`, "no type"},
		{"a list without entries", `{"name": "A", "type": "cidr"}`, "no list"},
		{"a list whose entries are not strings", `{"name": "A", "type": "cidr", "list": [1, 2]}`, "cannot unmarshal"},
		{"a truncated file", `{"name": "A", "type": "cidr", "list": ["10.0.0.0/8"`, "unexpected end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "good.json", `{"name": "G", "type": "cidr", "list": ["10.0.0.0/8"]}`)
			bad := writeFile(t, dir, "bad.json", tt.body)
			_, err := LoadWarninglists(dir)
			if err == nil {
				t.Fatal("LoadWarninglists succeeded, want an error")
			}
			if !errors.Is(err, ErrWarninglist) {
				t.Errorf("error %v does not wrap ErrWarninglist", err)
			}
			if !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q should name %s and say %q", err, bad, tt.want)
			}
		})
	}

	t.Run("a missing path is an error naming it", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nope.json")
		_, err := LoadWarninglists(missing)
		if err == nil || !strings.Contains(err.Error(), missing) {
			t.Fatalf("LoadWarninglists(%s) error = %v, want one naming the path", missing, err)
		}
	})

	t.Run("no paths give an empty set that matches nothing", func(t *testing.T) {
		w, err := LoadWarninglists()
		if err != nil {
			t.Fatal(err)
		}
		if ws := w.Warnings(netip.MustParsePrefix("10.0.0.1/32")); ws != nil {
			t.Errorf("Warnings = %v, want nil", ws)
		}
	})
}

func TestWarningsDoesNotAllocateWithoutAHit(t *testing.T) {
	w := loadReal(t)
	p := netip.MustParsePrefix("93.184.216.34/32")
	if n := testing.AllocsPerRun(100, func() { _ = w.Warnings(p) }); n != 0 {
		t.Errorf("Warnings allocates %v times per miss, want 0", n)
	}
	hitP := netip.MustParsePrefix("8.8.8.8/32")
	if n := testing.AllocsPerRun(100, func() { _ = w.Warnings(hitP) }); n != 0 {
		t.Errorf("Warnings allocates %v times per hit, want 0", n)
	}
}

func BenchmarkLoadWarninglists(b *testing.B) {
	dir := shared.Data(b, "misp", "warninglists")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadWarninglists(dir); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWarnings(b *testing.B) {
	w := loadReal(b)
	cases := []struct {
		name   string
		prefix string
	}{
		{"miss IPv4", "93.184.216.34/32"},
		{"hit IPv4 resolver", "8.8.8.8/32"},
		{"hit IPv4 cloud range", "52.95.245.1/32"},
		{"miss IPv6", "2a00:1450:4001:800::1/128"},
	}
	for _, c := range cases {
		p := netip.MustParsePrefix(c.prefix)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = w.Warnings(p)
			}
		})
	}
}

func FuzzParseListEntry(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "8.8.8.8", "2001:db8::/32", "::ffff:10.0.0.1", "::ffff:0:0/96",
		"10.0.0.5/8", "fe80::1%eth0", "1.2.3.4/33", " 192.0.2.1 ", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := parseListEntry(s)
		if !ok {
			return
		}
		if !p.IsValid() || p != p.Masked() {
			t.Fatalf("parseListEntry(%q) = %v, not a valid masked prefix", s, p)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			t.Fatalf("parseListEntry(%q) = %v, an IPv4-mapped range left as IPv6", s, p)
		}
		if p.Addr().Zone() != "" {
			t.Fatalf("parseListEntry(%q) = %v, with a zone", s, p)
		}
	})
}
