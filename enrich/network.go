package enrich

import (
	"net"
	"net/netip"

	"github.com/oschwald/maxminddb-golang"
)

// Network returns the network record of the ASN database (else the ISP
// database) that holds addr: the prefix the database maps as one unit,
// which for announced space is the routed prefix (or the part of it that
// no more specific route covers), and its AS number, 0 when the database
// maps no AS there (unannounced space, and then the prefix is the whole
// unmapped block). ok is false when no such database is loaded or the
// lookup fails. The reputation index calls it once per listed network at
// build time to count listed hosts per routed prefix; it allocates, so it
// is not meant for the per-query path.
func (e *Enricher) Network(addr netip.Addr) (network netip.Prefix, asn uint32, ok bool) {
	addr = addr.Unmap()
	if !addr.IsValid() {
		return netip.Prefix{}, 0, false
	}
	s := e.snap.Load()
	if s.asnSource < 0 {
		return netip.Prefix{}, 0, false
	}
	d := s.dbs[s.asnSource]
	if d == nil || (!addr.Is4() && !d.ipv6) {
		return netip.Prefix{}, 0, false
	}
	var buf [16]byte
	var rec struct {
		Number uint32 `maxminddb:"autonomous_system_number"`
	}
	n, _, err := d.reader.LookupNetwork(netIP(addr, &buf), &rec)
	if err != nil || n == nil {
		d.errors.Add(1)
		return netip.Prefix{}, 0, false
	}
	ones, _ := n.Mask.Size()
	base, okAddr := netip.AddrFromSlice(n.IP)
	if !okAddr {
		return netip.Prefix{}, 0, false
	}
	base = base.Unmap()
	if addr.Is4() && base.Is6() {
		// An IPv6 database whose IPv4 subtree starts above /96 (see
		// maxminddb's Reader.cidr): no IPv4 network to report.
		return netip.Prefix{}, 0, false
	}
	return netip.PrefixFrom(base, ones).Masked(), rec.Number, true
}

// CountryAnnounced walks every IPv4 network record of the ASN database
// (else the ISP database) that maps to an AS and sums its addresses by the
// country the country database (else the city database) gives its first
// address: announced IPv4 space per ISO country code, the denominator of
// the reputation index's country density. It reads the whole database
// (hundreds of milliseconds on a whole-Internet one) and returns nil when
// either database is missing.
func (e *Enricher) CountryAnnounced() map[string]uint64 {
	s := e.snap.Load()
	if s.asnSource < 0 || s.dbs[s.asnSource] == nil {
		return nil
	}
	geo := kindCountry
	if s.dbs[geo] == nil {
		geo = kindCity
	}
	if s.dbs[geo] == nil {
		return nil
	}
	d := s.dbs[s.asnSource]
	all4 := &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	nets := d.reader.NetworksWithin(all4, maxminddb.SkipAliasedNetworks)
	out := make(map[string]uint64)
	var rec struct {
		Number uint32 `maxminddb:"autonomous_system_number"`
	}
	for nets.Next() {
		rec.Number = 0
		n, err := nets.Network(&rec)
		if err != nil {
			return nil
		}
		ones, bits := n.Mask.Size()
		if bits != 32 || rec.Number == 0 {
			continue
		}
		r := s.dbs[geo].lookup(n.IP)
		if r == nil || r.Country == "" {
			continue
		}
		out[r.Country] += 1 << (32 - ones)
	}
	if nets.Err() != nil {
		return nil
	}
	return out
}

// Country returns the ISO country code of addr from the country database,
// else the city database: Metadata's country alone, for callers that need
// nothing else. It shares Metadata's lookup of the same address (see memo).
func (e *Enricher) Country(addr netip.Addr) (string, bool) {
	addr = addr.Unmap()
	if !addr.IsValid() {
		return "", false
	}
	recs := &e.resolve(e.snap.Load(), addr).recs
	for _, k := range [...]kind{kindCountry, kindCity} {
		if r := recs[k]; r != nil && r.Country != "" {
			return r.Country, true
		}
	}
	return "", false
}
