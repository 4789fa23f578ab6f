package reputation

import (
	"net/netip"
	"slices"
	"time"

	"github.com/gaissmai/bart"
)

// Index is an immutable snapshot of every current listing and every ended
// episode within retention, answering "which listings contain this
// address" with one lookup. Build makes one; Service.Swap puts it in
// service. It is safe for concurrent use and never changes after Build.
//
// Layout, chosen for 1M host addresses in little memory:
//   - IPv4 host addresses (/32), the bulk of every feed, are a sorted
//     []uint32 with a table of offsets by the top 16 bits, so a lookup is
//     one bucket read and a binary search over a few dozen keys;
//   - ranges (IPv4 and IPv6) and IPv6 host addresses are in a bart.Table,
//     whose longest-prefix match finds the most specific one;
//   - every entry has a span of compact matches and a parent: the most
//     specific listed range strictly containing it. A query finds its
//     entry with one lookup, then follows parents to collect the matches
//     of every listed supernet, without copying supernet matches into
//     each of their subnets at build.
type Index struct {
	sources []SourceInfo
	matches []cmatch

	// hosts4 holds the IPv4 host addresses, sorted, each with the offset
	// of its matches (host i has matches[hosts4[i].off:hosts4[i+1].off]),
	// and a sentinel at the end. Key and offset share a cache line, and
	// the parent rides in the match (cmatch.par), so a hit costs a bucket
	// read, the search and one read of the matches: each array is one
	// cache miss on 1M random hosts, the bulk of a lookup's time.
	hosts4  []hostKey
	bucket4 []uint32 // len 65537: hosts4[bucket4[k]:bucket4[k+1]] have top 16 bits k

	pfx    []netip.Prefix // ranges and IPv6 hosts, sorted by address then length
	pfxOff []uint32       // len(pfx)+1, as hostOff
	pfxPar []int32        // parent prefix entry, or -1
	table  bart.Table[int32]

	// bogon marks the entries whose prefix covers a whole reserved block
	// (reservedSet.coversReserved): bogon-list entries, which are kept
	// for History but are no evidence against any address.
	bogon      []bool  // per prefix entry
	bogonHosts []int32 // IPv4 hosts that are a reserved /32 block

	near neighbourhood

	builtAt   time.Time
	retention time.Duration
	enricher  Enricher
	warner    Warner
	stats     BuildStats
}

// cmatch is a Match without what its entry already knows (the prefix) and
// with times as Unix nanoseconds (0 for zero), 24 bytes instead of 112.
type cmatch struct {
	since int64
	ended int64
	src   uint32
	par   int32 // for IPv4 hosts, the host's parent prefix entry or -1 (in what was padding)
}

type hostKey struct {
	addr uint32
	off  uint32
}

// ref names one entry of an index: a value >= 0 is an IPv4 host (index
// into hosts4), a negative value r is the prefix entry ^r.
type ref int32

// Len returns the number of distinct listed prefixes (host addresses
// count as prefixes), current or historical.
func (x *Index) Len() int { return x.nHosts() + len(x.pfx) }

// nHosts returns the number of IPv4 host entries (hosts4 less its sentinel).
func (x *Index) nHosts() int { return max(len(x.hosts4)-1, 0) }

// Stats returns what the build read and skipped.
func (x *Index) Stats() BuildStats { return x.stats }

// BuiltAt returns the time the index was built at (BuildOptions.Now).
func (x *Index) BuiltAt() time.Time { return x.builtAt }

// Retention returns how far back the index holds ended episodes; 0 means
// it holds every episode it was given.
func (x *Index) Retention() time.Duration { return x.retention }

// lookup returns the most specific entry containing addr.
func (x *Index) lookup(addr netip.Addr) (ref, bool) {
	if addr.Is4() {
		if i, ok := x.findHost4(v4(addr)); ok {
			return ref(i), true
		}
	}
	if j, ok := x.table.Lookup(addr); ok {
		return ref(^j), true
	}
	return 0, false
}

// findHost4 returns the position of a in hosts4.
func (x *Index) findHost4(a uint32) (int, bool) {
	if len(x.bucket4) == 0 {
		return 0, false
	}
	k := a >> 16
	lo, hi := int(x.bucket4[k]), int(x.bucket4[k+1])
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if x.hosts4[m].addr < a {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(x.hosts4)-1 && x.hosts4[lo].addr == a
}

// span returns the entry's own matches, its prefix and its parent.
func (x *Index) span(r ref) (ms []cmatch, p netip.Prefix, parent int32) {
	if r >= 0 {
		i := int(r)
		h := x.hosts4[i : i+2 : i+2]
		ms := x.matches[h[0].off:h[1].off]
		return ms, netip.PrefixFrom(addr4(h[0].addr), 32), ms[0].par
	}
	j := int(^r)
	return x.matches[x.pfxOff[j]:x.pfxOff[j+1]], x.pfx[j], x.pfxPar[j]
}

// prefix returns the entry's prefix.
func (x *Index) prefix(r ref) netip.Prefix {
	if r >= 0 {
		return netip.PrefixFrom(addr4(x.hosts4[r].addr), 32)
	}
	return x.pfx[^r]
}

// appendEntry appends the matches of entry r and of all its supernets,
// most specific first. Without bogons, the matches of entries that cover
// a whole reserved block are left out and counted in skipped.
func (x *Index) appendEntry(dst []Match, r ref, bogons bool) (_ []Match, skipped int) {
	for {
		ms, p, parent := x.span(r)
		if !bogons && x.isBogon(r) {
			skipped += len(ms)
		} else {
			for i := range ms {
				dst = append(dst, Match{})
				x.expand(&dst[len(dst)-1], &ms[i], p)
			}
		}
		if parent < 0 {
			return dst, skipped
		}
		r = ref(^parent)
	}
}

func (x *Index) isBogon(r ref) bool {
	if r < 0 {
		return x.bogon[^r]
	}
	return len(x.bogonHosts) > 0 && slices.Contains(x.bogonHosts, int32(r))
}

// appendMatches appends every match containing addr to dst, bogon-list
// entries included when bogons is set. It allocates nothing when dst has
// room.
func (x *Index) appendMatches(dst []Match, addr netip.Addr, bogons bool) ([]Match, int) {
	r, ok := x.lookup(addr)
	if !ok {
		return dst, 0
	}
	return x.appendEntry(dst, r, bogons)
}

// expand fills out with compact match m of prefix p, in place: a Match
// is 112 bytes, and building it where it lands saves a copy per match.
func (x *Index) expand(out *Match, m *cmatch, p netip.Prefix) {
	src := &x.sources[m.src]
	out.Source = src
	out.Prefix = p
	out.Since = fromNanos(m.since)
	out.Ended = fromNanos(m.ended)
	if m.ended != 0 {
		out.LastSeen = out.Ended
		return
	}
	out.LastSeen = src.ConfirmedAt.UTC()
	if out.LastSeen.Before(out.Since) {
		out.LastSeen = out.Since
	}
}

func v4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addr4(a uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
}

func toNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	n := t.UnixNano()
	if n == 0 {
		return 1 // keep 0 for "zero time"; 1 ns after the epoch is close enough
	}
	return n
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
