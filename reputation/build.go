package reputation

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/rampart-ip/rampart/store"
)

// Data is what an index is built from: the sources, their current
// listings and their ended episodes, as read from the store.
type Data struct {
	Sources  []SourceInfo
	Listings []store.Listing
	Episodes []store.Episode
}

// BuildOptions configure Build.
type BuildOptions struct {
	// Enricher, if set, gives each address's ASN for the context features
	// (ASN density). Optional.
	Enricher Enricher
	// Warner, if set, is the Service's warninglist matcher when the Service
	// has none of its own. Optional.
	Warner Warner
	// Retention is how long ended episodes are kept: older ones are left
	// out of the index. 0 keeps every episode given.
	Retention time.Duration
	// Now is the build time, for retention and for the context features'
	// "open listing" counts. Defaults to time.Now.
	Now func() time.Time
}

// BuildStats counts what Build read and what it skipped. Skipped records
// are malformed (invalid prefix, time out of range, episode ending before
// it started); they are counted, never fatal.
type BuildStats struct {
	Listings, Episodes int
	// Expired counts episodes that ended before the retention window.
	Expired int
	Skipped int
	// UnknownSources counts listings and episodes of sources that Data
	// does not describe; they are kept under a bare SourceInfo.
	UnknownSources int
}

// rec4 is one listing or episode of an IPv4 host address, during build.
type rec4 struct {
	addr uint32
	m    cmatch
}

// recP is one listing or episode of a range or an IPv6 host, during build.
type recP struct {
	p netip.Prefix
	m cmatch
}

// Build makes an index of d. It copies what it keeps, so d may be reused.
func Build(d Data, o BuildOptions) *Index {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	x := &Index{
		builtAt:   now(),
		retention: o.Retention,
		enricher:  o.Enricher,
		warner:    o.Warner,
	}
	var cutoff time.Time
	if o.Retention > 0 {
		cutoff = x.builtAt.Add(-o.Retention)
	}

	x.sources = make([]SourceInfo, 0, len(d.Sources))
	byName := make(map[string]uint32, len(d.Sources))
	for _, s := range d.Sources {
		if _, dup := byName[s.Name]; dup {
			continue
		}
		byName[s.Name] = uint32(len(x.sources))
		x.sources = append(x.sources, s)
	}
	source := func(name string) uint32 {
		if i, ok := byName[name]; ok {
			return i
		}
		x.stats.UnknownSources++
		i := uint32(len(x.sources))
		byName[name] = i
		x.sources = append(x.sources, SourceInfo{Name: name, Kind: store.KindFeed})
		return i
	}

	hosts := make([]rec4, 0, len(d.Listings)+len(d.Episodes))
	var others []recP
	add := func(p netip.Prefix, m cmatch) {
		if p.Addr().Is4() && p.Bits() == 32 {
			hosts = append(hosts, rec4{addr: v4(p.Addr()), m: m})
		} else {
			others = append(others, recP{p: p, m: m})
		}
	}
	for _, l := range d.Listings {
		x.stats.Listings++
		p, ok := normalize(l.Prefix)
		if !ok || !validTime(l.Since) {
			x.stats.Skipped++
			continue
		}
		add(p, cmatch{since: toNanos(l.Since), src: source(l.Source)})
	}
	for _, e := range d.Episodes {
		x.stats.Episodes++
		p, ok := normalize(e.Prefix)
		if !ok || !validTime(e.Started) || !validTime(e.Ended) || e.Ended.Before(e.Started) {
			x.stats.Skipped++
			continue
		}
		if !cutoff.IsZero() && e.Ended.Before(cutoff) {
			x.stats.Expired++
			continue
		}
		add(p, cmatch{since: toNanos(e.Started), ended: toNanos(e.Ended), src: source(e.Source)})
	}

	slices.SortFunc(others, func(a, b recP) int {
		if c := a.p.Addr().Compare(b.p.Addr()); c != 0 {
			return c
		}
		if c := cmp.Compare(a.p.Bits(), b.p.Bits()); c != 0 {
			return c
		}
		return cmpMatch(a.m, b.m)
	})
	slices.SortFunc(hosts, func(a, b rec4) int {
		if c := cmp.Compare(a.addr, b.addr); c != 0 {
			return c
		}
		return cmpMatch(a.m, b.m)
	})

	x.matches = make([]cmatch, 0, len(hosts)+len(others))
	x.buildPrefixes(others)
	others = nil
	x.buildHosts(hosts)
	hosts = nil
	x.markBogons(newReservedSet())
	x.near = buildNeighbourhood(x, o.Enricher)
	return x
}

// buildPrefixes fills the prefix entries and the bart table from sorted
// records. A parent sorts before its subnets (lower or equal address,
// shorter length), so parents are final before children ask for them.
func (x *Index) buildPrefixes(recs []recP) {
	for i := 0; i < len(recs); {
		p := recs[i].p
		x.pfx = append(x.pfx, p)
		x.pfxOff = append(x.pfxOff, uint32(len(x.matches)))
		for ; i < len(recs) && recs[i].p == p; i++ {
			x.matches = append(x.matches, recs[i].m)
		}
	}
	x.pfxOff = append(x.pfxOff, uint32(len(x.matches)))
	x.pfx = slices.Clip(x.pfx)
	for j, p := range x.pfx {
		x.table.Insert(p, int32(j))
	}
	x.pfxPar = make([]int32, len(x.pfx))
	for j, p := range x.pfx {
		x.pfxPar[j] = -1
		if p.Bits() == 0 {
			continue
		}
		up := netip.PrefixFrom(p.Addr(), p.Bits()-1).Masked()
		if _, par, ok := x.table.LookupPrefixLPM(up); ok {
			x.pfxPar[j] = par
		}
	}
}

// buildHosts fills the IPv4 host entries from sorted records.
func (x *Index) buildHosts(recs []rec4) {
	n := 0
	for i := range recs {
		if i == 0 || recs[i].addr != recs[i-1].addr {
			n++
		}
	}
	x.hosts4 = make([]hostKey, 0, n+1)
	for i := 0; i < len(recs); {
		a := recs[i].addr
		x.hosts4 = append(x.hosts4, hostKey{addr: a, off: uint32(len(x.matches))})
		par := int32(-1)
		if x.table.Size4() > 0 {
			if j, ok := x.table.Lookup(addr4(a)); ok {
				par = j
			}
		}
		for ; i < len(recs) && recs[i].addr == a; i++ {
			m := recs[i].m
			m.par = par
			x.matches = append(x.matches, m)
		}
	}
	x.hosts4 = append(x.hosts4, hostKey{addr: ^uint32(0), off: uint32(len(x.matches))}) // sentinel
	x.bucket4 = bucket16(len(x.hosts4)-1, func(i int) uint32 { return x.hosts4[i].addr })
}

// markBogons flags the entries that cover a whole reserved block.
func (x *Index) markBogons(rs *reservedSet) {
	x.bogon = make([]bool, len(x.pfx))
	for j, p := range x.pfx {
		x.bogon[j] = rs.coversReserved(p)
	}
	for _, b := range rs.ranges {
		if p := b.prefix; p.Addr().Is4() && p.Bits() == 32 {
			if i, ok := x.findHost4(v4(p.Addr())); ok {
				x.bogonHosts = append(x.bogonHosts, int32(i))
			}
		}
	}
}

// bucket16 returns the offsets of the sorted keys by their top 16 bits.
func bucket16(n int, key func(i int) uint32) []uint32 {
	b := make([]uint32, 1<<16+1)
	for i := range n {
		b[key(i)>>16+1]++
	}
	for i := 1; i < len(b); i++ {
		b[i] += b[i-1]
	}
	return b
}

func cmpMatch(a, b cmatch) int {
	if c := cmp.Compare(a.since, b.since); c != 0 {
		return c
	}
	if c := cmp.Compare(a.src, b.src); c != 0 {
		return c
	}
	return cmp.Compare(a.ended, b.ended)
}

// normalize masks p and turns IPv4-mapped IPv6 prefixes into IPv4 ones,
// so that ::ffff:192.0.2.1/128 and 192.0.2.1/32 are one entry.
func normalize(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return netip.Prefix{}, false
	}
	a := p.Addr().WithZone("")
	if a.Is4In6() {
		if p.Bits() < 96 {
			return netip.PrefixFrom(a, p.Bits()).Masked(), true
		}
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked(), true
	}
	return netip.PrefixFrom(a, p.Bits()).Masked(), true
}

// validTime reports whether t is set and inside the range that Unix
// nanoseconds represent, with margin.
func validTime(t time.Time) bool {
	y := t.Year()
	return !t.IsZero() && y >= 1971 && y < 2200
}
