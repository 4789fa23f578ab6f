package misp

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// checkResult asserts the invariants every parse result keeps, whatever the
// input: prefixes masked, sorted, unique, within bounds, IPv4 never mapped
// into IPv6, and each one read back as itself.
func checkResult(t *testing.T, r *Result) {
	t.Helper()
	for i, p := range r.Prefixes {
		if !p.IsValid() || p != p.Masked() {
			t.Fatalf("prefix %v is not masked", p)
		}
		if p.Addr().Is4In6() || p.Addr().Zone() != "" {
			t.Fatalf("prefix %v is mapped or zoned", p)
		}
		if (p.Addr().Is4() && p.Bits() < MinBitsIPv4) || (p.Addr().Is6() && p.Bits() < MinBitsIPv6) {
			t.Fatalf("prefix %v is shorter than allowed", p)
		}
		if i > 0 && comparePrefix(r.Prefixes[i-1], p) >= 0 {
			t.Fatalf("prefixes %v, %v out of order or duplicated", r.Prefixes[i-1], p)
		}
		if back, ok := ParsePrefix("ip-dst", p.String()); !ok || back != p {
			t.Fatalf("prefix %v reads back as %v, %v", p, back, ok)
		}
	}
	if len(r.Others) > MaxOthers {
		t.Fatalf("%d others", len(r.Others))
	}
	for _, o := range r.Others {
		if o.Type == "" || o.Value == "" {
			t.Fatalf("empty indicator %+v", o)
		}
		if isAddressType(o.Type) {
			t.Fatalf("address indicator %+v in others", o)
		}
	}
	if r.Lines < 0 || r.Malformed < 0 {
		t.Fatalf("counts %d, %d", r.Lines, r.Malformed)
	}
}

func addSeedFiles(f *testing.F, paths ...string) {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) > 4096 {
			b = b[:4096]
		}
		f.Add(b)
	}
}

func FuzzParseFreetext(f *testing.F) {
	for _, s := range []string{
		"192.0.2.1\n", "# c\n10.0.0.5/8 ; x\n", "[2001:db8::1]:80|x", "::ffff:1.2.3.4/120", "a.example|192.0.2.1",
		"hxxp://1.2.3[.]4/x", "0.0.0.0/0\n::/0", "1.2.3.4:99999", "fe80::1%eth0", "\"1.1.1.1\",'2.2.2.2'",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseFreetext(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err) // a bytes.Reader never fails
		}
		checkResult(t, r)
	})
}

func FuzzParseCSV(f *testing.F) {
	f.Add([]byte("\"a\",\"192.0.2.1\"\n# x\nb,198.51.100.0/24\n"), "2", ",")
	f.Add([]byte("x|y|192.0.2.5|z\n"), "3", "|")
	f.Add([]byte("1.2.3.4\t5\n"), "", `\t`)
	f.Add([]byte("\"unterminated,1.2.3.4\n"), "1,2", "")
	f.Fuzz(func(t *testing.T, data []byte, value, delim string) {
		r, err := ParseCSV(bytes.NewReader(data), CSVSettings{Value: value, Delimiter: delim})
		if err != nil {
			if r != nil {
				t.Fatal("a result with an error")
			}
			return
		}
		checkResult(t, r)
	})
}

func FuzzParseEvent(f *testing.F) {
	addSeedFiles(f, filepath.Join("testdata", "event-objects.json"))
	f.Add([]byte(`{"Event":{"Attribute":[{"type":"ip-dst","value":"192.0.2.1","to_ids":"1","timestamp":"5"}]}}`))
	f.Add([]byte(`{"uuid":"x","Object":[{"deleted":1,"Attribute":[{"type":"domain|ip","value":"a.b|1.2.3.4"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := ParseEvent(bytes.NewReader(data))
		if err != nil {
			return
		}
		checkResult(t, eventsResult([]*Event{ev}))
	})
}

func FuzzParsePrefix(f *testing.F) {
	for _, s := range [][2]string{
		{"ip-dst", "192.0.2.1"}, {"ip-src", "2001:db8::/32"}, {"ip-dst|port", "192.0.2.1|80"},
		{"ip-src|port", "[2001:db8::1]|443"}, {"domain|ip", "example.com|::ffff:192.0.2.1"}, {"ip-dst", "0.0.0.0/0"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, typ, value string) {
		p, ok := ParsePrefix(typ, value)
		if !ok {
			return
		}
		if !isAddressType(typ) {
			t.Fatalf("type %q accepted", typ)
		}
		checkResult(t, &Result{Prefixes: []netip.Prefix{p}})
		// The prefix must match what the standard library reads from the
		// address part, masked.
		if std, err := netip.ParsePrefix(p.String()); err != nil || std != p {
			t.Fatalf("%v does not round-trip through netip: %v", p, err)
		}
	})
}
