package enrich

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/oschwald/geoip2-golang"

	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/internal/shared"
	"github.com/rampart-ip/rampart/reputation"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func testDB(t testing.TB, name string) string {
	t.Helper()
	return shared.Data(t, "feeds", "geoip", name+".mmdb")
}

// allTestDatabases configures every kind with MaxMind's test databases.
func allTestDatabases(t testing.TB) config.GeoIP {
	return config.GeoIP{
		City:        testDB(t, "GeoIP2-City-Test"),
		Country:     testDB(t, "GeoIP2-Country-Test"),
		ASN:         testDB(t, "GeoLite2-ASN-Test"),
		ISP:         testDB(t, "GeoIP2-ISP-Test"),
		AnonymousIP: testDB(t, "GeoIP2-Anonymous-IP-Test"),
	}
}

func open(t testing.TB, cfg config.GeoIP) *Enricher {
	t.Helper()
	e, err := Open(cfg, discard())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// The expected values below are taken from the source JSON of MaxMind's
// test databases (feeds/geoip/source-data).
func TestMetadataOnMaxMindTestDatabases(t *testing.T) {
	all := open(t, allTestDatabases(t))
	ispOnly := open(t, config.GeoIP{ISP: testDB(t, "GeoIP2-ISP-Test")})
	tests := []struct {
		name string
		e    *Enricher
		addr string
		want reputation.Metadata
	}{
		{"a London address gets its country, city, ISP and every anonymizer flag", all, "81.2.69.160",
			reputation.Metadata{Country: "GB", City: "London", Org: "Andrews & Arnold Ltd", Anonymous: true, VPN: true, Tor: true, Hosting: true, PublicProxy: true}},
		{"an IPv4-mapped form answers like the IPv4 address", all, "::ffff:81.2.69.160",
			reputation.Metadata{Country: "GB", City: "London", Org: "Andrews & Arnold Ltd", Anonymous: true, VPN: true, Tor: true, Hosting: true, PublicProxy: true}},
		{"a Linköping address gets its city name in English", all, "89.160.20.129",
			reputation.Metadata{ASN: "AS29518", Org: "Bredband2 AB", Country: "SE", City: "Linköping"}},
		{"a Telstra address gets its AS number and the ASN database's organisation", all, "1.128.0.1",
			reputation.Metadata{ASN: "AS1221", Org: "Telstra Pty Ltd"}},
		{"a Tor exit node is flagged", all, "1.124.213.1",
			reputation.Metadata{Anonymous: true, VPN: true, Tor: true}},
		{"an IPv6 public proxy is flagged", all, "2001:480:3a::1",
			reputation.Metadata{Anonymous: true, PublicProxy: true}},
		{"a hosting provider is flagged", all, "71.160.223.45",
			reputation.Metadata{Anonymous: true, Hosting: true}},
		{"an address no database covers gets empty metadata", all, "192.0.2.1", reputation.Metadata{}},
		{"the ISP database alone gives AS number and AS organisation", ispOnly, "149.101.100.1",
			reputation.Metadata{ASN: "AS6167", Org: "CELLCO-PART"}},
		{"the ISP database falls back to the ISP name without an AS organisation", ispOnly, "1.0.128.1",
			reputation.Metadata{Org: "TOT Public Company Limited"}},
		{"the zero address gets empty metadata", all, "", reputation.Metadata{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addr netip.Addr
			if tt.addr != "" {
				addr = netip.MustParseAddr(tt.addr)
			}
			if got := tt.e.Metadata(addr); got != tt.want {
				t.Errorf("Metadata(%s) = %+v, want %+v", tt.addr, got, tt.want)
			}
		})
	}
}

// sourceNetworks reads the networks of a test database's source JSON,
// IPv4 ones (stored under ::/96) as IPv4.
func sourceNetworks(t *testing.T, name string) []netip.Prefix {
	t.Helper()
	data, err := os.ReadFile(shared.Data(t, "feeds", "geoip", "source-data", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []map[string]json.RawMessage
	if err := json.Unmarshal(data, &entries); err != nil {
		t.Fatal(err)
	}
	var out []netip.Prefix
	for _, e := range entries {
		for k := range e {
			p := netip.MustParsePrefix(k)
			if a := p.Addr(); a.Is6() && p.Bits() >= 96 && netip.PrefixFrom(a, 96).Masked().Addr() == netip.IPv6Unspecified() {
				b := a.As16()
				p = netip.PrefixFrom(netip.AddrFrom4([4]byte(b[12:])), p.Bits()-96)
			}
			out = append(out, p)
		}
	}
	return out
}

// TestMetadataAgreesWithGeoIP2 checks every network of each test database
// against geoip2-golang's complete decoding of the same record.
func TestMetadataAgreesWithGeoIP2(t *testing.T) {
	tests := []struct {
		name   string
		db     string
		cfg    func(path string) config.GeoIP
		expect func(t *testing.T, r *geoip2.Reader, ip net.IP) reputation.Metadata
	}{
		{"city fields match geoip2's City record", "GeoIP2-City-Test",
			func(p string) config.GeoIP { return config.GeoIP{City: p} },
			func(t *testing.T, r *geoip2.Reader, ip net.IP) reputation.Metadata {
				c, err := r.City(ip)
				if err != nil {
					t.Fatal(err)
				}
				return reputation.Metadata{Country: c.Country.IsoCode, City: c.City.Names["en"]}
			}},
		{"country fields match geoip2's Country record", "GeoIP2-Country-Test",
			func(p string) config.GeoIP { return config.GeoIP{Country: p} },
			func(t *testing.T, r *geoip2.Reader, ip net.IP) reputation.Metadata {
				c, err := r.Country(ip)
				if err != nil {
					t.Fatal(err)
				}
				return reputation.Metadata{Country: c.Country.IsoCode}
			}},
		{"ASN fields match geoip2's ASN record", "GeoLite2-ASN-Test",
			func(p string) config.GeoIP { return config.GeoIP{ASN: p} },
			func(t *testing.T, r *geoip2.Reader, ip net.IP) reputation.Metadata {
				a, err := r.ASN(ip)
				if err != nil {
					t.Fatal(err)
				}
				return reputation.Metadata{ASN: asnText(uint32(a.AutonomousSystemNumber)), Org: a.AutonomousSystemOrganization}
			}},
		{"ISP fields match geoip2's ISP record", "GeoIP2-ISP-Test",
			func(p string) config.GeoIP { return config.GeoIP{ISP: p} },
			func(t *testing.T, r *geoip2.Reader, ip net.IP) reputation.Metadata {
				a, err := r.ISP(ip)
				if err != nil {
					t.Fatal(err)
				}
				org := a.AutonomousSystemOrganization
				if org == "" {
					org = a.ISP
				}
				if org == "" {
					org = a.Organization
				}
				return reputation.Metadata{ASN: asnText(uint32(a.AutonomousSystemNumber)), Org: org}
			}},
		{"anonymizer flags match geoip2's AnonymousIP record", "GeoIP2-Anonymous-IP-Test",
			func(p string) config.GeoIP { return config.GeoIP{AnonymousIP: p} },
			func(t *testing.T, r *geoip2.Reader, ip net.IP) reputation.Metadata {
				a, err := r.AnonymousIP(ip)
				if err != nil {
					t.Fatal(err)
				}
				return reputation.Metadata{Anonymous: a.IsAnonymous, VPN: a.IsAnonymousVPN, Tor: a.IsTorExitNode,
					Hosting: a.IsHostingProvider, PublicProxy: a.IsPublicProxy}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := testDB(t, tt.db)
			e := open(t, tt.cfg(path))
			r, err := geoip2.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			nets := sourceNetworks(t, tt.db)
			nonEmpty := 0
			for _, p := range nets {
				addr := p.Addr()
				want := tt.expect(t, r, net.IP(addr.AsSlice()))
				got := e.Metadata(addr)
				if got != want {
					t.Errorf("Metadata(%s) = %+v, geoip2 says %+v", addr, got, want)
				}
				if got != (reputation.Metadata{}) {
					nonEmpty++
				}
			}
			if nonEmpty < len(nets)/2 {
				t.Errorf("only %d of %d source networks gave metadata", nonEmpty, len(nets))
			}
		})
	}
}

func TestAnnouncedOnTheTestASNDatabase(t *testing.T) {
	e := open(t, config.GeoIP{ASN: testDB(t, "GeoLite2-ASN-Test")})
	// Sum the source JSON's IPv4 networks per AS: the expected answer.
	data, err := os.ReadFile(shared.Data(t, "feeds", "geoip", "source-data", "GeoLite2-ASN-Test.json"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []map[string]struct {
		Number uint32 `json:"autonomous_system_number"`
	}
	if err := json.Unmarshal(data, &entries); err != nil {
		t.Fatal(err)
	}
	want := map[uint32]uint64{}
	for _, entry := range entries {
		for k, v := range entry {
			if p := netip.MustParsePrefix(k); p.Addr().Is4() && v.Number != 0 {
				want[v.Number] += 1 << (32 - p.Bits())
			}
		}
	}
	if want[15169] != 256 || want[1221] != 1<<21 {
		t.Fatalf("source JSON sums changed: AS15169 %d, AS1221 %d", want[15169], want[1221])
	}
	for asn, n := range want {
		if got := e.Announced(asn); got != n {
			t.Errorf("Announced(%d) = %d, want %d", asn, got, n)
		}
	}
	if got := e.Announced(4200000000); got != 0 {
		t.Errorf("Announced of an unknown AS = %d, want 0", got)
	}
	asn, ok := e.ASN(netip.MustParseAddr("1.128.0.1"))
	if !ok || asn != 1221 {
		t.Errorf("ASN(1.128.0.1) = %d, %v, want 1221", asn, ok)
	}
	if _, ok := e.ASN(netip.MustParseAddr("192.0.2.1")); ok {
		t.Error("ASN of an unannounced address reported ok")
	}
}

// realDatabases opens the whole-Internet databases once for the package.
var realDatabases = sync.OnceValues(func() (*Enricher, error) {
	dir := filepath.Join("..", "..", "shared", "data", "geoip-real")
	return Open(config.GeoIP{ASN: filepath.Join(dir, "asn.mmdb"), Country: filepath.Join(dir, "country.mmdb")}, discard())
})

func openReal(t testing.TB) *Enricher {
	t.Helper()
	shared.Data(t, "geoip-real", "asn.mmdb")
	e, err := realDatabases()
	if err != nil {
		t.Fatalf("Open real databases: %v", err)
	}
	return e
}

// The expected values were checked against the databases with
// geoip2-golang and agree with the operators' published assignments.
func TestMetadataOnTheRealDatabases(t *testing.T) {
	e := openReal(t)
	tests := []struct {
		name    string
		addr    string
		asn     string
		country string
		org     string
	}{
		{"Google's resolver is AS15169 in the US", "8.8.8.8", "AS15169", "US", "Google LLC"},
		{"Google's IPv6 resolver is AS15169 too", "2001:4860:4860::8888", "AS15169", "US", "Google LLC"},
		{"Cloudflare's resolver is AS13335, registered in Australia", "1.1.1.1", "AS13335", "AU", "Cloudflare, Inc."},
		{"Quad9 is AS19281", "9.9.9.9", "AS19281", "US", "Quad9"},
		{"the RIPE NCC's site is AS3333 in the Netherlands", "193.0.6.139", "AS3333", "NL", "Reseaux IP Europeens Network Coordination Centre (RIPE NCC)"},
		{"private space is in neither database", "10.0.0.1", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := e.Metadata(netip.MustParseAddr(tt.addr))
			if m.ASN != tt.asn || m.Country != tt.country || m.Org != tt.org {
				t.Errorf("Metadata(%s) = %+v, want ASN %q, country %q, org %q", tt.addr, m, tt.asn, tt.country, tt.org)
			}
		})
	}

	t.Run("announced space is counted per AS over the whole IPv4 table", func(t *testing.T) {
		// AS15169 announces a few million IPv4 addresses; AS3333 a few /24s.
		if n := e.Announced(15169); n < 1<<20 || n > 1<<24 {
			t.Errorf("Announced(15169) = %d, want between 2^20 and 2^24", n)
		}
		if n := e.Announced(3333); n < 256 || n > 1<<16 {
			t.Errorf("Announced(3333) = %d, want between 256 and 2^16", n)
		}
		var st DatabaseStatus
		for _, s := range e.Status() {
			if s.Setting == "asn" {
				st = s
			}
		}
		if st.DatabaseType != "GeoLite2-ASN" || st.Networks4 < 100000 {
			t.Errorf("asn status = %+v, want a GeoLite2-ASN with over 100000 IPv4 networks", st)
		}
	})
}

func TestOpen(t *testing.T) {
	t.Run("no databases give a valid enricher with empty answers", func(t *testing.T) {
		e := open(t, config.GeoIP{})
		addr := netip.MustParseAddr("8.8.8.8")
		if m := e.Metadata(addr); m != (reputation.Metadata{}) {
			t.Errorf("Metadata = %+v, want empty", m)
		}
		if _, ok := e.ASN(addr); ok {
			t.Error("ASN reported ok without a database")
		}
		if n := e.Announced(15169); n != 0 {
			t.Errorf("Announced = %d, want 0", n)
		}
	})

	missing := filepath.Join(t.TempDir(), "GeoLite2-City.mmdb")
	garbage := filepath.Join(t.TempDir(), "garbage.mmdb")
	if err := os.WriteFile(garbage, []byte("not a maxmind database"), 0o644); err != nil {
		t.Fatal(err)
	}
	errTests := []struct {
		name string
		cfg  config.GeoIP
		is   error
		says []string
	}{
		{"a missing file is an error naming setting and path", config.GeoIP{City: missing},
			os.ErrNotExist, []string{"enrich.geoip.city", missing}},
		{"a file that is no MaxMind database is an error naming the setting", config.GeoIP{ASN: garbage},
			nil, []string{"enrich.geoip.asn"}},
		{"a database of the wrong kind is refused", config.GeoIP{ASN: testDB(t, "GeoIP2-Country-Test")},
			ErrDatabaseType, []string{"enrich.geoip.asn", "GeoIP2-Country"}},
		{"an ASN database is no anonymizer database", config.GeoIP{AnonymousIP: testDB(t, "GeoLite2-ASN-Test")},
			ErrDatabaseType, []string{"enrich.geoip.anonymous_ip"}},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Open(tt.cfg, discard())
			if err == nil {
				e.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}

	t.Run("a city database also serves as the country database", func(t *testing.T) {
		e := open(t, config.GeoIP{Country: testDB(t, "GeoLite2-City-Test")})
		if m := e.Metadata(netip.MustParseAddr("81.2.69.160")); m.Country != "GB" || m.City != "" {
			t.Errorf("Metadata = %+v, want country GB and no city", m)
		}
	})
}

func TestMetadataDoesNotAllocateOnceCached(t *testing.T) {
	e := open(t, allTestDatabases(t))
	for _, a := range []string{"81.2.69.160", "2001:480:3a::1", "192.0.2.1"} {
		addr := netip.MustParseAddr(a)
		e.Metadata(addr) // fill the record cache
		if n := testing.AllocsPerRun(100, func() { e.Metadata(addr) }); n != 0 {
			t.Errorf("Metadata(%s) allocates %v times, want 0", a, n)
		}
		if n := testing.AllocsPerRun(100, func() { e.ASN(addr) }); n != 0 {
			t.Errorf("ASN(%s) allocates %v times, want 0", a, n)
		}
	}
}

// benchAddrs are spread over the IPv4 space, so lookups walk different
// paths of the trees, plus a few IPv6 addresses.
func benchAddrs() []netip.Addr {
	var out []netip.Addr
	x := uint32(2654435761)
	for range 4096 {
		x = x*1664525 + 1013904223
		out = append(out, netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)}))
	}
	for _, s := range []string{"2001:4860:4860::8888", "2606:4700:4700::1111", "2a00:1450:4001:800::200e"} {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func BenchmarkMetadata(b *testing.B) {
	addrs := benchAddrs()
	b.Run("real ASN and country databases", func(b *testing.B) {
		e := openReal(b)
		for _, a := range addrs {
			e.Metadata(a)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			e.Metadata(addrs[i%len(addrs)])
			i++
		}
	})
	b.Run("all five test databases", func(b *testing.B) {
		e := open(b, allTestDatabases(b))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			e.Metadata(addrs[i%len(addrs)])
			i++
		}
	})
	b.Run("real databases in parallel", func(b *testing.B) {
		e := openReal(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				e.Metadata(addrs[i%len(addrs)])
				i++
			}
		})
	})
}

func BenchmarkASN(b *testing.B) {
	e := openReal(b)
	addrs := benchAddrs()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.ASN(addrs[i%len(addrs)])
		i++
	}
}

func BenchmarkAnnouncedWalk(b *testing.B) {
	path := shared.Data(b, "geoip-real", "asn.mmdb")
	d, err := loadDatabase(kindASN, path, testNow())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := announcedSpace(d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(d.networks4), "networks")
}
