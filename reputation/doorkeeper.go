package reputation

import (
	"hash/maphash"
	"math/bits"
	"net/netip"
	"sync/atomic"
)

// doorkeeper remembers recently missed addresses in a fixed table of
// fingerprints, so that the answer cache admits an address only when it
// misses a second time. It is lossy by design: a slot holds the last
// address that hashed to it, so a forgotten address just waits for one
// more miss. Reads and writes are lock-free; memory is 8 bytes a slot.
type doorkeeper struct {
	seed  maphash.Seed
	mask  uint64
	slots []atomic.Uint64
}

// newDoorkeeper sizes the table to about twice the cache's entries, so an
// address asked twice within the span of the cache's reach is admitted.
func newDoorkeeper(entries int) *doorkeeper {
	n := uint64(1) << bits.Len64(uint64(2*entries-1))
	return &doorkeeper{seed: maphash.MakeSeed(), mask: n - 1, slots: make([]atomic.Uint64, n)}
}

// admit reports whether addr was seen before (and forgets it, since it is
// about to be cached); otherwise it remembers addr and reports false.
func (d *doorkeeper) admit(addr netip.Addr) bool {
	b := addr.As16()
	h := maphash.Bytes(d.seed, b[:]) | 1 // 0 marks an empty slot
	slot := &d.slots[h&d.mask]
	if slot.Load() == h {
		slot.Store(0)
		return true
	}
	slot.Store(h)
	return false
}
