package api

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseAddr(t *testing.T) {
	good := []struct {
		name, in, want string
	}{
		{"an IPv4 address parses", "203.0.113.7", "203.0.113.7"},
		{"an IPv6 address parses", "2001:db8::1", "2001:db8::1"},
		{"an uncompressed IPv6 address is normalised", "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},
		{"an IPv4-mapped IPv6 address is unmapped", "::ffff:192.0.2.1", "192.0.2.1"},
		{"the longest IPv6 form parses", "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseAddr(tc.in)
			if err != nil {
				t.Fatalf("ParseAddr(%q): %v", tc.in, err)
			}
			if a.String() != tc.want {
				t.Errorf("ParseAddr(%q) = %s, want %s", tc.in, a, tc.want)
			}
		})
	}
	bad := []struct {
		name, in, want string
	}{
		{"an empty address is refused", "", "empty"},
		{"garbage is refused", "not-an-ip", "not-an-ip"},
		{"an octet over 255 is refused", "1.2.3.256", ">255"},
		{"a trailing newline is refused", "1.2.3.4\n", "whitespace"},
		{"a leading space is refused", " 1.2.3.4", "whitespace"},
		{"an overlong string is refused", strings.Repeat("1", 300), "too long"},
		{"an SQL injection is refused", "1.2.3.4' OR '1'='1", "1.2.3.4"},
		{"a script tag is refused", "<script>alert(1)</script>", "<script>"},
		{"an IPv6 zone is refused", "fe80::1%eth0", "zone"},
		{"a CIDR range is refused", "203.0.113.0/24", "range"},
		{"a port is refused", "203.0.113.7:80", "port"},
		{"a bracketed IPv6 address is refused", "[2001:db8::1]", "[2001:db8::1]"},
		{"an octet with a leading zero is refused", "01.2.3.4", "leading zero"},
		{"three octets are refused", "1.2.3", "1.2.3"},
		{"a hostname is refused", "localhost", "localhost"},
		{"a NUL byte is refused", "1.2.3.4\x00", "1.2.3.4"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseAddr(tc.in)
			if err == nil {
				t.Fatalf("ParseAddr(%q) = %s, want an error", tc.in, a)
			}
			if !errors.Is(err, ErrInvalidAddr) {
				t.Errorf("error %v does not wrap ErrInvalidAddr", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if len(err.Error()) > 200 {
				t.Errorf("error is %d bytes long; hostile input must not be echoed at length", len(err.Error()))
			}
		})
	}
}

func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "::1", "::ffff:1.2.3.4", "fe80::1%eth0", "1.2.3.256", " 1.2.3.4", "2001:db8::/32", "[::1]:80", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddr(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidAddr) {
				t.Fatalf("error %v does not wrap ErrInvalidAddr", err)
			}
			return
		}
		if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
			t.Fatalf("ParseAddr(%q) = %v: invalid, zoned or mapped", s, a)
		}
		if len(s) > maxAddrLen || strings.TrimSpace(s) != s {
			t.Fatalf("ParseAddr(%q) accepted overlong or padded input", s)
		}
		b, err := netip.ParseAddr(a.String())
		if err != nil || b != a {
			t.Fatalf("ParseAddr(%q) = %v does not round-trip", s, a)
		}
	})
}
