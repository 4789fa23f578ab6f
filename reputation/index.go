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

	hosts4  []uint32 // sorted IPv4 host addresses
	bucket4 []uint32 // len 65537: hosts4[bucket4[k]:bucket4[k+1]] have top 16 bits k
	hostOff []uint32 // len(hosts4)+1: matches of host i are matches[hostOff[i]:hostOff[i+1]]
	hostPar []int32  // parent prefix entry of host i, or -1

	pfx    []netip.Prefix // ranges and IPv6 hosts, sorted by address then length
	pfxOff []uint32       // len(pfx)+1, as hostOff
	pfxPar []int32        // parent prefix entry, or -1
	table  bart.Table[int32]

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
}

// ref names one entry of an index: a value >= 0 is an IPv4 host (index
// into hosts4), a negative value r is the prefix entry ^r.
type ref int32

// Len returns the number of distinct listed prefixes (host addresses
// count as prefixes), current or historical.
func (x *Index) Len() int { return len(x.hosts4) + len(x.pfx) }

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
	if len(x.hosts4) == 0 {
		return 0, false
	}
	k := a >> 16
	lo, hi := int(x.bucket4[k]), int(x.bucket4[k+1])
	i, ok := slices.BinarySearch(x.hosts4[lo:hi], a)
	return lo + i, ok
}

// span returns the entry's own matches, its prefix and its parent.
func (x *Index) span(r ref) (ms []cmatch, p netip.Prefix, parent int32) {
	if r >= 0 {
		i := int(r)
		return x.matches[x.hostOff[i]:x.hostOff[i+1]], netip.PrefixFrom(addr4(x.hosts4[i]), 32), x.hostPar[i]
	}
	j := int(^r)
	return x.matches[x.pfxOff[j]:x.pfxOff[j+1]], x.pfx[j], x.pfxPar[j]
}

// prefix returns the entry's prefix.
func (x *Index) prefix(r ref) netip.Prefix {
	if r >= 0 {
		return netip.PrefixFrom(addr4(x.hosts4[r]), 32)
	}
	return x.pfx[^r]
}

// appendEntry appends the matches of entry r and of all its supernets,
// most specific first.
func (x *Index) appendEntry(dst []Match, r ref) []Match {
	for {
		ms, p, parent := x.span(r)
		for _, m := range ms {
			dst = append(dst, x.expand(m, p))
		}
		if parent < 0 {
			return dst
		}
		r = ref(^parent)
	}
}

// appendMatches appends every match containing addr to dst. It allocates
// nothing when dst has room.
func (x *Index) appendMatches(dst []Match, addr netip.Addr) []Match {
	r, ok := x.lookup(addr)
	if !ok {
		return dst
	}
	return x.appendEntry(dst, r)
}

// expand turns a compact match of prefix p into a Match.
func (x *Index) expand(m cmatch, p netip.Prefix) Match {
	src := &x.sources[m.src]
	out := Match{Source: src, Prefix: p, Since: fromNanos(m.since), Ended: fromNanos(m.ended)}
	if m.ended != 0 {
		out.LastSeen = out.Ended
	} else {
		out.LastSeen = src.ConfirmedAt.UTC()
		if out.LastSeen.Before(out.Since) {
			out.LastSeen = out.Since
		}
	}
	return out
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
