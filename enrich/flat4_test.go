package enrich

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/internal/shared"
)

// The flattened IPv4 table must answer exactly as the tree does, on
// MaxMind's test databases and on the real whole-Internet ones.
func TestFlat4AnswersAsTheTreeDoes(t *testing.T) {
	tests := []struct {
		name string
		kind kind
		path string
	}{
		{"the real ASN database", kindASN, testRealDB(t, "asn")},
		{"the real country database", kindCountry, testRealDB(t, "country")},
		{"the ASN test database", kindASN, testDB(t, "GeoLite2-ASN-Test")},
		{"the ISP test database", kindISP, testDB(t, "GeoIP2-ISP-Test")},
		{"the city test database", kindCity, testDB(t, "GeoIP2-City-Test")},
		{"the anonymizer test database", kindAnonymous, testDB(t, "GeoIP2-Anonymous-IP-Test")},
	}
	for _, tt := range tests {
		t.Run("flattening "+tt.name+" changes no answer", func(t *testing.T) {
			start := time.Now()
			d, err := loadDatabase(tt.kind, tt.path, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if d.flat == nil {
				t.Fatal("the database was not flattened")
			}
			t.Logf("%d intervals, %d records, loaded in %v", len(d.flat.starts), len(d.flat.table)-1, time.Since(start))
			var probes []uint32
			r := rand.New(rand.NewPCG(1, 2))
			for range 20000 {
				probes = append(probes, r.Uint32())
			}
			// Interval boundaries and their neighbours, where an
			// off-by-one would show.
			for i := 0; i < len(d.flat.starts); i += 1 + len(d.flat.starts)/5000 {
				s := d.flat.starts[i]
				probes = append(probes, s, s-1, s+1)
			}
			probes = append(probes, 0, 1<<32-1, 1<<24, 0x7f000001)
			for _, a := range probes {
				addr := netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
				got := d.flat.lookup(a)
				want := d.lookup(net.IP(addr.AsSlice()))
				if (got == nil) != (want == nil) || (got != nil && *got != *want) {
					t.Fatalf("%s: flat %+v, tree %+v", addr, got, want)
				}
			}
		})
	}
}

func testRealDB(t testing.TB, name string) string {
	t.Helper()
	return shared.Data(t, "geoip-real", name+".mmdb")
}
