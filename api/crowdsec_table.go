package api

import (
	"cmp"
	"math"
	"net/netip"
	"slices"
	"time"
)

// pkey is a prefix in 16-byte form (IPv4 as IPv4-mapped IPv6, its length
// counted from 96), compact and ordered by address, then by length: a
// prefix sorts before the prefixes inside it.
type pkey struct {
	hi, lo uint64
	bits   uint8
}

func pkeyOf(p netip.Prefix) pkey {
	a := p.Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	return pkey{hi: pkeyGet64(a[:8]), lo: pkeyGet64(a[8:]), bits: uint8(bits)}
}

func (k pkey) prefix() netip.Prefix {
	var a [16]byte
	pkeyPut64(a[:8], k.hi)
	pkeyPut64(a[8:], k.lo)
	addr := netip.AddrFrom16(a)
	if addr.Is4In6() && k.bits >= 96 {
		return netip.PrefixFrom(addr.Unmap(), int(k.bits)-96)
	}
	return netip.PrefixFrom(addr, int(k.bits))
}

func comparePKey(a, b pkey) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	if c := cmp.Compare(a.lo, b.lo); c != 0 {
		return c
	}
	return cmp.Compare(a.bits, b.bits)
}

// mask keeps the first bits bits of k's address.
func (k pkey) mask(bits uint8) pkey {
	switch {
	case bits == 0:
		return pkey{}
	case bits < 64:
		return pkey{hi: k.hi &^ (math.MaxUint64 >> bits), bits: bits}
	case bits == 64:
		return pkey{hi: k.hi, bits: bits}
	case bits < 128:
		return pkey{hi: k.hi, lo: k.lo &^ (math.MaxUint64 >> (bits - 64)), bits: bits}
	}
	return pkey{hi: k.hi, lo: k.lo, bits: 128}
}

// last is the last address of k as a host key.
func (k pkey) last() pkey {
	switch {
	case k.bits == 0:
		return pkey{hi: math.MaxUint64, lo: math.MaxUint64, bits: 128}
	case k.bits < 64:
		return pkey{hi: k.hi | math.MaxUint64>>k.bits, lo: math.MaxUint64, bits: 128}
	case k.bits < 128:
		return pkey{hi: k.hi, lo: k.lo | math.MaxUint64>>(k.bits-64), bits: 128}
	}
	return pkey{hi: k.hi, lo: k.lo, bits: 128}
}

func pkeyGet64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

func pkeyPut64(b []byte, v uint64) {
	_ = b[7]
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// unixUntil is until in Unix seconds; the zero time (no expiry) is the
// largest value.
func unixUntil(t time.Time) uint32 {
	if t.IsZero() {
		return math.MaxUint32
	}
	s := t.Unix()
	switch {
	case s <= 0:
		return 0
	case s >= math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(s)
}

func unixUntilTime(u uint32) time.Time {
	if u == math.MaxUint32 {
		return time.Time{}
	}
	return time.Unix(int64(u), 0)
}

// sentEntry is one decision a bouncer holds, and until when it holds it.
type sentEntry struct {
	key   pkey
	until uint32
}

// sentSet is what a bouncer was sent: 24 bytes a decision, sorted by key,
// with the generation it was computed at.
type sentSet struct {
	gen      uint64
	filter   string // the query's filter parameters, which shape what was sent
	minUntil uint32
	entries  []sentEntry
}

func (s *sentSet) add(k pkey, until uint32) {
	if len(s.entries) == 0 || until < s.minUntil {
		s.minUntil = until
	}
	s.entries = append(s.entries, sentEntry{key: k, until: until})
}

// sort orders the entries and drops repeated prefixes.
func (s *sentSet) sort() {
	slices.SortFunc(s.entries, func(a, b sentEntry) int { return comparePKey(a.key, b.key) })
	s.entries = slices.CompactFunc(s.entries, func(a, b sentEntry) bool { return a.key == b.key })
}

func (s *sentSet) find(k pkey) (uint32, bool) {
	i, ok := slices.BinarySearchFunc(s.entries, k, func(e sentEntry, k pkey) int { return comparePKey(e.key, k) })
	if !ok {
		return 0, false
	}
	return s.entries[i].until, true
}

// unchanged reports whether nothing can have changed since s was sent: the
// index is the same and no decision has expired.
func (s *sentSet) unchanged(gen uint64, filter string, now time.Time) bool {
	return s.gen == gen && s.filter == filter && (len(s.entries) == 0 || now.Unix() < int64(s.minUntil))
}

// decisionTable answers which blocked prefixes contain or lie inside a
// prefix, for GET /v1/decisions. It is built from a block set when first
// needed, and again when the service's set changes (a new index, or the
// set's refresh as decay moves the lapse times).
type decisionTable struct {
	gen       uint64       // the block set's generation
	at        time.Time    // and moment: together they name the set
	entries   []tableEntry // sorted by key
	lengths   []uint8      // the distinct prefix lengths present
	scenarios []string
}

type tableEntry struct {
	key      pkey
	until    uint32
	scenario uint32 // index into scenarios
}

// tableHit is a decision found in the table.
type tableHit struct {
	prefix   netip.Prefix
	scenario string
	until    time.Time
}

// table returns the decision table of the service's current block set,
// building it if the set changed.
func (cs *CrowdSec) table(now time.Time) *decisionTable {
	set := cs.opts.Service.BlockSet(now)
	cs.lookupMu.Lock()
	defer cs.lookupMu.Unlock()
	if cs.lookup != nil && cs.lookup.gen == set.Generation() && cs.lookup.at.Equal(set.At()) {
		return cs.lookup
	}
	t := &decisionTable{gen: set.Generation(), at: set.At(), entries: make([]tableEntry, 0, set.Len())}
	names := map[string]uint32{}
	var seen [129]bool
	for d := range set.All() {
		if !d.Prefix.IsValid() {
			continue
		}
		si, ok := names[d.Source]
		if !ok {
			si = uint32(len(t.scenarios))
			names[d.Source] = si
			t.scenarios = append(t.scenarios, d.Source)
		}
		k := pkeyOf(d.Prefix.Masked())
		seen[k.bits] = true
		t.entries = append(t.entries, tableEntry{key: k, until: unixUntil(d.Until), scenario: si})
	}
	slices.SortFunc(t.entries, func(a, b tableEntry) int { return comparePKey(a.key, b.key) })
	for b, ok := range seen {
		if ok {
			t.lengths = append(t.lengths, uint8(b))
		}
	}
	cs.lookup = t
	return t
}

func (t *decisionTable) hit(e *tableEntry) tableHit {
	return tableHit{prefix: e.key.prefix(), scenario: t.scenarios[e.scenario], until: unixUntilTime(e.until)}
}

func (t *decisionTable) live(e *tableEntry, now time.Time) bool {
	return e.until == math.MaxUint32 || int64(e.until) > now.Unix()
}

// supernets returns the live decisions whose prefix contains p, most
// specific first.
func (t *decisionTable) supernets(p netip.Prefix, now time.Time) []tableHit {
	k := pkeyOf(p)
	var out []tableHit
	for i := len(t.lengths) - 1; i >= 0; i-- {
		b := t.lengths[i]
		if b > k.bits {
			continue
		}
		m := k.mask(b)
		j, ok := slices.BinarySearchFunc(t.entries, m, func(e tableEntry, k pkey) int { return comparePKey(e.key, k) })
		if ok && t.live(&t.entries[j], now) {
			out = append(out, t.hit(&t.entries[j]))
		}
	}
	return out
}

// subnets returns the live decisions whose prefix lies inside p, at most
// maxSubnets of them.
func (t *decisionTable) subnets(p netip.Prefix, now time.Time) []tableHit {
	const maxSubnets = 10000
	k := pkeyOf(p)
	end := k.last()
	j, _ := slices.BinarySearchFunc(t.entries, k, func(e tableEntry, k pkey) int { return comparePKey(e.key, k) })
	var out []tableHit
	for ; j < len(t.entries) && len(out) < maxSubnets; j++ {
		e := &t.entries[j]
		if comparePKey(e.key, end) > 0 {
			break
		}
		if e.key.bits >= k.bits && t.live(e, now) {
			out = append(out, t.hit(e))
		}
	}
	return out
}

var (
	_ Registrar = (*CrowdSec)(nil)
	_ Registrar = (*Blocklist)(nil)
)
