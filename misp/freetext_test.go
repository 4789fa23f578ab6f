package misp

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/rampart-ip/rampart/internal/shared"
)

func prefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestParseFreetext(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      []string
		others    []Indicator
		malformed int
		lines     int
	}{
		{
			name: "plain addresses become host prefixes, sorted with IPv4 first",
			in:   "2001:db8::1\n198.51.100.7\n192.0.2.1\n",
			want: []string{"192.0.2.1/32", "198.51.100.7/32", "2001:db8::1/128"}, lines: 3,
		},
		{
			name: "ranges are masked",
			in:   "10.0.0.5/8\n2001:db8::1/32\n192.0.2.0/24\n",
			want: []string{"10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"}, lines: 3,
		},
		{
			name: "duplicates are listed once",
			in:   "192.0.2.1\n192.0.2.1\n192.0.2.1/32\n",
			want: []string{"192.0.2.1/32"}, lines: 3,
		},
		{
			name: "comment lines and inline comments are ignored",
			in: "# header with http://203.0.113.9/x and 203.0.113.10\n" +
				"   # indented comment 203.0.113.11\n" +
				"192.0.2.1 # scanner seen from 203.0.113.12\n" +
				"192.0.2.2#no space 203.0.113.13\n" +
				"192.0.2.3 ; SBL12345\n",
			want: []string{"192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32"}, lines: 3,
		},
		{
			name: "IPsum's address and count columns yield the address",
			in:   "# IP\tnumber of (black)lists\n77.90.185.20\t10\n2.57.122.53\t9\n",
			want: []string{"2.57.122.53/32", "77.90.185.20/32"}, lines: 2,
		},
		{
			name: "ip:port, [ipv6]:port and ip|port forms give the address",
			in:   "192.0.2.1:8080\n[2001:db8::2]:443\n198.51.100.1|80\n2001:db8::3|22\n",
			want: []string{"192.0.2.1/32", "198.51.100.1/32", "2001:db8::2/128", "2001:db8::3/128"}, lines: 4,
		},
		{
			name: "domain|ip gives the address",
			in:   "example.com|192.0.2.9\n",
			want: []string{"192.0.2.9/32"}, lines: 1,
		},
		{
			name: "several tokens per line are all typed, as in MISP",
			in:   `"192.0.2.1","192.0.2.2";(192.0.2.3) <192.0.2.4>`,
			want: []string{"192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32", "192.0.2.4/32"}, lines: 1,
		},
		{
			name: "defanged addresses are refanged",
			in:   "192.0.2[.]1\n198.51.100(dot)2\n203.0.113[DOT]3\n",
			want: []string{"192.0.2.1/32", "198.51.100.2/32", "203.0.113.3/32"}, lines: 3,
		},
		{
			name: "IPv4-mapped IPv6 addresses and ranges become IPv4",
			in:   "::ffff:192.0.2.1\n::ffff:198.51.100.0/120\n",
			want: []string{"192.0.2.1/32", "198.51.100.0/24"}, lines: 2,
		},
		{
			name:      "invalid addresses, too-short ranges and zones are malformed",
			in:        "192.0.2.256\n0.0.0.0/0\n224.0.0.0/3\n::/0\n2000::/3\n192.0.2.1/33\n01.2.3.4\nfe80::1%eth0\n192.0.2.1:99999\n192.0.2.9\n",
			want:      []string{"192.0.2.9/32"},
			malformed: 9, lines: 10,
		},
		{
			name: "the shortest allowed ranges are kept",
			in:   "0.0.0.0/8\n2001::/16\n",
			want: []string{"0.0.0.0/8", "2001::/16"}, lines: 2,
		},
		{
			name: "the unspecified address is dropped without counting as malformed",
			in:   "0.0.0.0 ads.example.com\n::\n",
			want: []string{}, lines: 2,
			others: []Indicator{{"hostname", "ads.example.com"}},
		},
		{
			name: "numbers, times, versions and prose are not counted as malformed",
			in:   "10\n12:30:45\n1.2.3\nhello world\n00:11:22:33:44:55\n",
			want: []string{}, lines: 5,
		},
		{
			name: "other indicator types go to others, never to prefixes",
			in: "Example.COM\nwww.example.org\nhttp://198.51.100.1/gate.php\nhxxps://evil.example/x\n" +
				"d41d8cd98f00b204e9800998ecf8427e\nDA39A3EE5E6B4B0D3255BFEF95601890AFD80709\n" +
				"abuse@example.net\nCVE-2024-3094\n198.51.100.2/admin/login\ninvoice.exe\n",
			want: []string{}, lines: 10,
			others: []Indicator{
				{"domain", "example.com"}, {"hostname", "www.example.org"},
				{"url", "http://198.51.100.1/gate.php"}, {"url", "https://evil.example/x"},
				{"md5", "d41d8cd98f00b204e9800998ecf8427e"}, {"sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
				{"email-src", "abuse@example.net"}, {"vulnerability", "CVE-2024-3094"},
				{"url", "198.51.100.2/admin/login"},
			},
		},
		{
			name: "CRLF line ends, a byte order mark and a missing final newline are handled",
			in:   "\xef\xbb\xbf192.0.2.1\r\n192.0.2.2\r\n192.0.2.3",
			want: []string{"192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32"}, lines: 3,
		},
		{
			name: "an empty input gives an empty result",
			in:   "",
			want: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseFreetext(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if want := prefixes(t, tt.want...); !slices.Equal(r.Prefixes, want) {
				t.Errorf("prefixes = %v, want %v", r.Prefixes, want)
			}
			if tt.others != nil && !slices.Equal(r.Others, tt.others) {
				t.Errorf("others = %v, want %v", r.Others, tt.others)
			}
			if r.Malformed != tt.malformed {
				t.Errorf("malformed = %d, want %d", r.Malformed, tt.malformed)
			}
			if r.Lines != tt.lines {
				t.Errorf("lines = %d, want %d", r.Lines, tt.lines)
			}
		})
	}
}

func TestParseFreetextSkipsOverlongLines(t *testing.T) {
	in := "192.0.2.1\n" + strings.Repeat("9", MaxLineBytes*2) + "\n192.0.2.2\n" + strings.Repeat("x", MaxLineBytes+5)
	r, err := ParseFreetext(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := prefixes(t, "192.0.2.1/32", "192.0.2.2/32"); !slices.Equal(r.Prefixes, want) {
		t.Errorf("prefixes = %v, want %v", r.Prefixes, want)
	}
	if r.Malformed != 2 {
		t.Errorf("malformed = %d, want 2", r.Malformed)
	}
}

func TestParseFreetextCapsOthers(t *testing.T) {
	var b bytes.Buffer
	for i := range MaxOthers + 10 {
		fmt.Fprintf(&b, "host%d.example.com\n", i)
	}
	b.WriteString("192.0.2.1\n")
	r, err := ParseFreetext(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Others) != MaxOthers || r.OthersDropped != 10 {
		t.Errorf("others = %d, dropped %d; want %d, 10", len(r.Others), r.OthersDropped, MaxOthers)
	}
	if len(r.Prefixes) != 1 {
		t.Errorf("prefixes = %v", r.Prefixes)
	}
}

func TestParseFreetextReturnsNoResultOnReadError(t *testing.T) {
	boom := errors.New("connection reset")
	r, err := ParseFreetext(iotest.TimeoutReader(iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || r != nil {
		t.Fatalf("got %v, %v; want nil and %v", r, err, boom)
	}
}

// The real samples have one entry a line: every data line must give one
// prefix, except those the bounds reject.
func TestParseFreetextOnRealLists(t *testing.T) {
	tests := []struct {
		name      string
		path      []string
		malformed int
	}{
		{"FireHOL level 1 keeps all but the 224.0.0.0/3 bogon", []string{"feeds", "firehol", "firehol_level1.netset"}, 1},
		{"FireHOL blocklist_de lists single addresses", []string{"feeds", "firehol", "blocklist_de.ipset"}, 0},
		{"IPsum with counts gives every address", []string{"feeds", "ipsum", "ipsum.txt"}, 0},
		{"IPsum level 3 gives every address", []string{"feeds", "ipsum", "levels", "3.txt"}, 0},
		{"Emerging Threats compromised IPs give every address", []string{"feeds", "raw", "et_compromised-ips.txt"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := os.ReadFile(shared.Data(t, tt.path...))
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for line := range strings.Lines(string(data)) {
				if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
					want++
				}
			}
			want -= tt.malformed
			r, err := ParseFreetext(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Prefixes) != want || r.Malformed != tt.malformed {
				t.Errorf("prefixes = %d, malformed = %d; want %d, %d", len(r.Prefixes), r.Malformed, want, tt.malformed)
			}
			if len(r.Others) != 0 {
				t.Errorf("others = %v, want none from an address list", r.Others[:min(3, len(r.Others))])
			}
		})
	}
}

// genFreetext writes n distinct addresses, one a line, mostly IPv4 with a
// few ranges and IPv6 addresses, as large real lists look.
func genFreetext(n int) []byte {
	var b bytes.Buffer
	b.WriteString("# generated list\n")
	for i := range n {
		switch {
		case i%50 == 0:
			fmt.Fprintf(&b, "2001:db8:%x::%x\n", i>>16, i&0xffff)
		case i%20 == 0:
			fmt.Fprintf(&b, "%d.%d.%d.0/24\n", 11+(i>>16)%200, (i>>8)&0xff, i&0xff)
		default:
			fmt.Fprintf(&b, "%d.%d.%d.%d\t%d\n", 11+(i>>24)%200, (i>>16)&0xff, (i>>8)&0xff, i&0xff, i%10)
		}
	}
	return b.Bytes()
}

func BenchmarkParseFreetext1M(b *testing.B) {
	data := genFreetext(1_000_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := ParseFreetext(bytes.NewReader(data))
		if err != nil || len(r.Prefixes) < 900_000 {
			b.Fatalf("%v, %d prefixes", err, len(r.Prefixes))
		}
	}
}
