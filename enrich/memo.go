package enrich

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
)

// memoSlots is the size of the lookup memo. The memo only has to carry an
// address from the first question of a query to the last (the reputation
// service asks ASN, Country and Metadata of one address within a few
// microseconds), so it needs a few slots per concurrent query, not one per
// address seen; 4096 slots are 32 KiB of pointers.
const memoSlots = 1 << 12

// resolved is every configured database's record for one address, found
// with one walk of each database's tree. It is immutable once published.
type resolved struct {
	addr netip.Addr
	snap *snapshot // the databases it was resolved from
	recs [numKinds]*record
}

// memo is a direct-mapped, lock-free table of recent lookups. A slot holds
// the last address hashed to it; a reader takes it only when address and
// snapshot match, so a reload (a new snapshot) invalidates every slot at
// once and a collision costs only a fresh lookup.
type memo struct {
	slots [memoSlots]atomic.Pointer[resolved]
}

func memoSlot(a netip.Addr) uint64 {
	b := a.As16()
	h := binary.LittleEndian.Uint64(b[:8]) ^ binary.LittleEndian.Uint64(b[8:])
	h *= 0x9e3779b97f4a7c15
	return h >> (64 - 12)
}

// resolve returns the records of every configured database for addr
// (unmapped and valid) from the snapshot s, from the memo when a query
// asked about addr a moment ago.
func (e *Enricher) resolve(s *snapshot, addr netip.Addr) *resolved {
	slot := &e.memo.slots[memoSlot(addr)]
	if r := slot.Load(); r != nil && r.snap == s && r.addr == addr {
		return r
	}
	r := &resolved{addr: addr, snap: s}
	var buf [16]byte
	ip := netIP(addr, &buf)
	for k := range r.recs {
		r.recs[k] = s.find(kind(k), addr, ip)
	}
	slot.Store(r)
	return r
}
