package enrich

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/oschwald/maxminddb-golang"
)

// flat4 is a database's IPv4 space flattened into sorted intervals, each
// with its record: the per-query IPv4 lookup. Walking a MaxMind tree costs
// one dependent memory read per prefix bit, most of them cache misses on a
// whole-Internet database, and then a lookup of the decoded record; here a
// lookup is one read of the /16's bounds and a binary search over the few
// intervals starting in it. Built once per loaded file; immutable.
type flat4 struct {
	starts []uint32  // interval starts, sorted; starts[0] == 0
	recs   []uint32  // per interval: index into table, 0 for no record
	table  []*record // table[0] is nil
	// first[k] is the index of the interval holding address k<<16.
	first [1<<16 + 1]uint32
}

// maxFlatIntervals bounds the intervals of one database (8 bytes each). A
// whole-Internet ASN or country database has well under a million IPv4
// networks; a larger (City) database keeps the tree lookup instead.
const maxFlatIntervals = 2_000_000

// buildFlat4 walks every IPv4 network of d. It returns nil when the
// database is too large to flatten or the walk fails; lookups then use
// the tree.
func buildFlat4(d *database) (*flat4, error) {
	f := &flat4{table: []*record{nil}}
	index := map[uintptr]uint32{}
	all4 := &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	nets := d.reader.NetworksWithin(all4, maxminddb.SkipAliasedNetworks)
	var skip struct{}
	next := uint64(0) // first address not yet covered
	add := func(start uint32, rec uint32) {
		if n := len(f.recs); n > 0 && f.recs[n-1] == rec {
			return // adjacent networks with one record: one interval
		}
		f.starts = append(f.starts, start)
		f.recs = append(f.recs, rec)
	}
	for nets.Next() {
		n, err := nets.Network(&skip)
		if err != nil {
			return nil, fmt.Errorf("walk ipv4 networks: %w", err)
		}
		ip4 := n.IP.To4()
		ones, bits := n.Mask.Size()
		if ip4 == nil || bits == 0 {
			continue
		}
		if bits == 128 {
			ones -= 96
		}
		if ones < 0 || ones > 32 {
			continue
		}
		base := uint64(ip4[0])<<24 | uint64(ip4[1])<<16 | uint64(ip4[2])<<8 | uint64(ip4[3])
		if base < next {
			continue // not expected from a tree walk; keep the intervals sorted
		}
		off, err := d.reader.LookupOffset(ip4)
		if err != nil {
			return nil, fmt.Errorf("walk ipv4 networks: %w", err)
		}
		if base > next {
			add(uint32(next), 0)
		}
		idx, ok := index[off]
		if !ok {
			rec, err := d.decode(off)
			if err != nil {
				return nil, fmt.Errorf("walk ipv4 networks: %w", err)
			}
			idx = uint32(len(f.table))
			f.table = append(f.table, rec)
			index[off] = idx
		}
		add(uint32(base), idx)
		next = base + 1<<(32-ones)
		if len(f.starts) > maxFlatIntervals {
			return nil, nil
		}
	}
	if err := nets.Err(); err != nil {
		return nil, fmt.Errorf("walk ipv4 networks: %w", err)
	}
	if next < 1<<32 {
		add(uint32(next), 0)
	}
	if len(f.starts) == 0 || f.starts[0] != 0 {
		f.starts = slices.Insert(f.starts, 0, 0)
		f.recs = slices.Insert(f.recs, 0, 0)
	}
	f.starts = slices.Clip(f.starts)
	f.recs = slices.Clip(f.recs)
	j := 0
	for k := range 1 << 16 {
		a := uint32(k) << 16
		for j+1 < len(f.starts) && f.starts[j+1] <= a {
			j++
		}
		f.first[k] = uint32(j)
	}
	f.first[1<<16] = uint32(len(f.starts) - 1)
	return f, nil
}

// lookup returns the record for the IPv4 address a, or nil.
func (f *flat4) lookup(a uint32) *record {
	k := a >> 16
	lo, hi := int(f.first[k]), int(f.first[k+1])+1
	// The last interval in starts[lo:hi] that starts at or before a.
	i, found := slices.BinarySearch(f.starts[lo:hi], a)
	if !found {
		i--
	}
	return f.table[f.recs[lo+i]]
}

// v4 returns an IPv4 address as a number.
func v4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
