package reputation

import (
	"net/netip"

	"github.com/gaissmai/bart"
)

// reservedBlock is one special-purpose block of the IANA registries that no
// public client address comes from.
type reservedBlock struct {
	prefix netip.Prefix
	name   string
}

// reservedSet finds the reserved block containing an address or a prefix.
// It is built per Service, so there is no package state.
type reservedSet struct {
	ranges []reservedBlock
	table  bart.Table[int]
}

// newReservedSet returns the reserved blocks of the IANA IPv4 and IPv6
// special-purpose registries that are not globally reachable, plus
// multicast. Globally reachable special blocks (6to4, Teredo, NAT64's
// 64:ff9b::/96) are left out: real clients arrive from them.
func newReservedSet() *reservedSet {
	list := []struct{ p, name string }{
		{"0.0.0.0/8", "\"this network\" (RFC 791)"},
		{"0.0.0.0/32", "unspecified address (RFC 1122)"},
		{"10.0.0.0/8", "private network (RFC 1918)"},
		{"100.64.0.0/10", "shared address space for carrier-grade NAT (RFC 6598)"},
		{"127.0.0.0/8", "loopback (RFC 1122)"},
		{"169.254.0.0/16", "link-local (RFC 3927)"},
		{"172.16.0.0/12", "private network (RFC 1918)"},
		{"192.0.0.0/24", "IETF protocol assignments (RFC 6890)"},
		{"192.0.2.0/24", "documentation TEST-NET-1 (RFC 5737)"},
		{"192.168.0.0/16", "private network (RFC 1918)"},
		{"198.18.0.0/15", "benchmarking (RFC 2544)"},
		{"198.51.100.0/24", "documentation TEST-NET-2 (RFC 5737)"},
		{"203.0.113.0/24", "documentation TEST-NET-3 (RFC 5737)"},
		{"224.0.0.0/4", "multicast (RFC 5771)"},
		{"240.0.0.0/4", "reserved for future use (RFC 1112)"},
		{"255.255.255.255/32", "limited broadcast (RFC 919)"},
		{"::/128", "unspecified address (RFC 4291)"},
		{"::1/128", "loopback (RFC 4291)"},
		{"64:ff9b:1::/48", "local-use IPv4/IPv6 translation (RFC 8215)"},
		{"100::/64", "discard-only (RFC 6666)"},
		{"2001:db8::/32", "documentation (RFC 3849)"},
		{"3fff::/20", "documentation (RFC 9637)"},
		{"fc00::/7", "unique local address (RFC 4193)"},
		{"fe80::/10", "link-local (RFC 4291)"},
		{"fec0::/10", "site-local, deprecated (RFC 3879)"},
		{"ff00::/8", "multicast (RFC 4291)"},
	}
	r := &reservedSet{ranges: make([]reservedBlock, len(list))}
	for i, e := range list {
		p := netip.MustParsePrefix(e.p)
		r.ranges[i] = reservedBlock{prefix: p, name: e.name}
		r.table.Insert(p, i)
	}
	return r
}

// lookup returns the most specific reserved block containing addr.
func (r *reservedSet) lookup(addr netip.Addr) (reservedBlock, bool) {
	i, ok := r.table.Lookup(addr)
	if !ok {
		return reservedBlock{}, false
	}
	return r.ranges[i], true
}

// coversReserved reports whether p equals or contains a reserved block, or
// lies inside one without being more specific than it. Such a prefix is a
// bogon-list entry (FireHOL level 1 lists all of 10.0.0.0/8), not evidence
// against a particular network, and must never turn into a block.
func (r *reservedSet) coversReserved(p netip.Prefix) bool {
	if _, _, ok := r.table.LookupPrefixLPM(p); ok {
		// p lies inside a reserved block: fine only if strictly more
		// specific than every reserved block containing it.
		for q := range r.table.Supernets(p) {
			if p.Bits() <= q.Bits() {
				return true
			}
		}
	}
	for range r.table.Subnets(p) {
		return true
	}
	return false
}
