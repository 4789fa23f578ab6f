package reputation

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
)

// neighbourhood holds what the context features are computed from, built
// once per index: the listed units (host addresses and ranges) with at
// least one open listing at build time, sorted, and the count of open IPv4
// listings (hosts and ranges, one each) in each ASN. A query reads a few
// binary searches from it; nothing here is computed per request beyond
// that.
type neighbourhood struct {
	hosts4   []uint32 // open IPv4 hosts, sorted
	bucket4  []uint32 // offsets of hosts4 by top 16 bits
	ranges4  []unit4  // open IPv4 ranges longer than /16, sorted by base
	units6   []unit6  // open IPv6 hosts and ranges longer than /48, sorted
	enricher Enricher
	asnCount map[uint32]uint64 // open IPv4 listings per ASN, a range counting once
	asnKnown bool              // the enricher resolved at least one ASN
	// nets4 are the ASN database's IPv4 network records (routed
	// prefixes) that hold at least one open listing, sorted and
	// disjoint, with the count of open listings in each, a range
	// counting once. Empty when the enricher cannot tell networks.
	nets4 []net4
	// countryDensity is open IPv4 listings per announced address in each
	// country (hosts and ranges counting once). Nil without a country
	// database.
	countryDensity map[string]float64
	countries      countryEnricher
	networks       networkEnricher
	// rng4 are the open IPv4 ranges of any length, sorted by first
	// address, for the distance to the nearest listed range.
	rng4 []range4
	// learned is the learned context model (learn.go), nil when the data
	// were too few to learn from.
	learned *ContextModel
	// asnPrior is open IPv4 listings (with a known AS) per announced
	// IPv4 address over all announced space, estimated at build.
	asnPrior float64
	// hostProv is the sole provider of each of hosts4 (0 for several),
	// during training only.
	hostProv []uint16
}

// ranges4In returns the open ranges longer than /16 inside the /16 k.
func (n *neighbourhood) ranges4In(k uint32) []unit4 {
	i, _ := slices.BinarySearchFunc(n.ranges4, k<<16, func(u unit4, t uint32) int { return cmp.Compare(u.base, t) })
	j := i
	for j < len(n.ranges4) && n.ranges4[j].base>>16 == k {
		j++
	}
	return n.ranges4[i:j]
}

// range4 is one open IPv4 range: first and last address, and its sole
// provider (see provOf).
type range4 struct {
	lo, hi uint32
	prov   uint16
}

// countryEnricher is implemented by enrichers with a country database
// that also know announced space per country (enrich.Enricher). It is
// optional: without it the index has no country density.
type countryEnricher interface {
	Country(addr netip.Addr) (string, bool)
	CountryAnnounced() map[string]uint64
}

// net4 is one routed IPv4 prefix with open listings.
type net4 struct {
	base  uint32
	bits  uint8
	count uint32
}

// networkEnricher is implemented by enrichers that can tell the network
// record holding an address (enrich.Enricher.Network). It is optional:
// without it the index has no routed-prefix density.
type networkEnricher interface {
	Network(addr netip.Addr) (network netip.Prefix, asn uint32, ok bool)
}

type unit4 struct {
	base uint32
	bits uint8
	prov uint16 // sole provider, 0 for several (training only)
}

type unit6 struct {
	hi, lo uint64
	bits   uint8
}

func (u unit6) contains(hi, lo uint64) bool {
	return netip.PrefixFrom(addr6(u.hi, u.lo), int(u.bits)).Contains(addr6(hi, lo))
}

func split6(a netip.Addr) (hi, lo uint64) {
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

func addr6(hi, lo uint64) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return netip.AddrFrom16(b)
}

func open(ms []cmatch) bool {
	for _, m := range ms {
		if m.ended == 0 {
			return true
		}
	}
	return false
}

// buildNeighbourhood collects the open units of x and, with an enricher,
// counts open IPv4 listings per ASN and per routed prefix (hosts and
// ranges, one each).
func buildNeighbourhood(x *Index, e Enricher) neighbourhood {
	n := neighbourhood{enricher: e}
	provs := newProviders(x.sources)
	tr := newTrainingCounts()
	var hostProv []uint16
	var ne networkEnricher
	var perNet map[netip.Prefix]uint32
	if e != nil {
		n.asnCount = make(map[uint32]uint64)
		ne, _ = e.(networkEnricher)
		if ne != nil {
			perNet = make(map[netip.Prefix]uint32)
		}
	}
	// Hosts come sorted, and neighbours share their network record: one
	// database lookup serves every listed host of a routed prefix.
	var cur netip.Prefix
	var curASN uint32
	var curCountry string
	ce, _ := e.(countryEnricher)
	var perCountry map[string]uint64
	if ce != nil {
		perCountry = make(map[string]uint64)
	}
	count := func(a netip.Addr, prov uint16) {
		switch {
		case e == nil:
			return
		case ne == nil:
			if asn, ok := e.ASN(a); ok {
				n.asnKnown = true
				n.asnCount[asn]++
				tr.addASN(prov, asn)
			}
			return
		}
		if !cur.IsValid() || !cur.Contains(a) {
			p, asn, ok := ne.Network(a)
			if !ok {
				cur = netip.Prefix{}
				return
			}
			cur, curASN = p, asn
			curCountry = ""
			if ce != nil {
				curCountry, _ = ce.Country(a)
			}
		}
		perNet[cur]++
		if curCountry != "" && curASN != 0 {
			perCountry[curCountry]++
		}
		if curASN != 0 {
			n.asnKnown = true
			n.asnCount[curASN]++
			tr.addASN(prov, curASN)
		}
	}
	for i := range x.nHosts() {
		ms := x.matches[x.hosts4[i].off:x.hosts4[i+1].off]
		if a := x.hosts4[i].addr; open(ms) {
			prov := provs.sole(ms)
			n.hosts4 = append(n.hosts4, a)
			hostProv = append(hostProv, prov)
			count(addr4(a), prov)
		}
	}
	n.hosts4 = slices.Clip(n.hosts4)
	n.bucket4 = bucket16(len(n.hosts4), func(i int) uint32 { return n.hosts4[i] })
	for j, p := range x.pfx {
		ms := x.matches[x.pfxOff[j]:x.pfxOff[j+1]]
		if !open(ms) || x.bogon[j] {
			continue
		}
		if p.Addr().Is4() {
			// A listed range counts once, like a host: it is one claim
			// about one block, and counting its size would let one /12
			// of hijacked space outweigh all the host evidence in the
			// ASN (leave-one-feed-out, docs/scoring.md).
			prov := provs.sole(ms)
			count(p.Addr(), prov)
			lo := v4(p.Addr())
			n.rng4 = append(n.rng4, range4{lo: lo, hi: lo | ^(^uint32(0) << (32 - p.Bits())), prov: prov})
			if p.Bits() > 16 {
				n.ranges4 = append(n.ranges4, unit4{base: v4(p.Addr()), bits: uint8(p.Bits()), prov: prov})
			}
			continue
		}
		if p.Bits() > 48 {
			hi, lo := split6(p.Addr())
			n.units6 = append(n.units6, unit6{hi: hi, lo: lo, bits: uint8(p.Bits())})
		}
	}
	// x.pfx is sorted by address then length, so both lists already are.
	if len(perCountry) > 0 {
		if ann := ce.CountryAnnounced(); len(ann) > 0 {
			n.countries = ce
			n.countryDensity = make(map[string]float64, len(perCountry))
			for cc, k := range perCountry {
				if a := ann[cc]; a > 0 {
					n.countryDensity[cc] = min(1, float64(k)/float64(a))
				}
			}
		}
	}
	if len(perNet) > 0 {
		n.nets4 = make([]net4, 0, len(perNet))
		for p, c := range perNet {
			if p.Addr().Is4() {
				n.nets4 = append(n.nets4, net4{base: v4(p.Addr()), bits: uint8(p.Bits()), count: c})
			}
		}
		slices.SortFunc(n.nets4, func(a, b net4) int { return cmp.Compare(a.base, b.base) })
	}
	n.networks = ne
	n.asnPrior = n.estimatePrior()
	n.learned = n.learn(x, hostProv, provs, &tr)
	return n
}

// network returns the routed prefix with open listings holding a, if any.
func (n *neighbourhood) network(a uint32) (net4, bool) {
	i, _ := slices.BinarySearchFunc(n.nets4, a+1, func(u net4, t uint32) int { return cmp.Compare(u.base, t) })
	if a == ^uint32(0) {
		i = len(n.nets4)
	}
	if i == 0 {
		return net4{}, false
	}
	u := n.nets4[i-1]
	if a&(^uint32(0)<<(32-u.bits)) != u.base {
		return net4{}, false
	}
	return u, true
}

// context returns the context features of addr.
func (n *neighbourhood) context(addr netip.Addr) Context {
	var c Context
	if addr.Is4() {
		n.context4(v4(addr), &c)
		c.Learned = n.learned
	} else if addr.Is6() {
		n.context6(addr, &c)
	}
	c.Announced = true
	if n.enricher == nil {
		return c
	}
	var asn uint32
	var ok bool
	if n.networks != nil && addr.Is4() {
		var p netip.Prefix
		if p, asn, ok = n.networks.Network(addr); ok {
			c.RoutedBits = p.Bits()
			ok = asn != 0
		}
	} else {
		asn, ok = n.enricher.ASN(addr)
	}
	if !ok {
		// Without any resolved ASN the enricher has no ASN database:
		// "unknown", not "unannounced".
		c.Announced = !n.asnKnown
		return c
	}
	c.ASN = asn
	if n.countries != nil {
		if cc, ok := n.countries.Country(addr); ok {
			c.CountryDensity = n.countryDensity[cc]
		}
	}
	if ann := n.enricher.Announced(asn); ann > 0 {
		c.ASNDensity = min(1, float64(n.asnCount[asn])/float64(ann))
		c.ASNShrunk = n.shrink(n.asnCount[asn], ann)
	}
	return c
}

// shrink returns the density of listed in announced addresses shrunk
// toward the density of all announced space (empirical Bayes with
// asnPseudoAddresses addresses of prior weight).
func (n *neighbourhood) shrink(listed, announced uint64) float64 {
	return min(1, (float64(listed)+asnPseudoAddresses*n.asnPrior)/(float64(announced)+asnPseudoAddresses))
}

// nearestHost returns the distance from a to the nearest open IPv4 host
// other than a itself (0 for none).
func (n *neighbourhood) nearestHost(a uint32) uint32 {
	i, self := slices.BinarySearch(n.hosts4, a)
	best := uint32(0)
	if i > 0 {
		best = a - n.hosts4[i-1]
	}
	if self {
		i++
	}
	if i < len(n.hosts4) {
		if d := n.hosts4[i] - a; best == 0 || d < best {
			best = d
		}
	}
	return best
}

// nearestRange returns the distance from a to the nearest open IPv4
// range that does not contain it (0 for none). Ranges nest rarely; the
// few ranges starting just before a are checked for the nearest end.
func (n *neighbourhood) nearestRange(a uint32) uint32 {
	i, _ := slices.BinarySearchFunc(n.rng4, a, func(r range4, t uint32) int { return cmp.Compare(r.lo, t) })
	best := uint32(0)
	for j := i; j < len(n.rng4) && j < i+2; j++ {
		if r := n.rng4[j]; r.lo > a {
			best = r.lo - a
			break
		}
	}
	for j := i - 1; j >= 0 && j >= i-4; j-- {
		if r := n.rng4[j]; r.hi < a {
			if d := a - r.hi; best == 0 || d < best {
				best = d
			}
		}
	}
	return best
}

func (n *neighbourhood) context4(a uint32, c *Context) {
	k := a >> 16
	lo, hi := int(n.bucket4[k]), int(n.bucket4[k+1])
	block := n.hosts4[lo:hi]
	pos, self := slices.BinarySearch(block, a)
	c.NeighboursFar = len(block)
	first, _ := slices.BinarySearch(block, a&^0xff)
	last, _ := slices.BinarySearch(block, (a|0xff)+1)
	if a|0xff == 0xffffffff {
		last = len(block)
	}
	c.NeighboursNear = last - first
	if self {
		c.NeighboursFar--
		c.NeighboursNear--
	}
	// Nearest other open host in the /16.
	best := uint32(0)
	if pos > 0 {
		best = a - block[pos-1]
	}
	next := pos
	if self {
		next++
	}
	if next < len(block) {
		if d := block[next] - a; best == 0 || d < best {
			best = d
		}
	}
	c.NearestDistance = best
	c.NearestHost = n.nearestHost(a)
	c.NearestRange = n.nearestRange(a)

	if u, ok := n.network(a); ok {
		c.NetworkBits = int(u.bits)
		c.NetworkListed = int(u.count)
		if self {
			c.NetworkListed--
		}
	}

	// Open ranges inside the /16 and /24 that do not contain a.
	i, _ := slices.BinarySearchFunc(n.ranges4, k<<16, func(u unit4, t uint32) int { return cmp.Compare(u.base, t) })
	for ; i < len(n.ranges4) && n.ranges4[i].base>>16 == k; i++ {
		u := n.ranges4[i]
		mask := ^uint32(0) << (32 - u.bits)
		if a&mask == u.base {
			continue
		}
		c.NeighboursFar++
		if u.bits > 24 && u.base>>8 == a>>8 {
			c.NeighboursNear++
		}
	}
}

func (n *neighbourhood) context6(addr netip.Addr, c *Context) {
	hi, lo := split6(addr)
	start := hi &^ 0xffff
	i, _ := slices.BinarySearchFunc(n.units6, start, func(u unit6, t uint64) int { return cmp.Compare(u.hi, t) })
	for ; i < len(n.units6) && n.units6[i].hi>>16 == hi>>16; i++ {
		u := n.units6[i]
		if u.contains(hi, lo) {
			continue
		}
		c.NeighboursFar++
		if u.bits > 64 && u.hi == hi {
			c.NeighboursNear++
		}
	}
}
