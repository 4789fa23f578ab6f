package reputation

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/gaissmai/bart"
	"github.com/rampart-ip/rampart/store"
)

// tableEnricher answers ASN questions from a fixed table: a stand-in
// for package enrich's MaxMind-backed Enricher with the same contract.
type tableEnricher struct {
	asn       bart.Table[uint32]
	announced map[uint32]uint64
}

var _ Enricher = (*tableEnricher)(nil)

func (e *tableEnricher) Metadata(addr netip.Addr) Metadata {
	if asn, ok := e.asn.Lookup(addr); ok {
		return Metadata{ASN: "AS" + itoa(asn), Org: "Example <Org>"}
	}
	return Metadata{}
}

func (e *tableEnricher) ASN(addr netip.Addr) (uint32, bool) { return e.asn.Lookup(addr) }

func (e *tableEnricher) Announced(asn uint32) uint64 { return e.announced[asn] }

func itoa(n uint32) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func contextData(t testing.TB) Data {
	since := t0.Add(-time.Hour)
	d := Data{Sources: testSources()}
	for _, p := range []string{
		"192.0.2.1/32", "192.0.2.5/32", "192.0.2.9/32", "192.0.2.200/32", "192.0.3.1/32",
		"192.0.2.128/28", "192.0.10.0/24",
		"2a00:1:2:3::1/128", "2a00:1:2:3::2/128", "2a00:1:2:4::1/128", "2a00:1:2:3:8000::/65", "2a00:1:3::1/128",
	} {
		d.Listings = append(d.Listings, listing(t, "alpha", p, since))
	}
	// Ended listings are not neighbours.
	d.Episodes = append(d.Episodes, episode(t, "beta", "192.0.2.50/32", since.Add(-time.Hour), since))
	return d
}

func TestContext(t *testing.T) {
	idx := Build(contextData(t), BuildOptions{Now: func() time.Time { return t0 }})
	tests := []struct {
		name      string
		addr      string
		near, far int
		nearest   uint32
	}{
		{"a listed host counts its neighbours but not itself", "192.0.2.5", 4, 6, 4},
		{"an address inside a listed range does not count that range", "192.0.2.130", 4, 6, 70},
		{"an unlisted address in the /16 has far neighbours only", "192.0.4.0", 0, 7, 255},
		{"an address in another /16 has no neighbours", "192.1.0.0", 0, 0, 0},
		{"the first address of the /24 counts the hosts after it", "192.0.2.0", 5, 7, 1},
		{"an IPv6 host counts its /64 and /48 neighbours", "2a00:1:2:3::1", 2, 3, 0},
		{"an IPv6 address in another /48 has none", "2a00:1:4::1", 0, 0, 0},
		{"an IPv6 address in the /48 has far neighbours only", "2a00:1:2:ffff::1", 0, 4, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := idx.near.context(mustAddr(t, tt.addr))
			if c.NeighboursNear != tt.near || c.NeighboursFar != tt.far || c.NearestDistance != tt.nearest {
				t.Errorf("near %d far %d nearest %d; want %d %d %d",
					c.NeighboursNear, c.NeighboursFar, c.NearestDistance, tt.near, tt.far, tt.nearest)
			}
			if !c.Announced || c.ASN != 0 {
				t.Errorf("without an enricher: announced %v asn %d; want true, 0", c.Announced, c.ASN)
			}
		})
	}
}

func TestContextEdgesOfTheAddressSpace(t *testing.T) {
	d := Data{Sources: testSources(), Listings: []store.Listing{
		listing(t, "alpha", "255.255.255.254/32", t0), listing(t, "alpha", "0.0.0.1/32", t0),
	}}
	idx := Build(d, BuildOptions{})
	if c := idx.near.context(mustAddr(t, "255.255.255.255")); c.NeighboursNear != 1 || c.NearestDistance != 1 {
		t.Errorf("top of the space: %+v", c)
	}
	if c := idx.near.context(mustAddr(t, "0.0.0.0")); c.NeighboursNear != 1 || c.NearestDistance != 1 {
		t.Errorf("bottom of the space: %+v", c)
	}
}

func TestContextASN(t *testing.T) {
	e := &tableEnricher{announced: map[uint32]uint64{64500: 512, 64501: 0}}
	e.asn.Insert(mustPrefix(t, "192.0.2.0/23"), 64500)
	e.asn.Insert(mustPrefix(t, "192.0.10.0/24"), 64501)
	idx := Build(contextData(t), BuildOptions{Enricher: e, Now: func() time.Time { return t0 }})
	tests := []struct {
		name      string
		addr      string
		asn       uint32
		density   float64
		announced bool
	}{
		{"density is open listings over announced addresses, a range counting once", "192.0.2.77", 64500, 6.0 / 512, true},
		{"an ASN with unknown size has no density", "192.0.10.1", 64501, 0, true},
		{"an address outside announced space is unannounced", "8.8.8.8", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := idx.near.context(mustAddr(t, tt.addr))
			if c.ASN != tt.asn || c.ASNDensity != tt.density || c.Announced != tt.announced {
				t.Errorf("asn %d density %v announced %v; want %d %v %v", c.ASN, c.ASNDensity, c.Announced, tt.asn, tt.density, tt.announced)
			}
		})
	}
	t.Run("an enricher that knows no ASN at all counts as no ASN data", func(t *testing.T) {
		idx := Build(contextData(t), BuildOptions{Enricher: &tableEnricher{}})
		if c := idx.near.context(mustAddr(t, "8.8.8.8")); !c.Announced {
			t.Error("every address is unannounced without ASN data")
		}
	})
	t.Run("the service fills metadata and context from the enricher", func(t *testing.T) {
		clock := &fakeClock{t: t0}
		s := NewService(ServiceOptions{Now: clock.Now})
		s.Swap(idx)
		a := s.Check(mustAddr(t, "192.0.2.5"))
		if a.Metadata.ASN != "AS64500" || a.Metadata.Org != "Example <Org>" {
			t.Errorf("metadata %+v", a.Metadata)
		}
	})
}

// networkTableEnricher is tableEnricher with routed prefixes and
// countries, as package enrich's Enricher reports them (Network, Country,
// CountryAnnounced).
type networkTableEnricher struct {
	tableEnricher
	nets      []netip.Prefix // disjoint routed prefixes
	country   string
	announced uint64
}

var (
	_ networkEnricher = (*networkTableEnricher)(nil)
	_ countryEnricher = (*networkTableEnricher)(nil)
)

func (e *networkTableEnricher) Network(addr netip.Addr) (netip.Prefix, uint32, bool) {
	for _, p := range e.nets {
		if p.Contains(addr) {
			asn, _ := e.asn.Lookup(addr)
			return p, asn, true
		}
	}
	return netip.PrefixFrom(addr, 32), 0, true
}

func (e *networkTableEnricher) Country(addr netip.Addr) (string, bool) {
	if _, ok := e.asn.Lookup(addr); ok {
		return e.country, true
	}
	return "", false
}

func (e *networkTableEnricher) CountryAnnounced() map[string]uint64 {
	return map[string]uint64{e.country: e.announced}
}

func TestContextNetworkAndCountry(t *testing.T) {
	e := &networkTableEnricher{
		tableEnricher: tableEnricher{announced: map[uint32]uint64{64500: 1024}},
		nets:          []netip.Prefix{netip.MustParsePrefix("192.0.2.0/25"), netip.MustParsePrefix("192.0.2.128/25"), netip.MustParsePrefix("192.0.3.0/24")},
		country:       "DE",
		announced:     1 << 20,
	}
	e.asn.Insert(netip.MustParsePrefix("192.0.2.0/23"), 64500)
	idx := Build(contextData(t), BuildOptions{Enricher: e, Now: func() time.Time { return t0 }})
	tests := []struct {
		name       string
		addr       string
		bits, n    int
		country    float64
		announced  bool
		asnDensity float64
	}{
		// 192.0.2.0/25 holds hosts .1, .5, .9 (the episode at .50 is ended).
		{"an unlisted address counts every listing of its routed prefix", "192.0.2.7", 25, 3, 6.0 / (1 << 20), true, 6.0 / 1024},
		{"a listed host does not count itself", "192.0.2.5", 25, 2, 6.0 / (1 << 20), true, 6.0 / 1024},
		// 192.0.2.128/25 holds host .200 and the range .128/28, once each.
		{"a listed range counts once in its routed prefix", "192.0.2.130", 25, 2, 6.0 / (1 << 20), true, 6.0 / 1024},
		{"a prefix with no listing has no network density", "198.51.100.1", 0, 0, 0, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := idx.near.context(netip.MustParseAddr(tt.addr))
			if c.NetworkBits != tt.bits || c.NetworkListed != tt.n {
				t.Errorf("network = /%d with %d listed; want /%d with %d", c.NetworkBits, c.NetworkListed, tt.bits, tt.n)
			}
			if math.Abs(c.CountryDensity-tt.country) > 1e-12 {
				t.Errorf("country density = %g; want %g", c.CountryDensity, tt.country)
			}
			if c.Announced != tt.announced {
				t.Errorf("announced = %v; want %v", c.Announced, tt.announced)
			}
			if math.Abs(c.ASNDensity-tt.asnDensity) > 1e-12 {
				t.Errorf("ASN density = %g; want %g", c.ASNDensity, tt.asnDensity)
			}
		})
	}
}
