package misp

import (
	"net/netip"
	"testing"
)

func TestParsePrefix(t *testing.T) {
	tests := []struct {
		name  string
		typ   string
		value string
		want  string // "" for not accepted
	}{
		{"an ip-dst address is a host prefix", "ip-dst", "192.0.2.1", "192.0.2.1/32"},
		{"an ip-src IPv6 address is a /128", "ip-src", "2001:db8::1", "2001:db8::1/128"},
		{"an ip-dst range is masked", "ip-dst", "198.51.100.77/24", "198.51.100.0/24"},
		{"surrounding spaces are ignored", "ip-dst", " 192.0.2.1 ", "192.0.2.1/32"},
		{"ip-dst|port gives the address", "ip-dst|port", "192.0.2.1|443", "192.0.2.1/32"},
		{"ip-src|port with IPv6 gives the address", "ip-src|port", "2001:db8::1|80", "2001:db8::1/128"},
		{"domain|ip gives the address", "domain|ip", "example.com|192.0.2.3", "192.0.2.3/32"},
		{"an IPv4-mapped address becomes IPv4", "ip-dst", "::ffff:192.0.2.4", "192.0.2.4/32"},
		{"a port without an address is refused", "ip-dst|port", "192.0.2.1", ""},
		{"a port out of range is refused", "ip-dst|port", "192.0.2.1|70000", ""},
		{"domain|ip without a domain is refused", "domain|ip", "|192.0.2.3", ""},
		{"a port on a plain ip-dst is refused", "ip-dst", "192.0.2.1:80", ""},
		{"a domain is not an address", "domain", "example.com", ""},
		{"an ip-dst holding a domain is refused", "ip-dst", "example.com", ""},
		{"an invalid address is refused", "ip-dst", "192.0.2.300", ""},
		{"the whole Internet is refused", "ip-dst", "0.0.0.0/0", ""},
		{"a /7 is refused", "ip-dst", "10.0.0.0/7", ""},
		{"a /8 is accepted", "ip-dst", "10.0.0.0/8", "10.0.0.0/8"},
		{"an IPv6 /15 is refused", "ip-dst", "2000::/15", ""},
		{"a zone is refused", "ip-src", "fe80::1%eth0", ""},
		{"the unspecified address is refused", "ip-dst", "0.0.0.0", ""},
		{"an empty value is refused", "ip-dst", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParsePrefix(tt.typ, tt.value)
			if tt.want == "" {
				if ok {
					t.Fatalf("ParsePrefix(%q, %q) = %v, want refused", tt.typ, tt.value, got)
				}
				return
			}
			if want := netip.MustParsePrefix(tt.want); !ok || got != want {
				t.Fatalf("ParsePrefix(%q, %q) = %v, %v; want %v", tt.typ, tt.value, got, ok, want)
			}
		})
	}
}

func TestParsePrefixDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := ParsePrefix("ip-dst", "198.51.100.7"); !ok {
			t.Fatal("refused")
		}
		if _, ok := ParsePrefix("ip-dst", "2001:db8::7/64"); !ok {
			t.Fatal("refused")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per call", allocs)
	}
}
