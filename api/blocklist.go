package api

import (
	"bufio"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-ip/rampart/reputation"
)

// BlocklistOptions configure the blocklist export.
type BlocklistOptions struct {
	// Service supplies the blocked prefixes.
	Service DecisionSource
	// Role resolves an X-Api-Key to its role; bouncer and admin keys may
	// export. Nil leaves the export open to anyone.
	Role func(key string) (role string, ok bool)
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Logger receives the export's logs; nil discards them.
	Logger *slog.Logger
}

// Blocklist serves GET /api/v1/blocklist: the addresses and ranges to
// block, merged into the fewest prefixes, in a firewall's format.
type Blocklist struct {
	opts BlocklistOptions
	log  *slog.Logger

	mu     sync.Mutex
	merged []*mergedList // of the latest block set, one per min_risk asked
}

// maxMergedLists bounds the merged lists kept per block set: clients ask
// for a few min_risk values; others are merged per request.
const maxMergedLists = 4

// mergedList is the merged export of one block set at one min_risk,
// computed once however many requests ask for it at the same time.
type mergedList struct {
	gen     uint64
	at      time.Time
	minRisk float64
	once    sync.Once
	keys    []pkey   // merged, as MergePrefixes orders them
	digest  [32]byte // of keys, for ETags
}

// NewBlocklist returns the blocklist export.
func NewBlocklist(opts BlocklistOptions) *Blocklist {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Blocklist{opts: opts, log: log.With("component", "blocklist")}
}

// Register adds the blocklist route to e.
func (b *Blocklist) Register(e *echo.Echo) {
	e.GET("/api/v1/blocklist", b.serve)
}

// blocklistFormats maps a format name to its content type.
var blocklistFormats = map[string]string{
	"plain":    "text/plain; charset=utf-8",
	"csv":      "text/csv; charset=utf-8",
	"json":     "application/json",
	"nftables": "text/plain; charset=utf-8",
	"ipset":    "text/plain; charset=utf-8",
}

// Names used in the nftables and ipset outputs.
const (
	nftTable = "inet rampart"
	nftSet4  = "blocklist_v4"
	nftSet6  = "blocklist_v6"
	ipsetV4  = "rampart_v4"
	ipsetV6  = "rampart_v6"
)

func (b *Blocklist) serve(c echo.Context) error {
	if b.opts.Role != nil {
		role, ok := b.opts.Role(c.Request().Header.Get("X-Api-Key"))
		if !ok || (role != "bouncer" && role != "admin") {
			return echo.NewHTTPError(http.StatusForbidden, "access forbidden")
		}
	}
	format := c.QueryParam("format")
	if format == "" {
		format = "plain"
	}
	ctype, ok := blocklistFormats[format]
	if !ok {
		return echo.NewHTTPError(http.StatusBadRequest, "format: must be one of plain, csv, json, nftables, ipset")
	}
	// min_risk selects on risk = 100 - score among the prefixes whose
	// action is block; without it, every one of them is listed.
	minRisk := -1.0
	if s := c.QueryParam("min_risk"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 || v > 100 {
			return echo.NewHTTPError(http.StatusBadRequest, "min_risk: must be a number from 0 to 100")
		}
		minRisk = v
	}
	m := b.list(b.opts.Service.BlockSet(b.opts.Now()), minRisk)
	etag := blocklistETag(format, m.digest)
	h := c.Response().Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "no-cache")
	if etagMatches(c.Request().Header.Get("If-None-Match"), etag) {
		return c.NoContent(http.StatusNotModified)
	}
	h.Set(echo.HeaderContentType, ctype)
	c.Response().WriteHeader(http.StatusOK)
	w := bufio.NewWriterSize(c.Response(), 64<<10)
	err := writeBlocklist(w, format, m.keys)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		// The status line is sent: the client sees a cut body.
		b.log.Debug("blocklist export not completed", "err", err)
	}
	return nil
}

// list returns the merged export of set at minRisk, from the cache when
// another request made it already. Lists of an older set are dropped.
func (b *Blocklist) list(set *reputation.BlockSet, minRisk float64) *mergedList {
	gen, at := set.Generation(), set.At()
	b.mu.Lock()
	var m *mergedList
	kept := b.merged[:0]
	for _, l := range b.merged {
		if l.gen != gen || !l.at.Equal(at) {
			continue
		}
		kept = append(kept, l)
		if l.minRisk == minRisk {
			m = l
		}
	}
	clear(b.merged[len(kept):])
	b.merged = kept
	if m == nil {
		m = &mergedList{gen: gen, at: at, minRisk: minRisk}
		if len(b.merged) >= maxMergedLists {
			copy(b.merged, b.merged[1:])
			b.merged = b.merged[:len(b.merged)-1]
		}
		b.merged = append(b.merged, m)
	}
	b.mu.Unlock()
	m.once.Do(func() { m.merge(set) })
	return m
}

// merge fills in the merged keys of the set's decisions at least
// m.minRisk risky (risk = 100 - score), and their digest.
func (m *mergedList) merge(set *reputation.BlockSet) {
	keys := make([]pkey, 0, set.Len())
	for d := range set.All() {
		if m.minRisk >= 0 && 100-d.Score < m.minRisk {
			continue
		}
		if k, ok := blockKey(d.Prefix); ok {
			keys = append(keys, k)
		}
	}
	m.keys = slices.Clip(mergeKeys(keys))
	h := sha256.New()
	var buf [17]byte
	for _, k := range m.keys {
		pkeyPut64(buf[:8], k.hi)
		pkeyPut64(buf[8:16], k.lo)
		buf[16] = k.bits
		h.Write(buf[:])
	}
	h.Sum(m.digest[:0])
}

// blocklistETag names the merged list in format: it changes exactly when
// the list (or the format) does, and not when the block set is merely
// recomputed.
func blocklistETag(format string, digest [32]byte) string {
	h := sha256.New()
	h.Write([]byte(format))
	h.Write([]byte{0})
	h.Write(digest[:])
	return `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
}

// etagMatches implements If-None-Match's weak comparison.
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// writeBlocklist writes merged (IPv4 first, then IPv6, as mergeKeys
// orders them) in format.
func writeBlocklist(w *bufio.Writer, format string, merged []pkey) error {
	split := slices.IndexFunc(merged, func(k pkey) bool { return pkeyFamily(k) != 0 })
	if split < 0 {
		split = len(merged)
	}
	v4, v6 := merged[:split], merged[split:]
	buf := make([]byte, 0, 256)
	// each writes one prefix per call through buf.
	each := func(list []pkey, line func(dst []byte, i int, p netip.Prefix) []byte) error {
		for i, k := range list {
			buf = line(buf[:0], i, k.prefix())
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		return nil
	}
	switch format {
	case "plain":
		return each(merged, func(dst []byte, _ int, p netip.Prefix) []byte {
			return append(appendBlockPrefix(dst, p), '\n')
		})
	case "csv":
		w.WriteString("network,family\n")
		return each(merged, func(dst []byte, _ int, p netip.Prefix) []byte {
			dst = appendBlockPrefix(dst, p)
			if p.Addr().Is4() {
				return append(dst, ",ipv4\n"...)
			}
			return append(dst, ",ipv6\n"...)
		})
	case "json":
		w.WriteString(`{"count":` + strconv.Itoa(len(merged)) + `,"prefixes":[`)
		err := each(merged, func(dst []byte, i int, p netip.Prefix) []byte {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '"')
			return append(appendBlockPrefix(dst, p), '"')
		})
		if err != nil {
			return err
		}
		_, err = w.WriteString("]}\n")
		return err
	case "nftables":
		// One transaction for nft -f: create the table and sets if they
		// are missing, empty them, then add the elements. The prefixes do
		// not overlap, as interval sets require.
		w.WriteString("#!/usr/sbin/nft -f\n# Rampart blocklist: " + strconv.Itoa(len(merged)) + " prefixes.\n")
		w.WriteString("add table " + nftTable + "\n")
		w.WriteString("add set " + nftTable + " " + nftSet4 + " { type ipv4_addr; flags interval; }\n")
		w.WriteString("add set " + nftTable + " " + nftSet6 + " { type ipv6_addr; flags interval; }\n")
		w.WriteString("flush set " + nftTable + " " + nftSet4 + "\n")
		w.WriteString("flush set " + nftTable + " " + nftSet6 + "\n")
		for _, s := range []struct {
			name string
			list []pkey
		}{{nftSet4, v4}, {nftSet6, v6}} {
			if len(s.list) == 0 {
				continue
			}
			w.WriteString("add element " + nftTable + " " + s.name + " {\n")
			err := each(s.list, func(dst []byte, i int, p netip.Prefix) []byte {
				dst = append(dst, '\t')
				dst = appendBlockPrefix(dst, p)
				if i < len(s.list)-1 {
					dst = append(dst, ',')
				}
				return append(dst, '\n')
			})
			if err != nil {
				return err
			}
			w.WriteString("}\n")
		}
		return nil
	case "ipset":
		// For ipset restore; -exist makes create idempotent. hash:net
		// takes no /0, so a /0 is written as its two halves.
		for _, s := range []struct {
			name, family string
			list         []pkey
		}{{ipsetV4, "inet", v4}, {ipsetV6, "inet6", v6}} {
			maxelem := max(65536, 2*len(s.list))
			w.WriteString("create " + s.name + " hash:net family " + s.family + " hashsize 1024 maxelem " + strconv.Itoa(maxelem) + " -exist\n")
			w.WriteString("flush " + s.name + "\n")
			err := each(s.list, func(dst []byte, _ int, p netip.Prefix) []byte {
				for _, q := range splitZeroPrefix(p) {
					dst = append(dst, "add "+s.name+" "...)
					dst = append(appendBlockPrefix(dst, q), '\n')
				}
				return dst
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
	return nil
}

// appendBlockPrefix writes a host as its bare address and a range in CIDR form.
func appendBlockPrefix(dst []byte, p netip.Prefix) []byte {
	if p.IsSingleIP() {
		return p.Addr().AppendTo(dst)
	}
	return p.AppendTo(dst)
}

func splitZeroPrefix(p netip.Prefix) []netip.Prefix {
	if p.Bits() != 0 {
		return []netip.Prefix{p}
	}
	lo, hi := pkeyOf(p), pkeyOf(p)
	lo.bits++
	hi.bits++
	hi.hi |= 1 << 63
	if p.Addr().Is4() {
		hi.hi, hi.lo = lo.hi, lo.lo|1<<31
	}
	return []netip.Prefix{lo.prefix(), hi.prefix()}
}

// MergePrefixes returns the fewest prefixes that cover exactly the
// addresses of ps: masked, with contained prefixes dropped and adjacent
// halves joined, IPv4 (sorted) before IPv6 (sorted). IPv4-mapped IPv6
// prefixes count as IPv4; invalid prefixes are skipped. ps is reordered.
func MergePrefixes(ps []netip.Prefix) []netip.Prefix {
	keys := make([]pkey, 0, len(ps))
	for _, p := range ps {
		if k, ok := blockKey(p); ok {
			keys = append(keys, k)
		}
	}
	keys = mergeKeys(keys)
	out := make([]netip.Prefix, len(keys))
	for i, k := range keys {
		out[i] = k.prefix()
	}
	return out
}

// blockKey is the key of p as the export merges it: masked, IPv4-mapped
// IPv6 prefixes as IPv4.
func blockKey(p netip.Prefix) (pkey, bool) {
	if !p.IsValid() {
		return pkey{}, false
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return pkeyOf(p.Masked()), true
}

// mergeKeys merges keys as MergePrefixes does, in place: the merged list
// never outgrows the part of keys already read, so it is built over it.
func mergeKeys(keys []pkey) []pkey {
	// IPv4 keys are IPv4-mapped, and would sort among IPv6; order by family first.
	slices.SortFunc(keys, func(a, b pkey) int {
		if c := cmp.Compare(pkeyFamily(a), pkeyFamily(b)); c != 0 {
			return c
		}
		return comparePKey(a, b)
	})
	stack := keys[:0]
	for _, k := range keys {
		if n := len(stack); n > 0 && pkeySameFamily(stack[n-1], k) && pkeyContains(stack[n-1], k) {
			continue
		}
		stack = append(stack, k)
		// Join the top two while they are the two halves of one prefix.
		for n := len(stack); n >= 2; n = len(stack) {
			a, b := stack[n-2], stack[n-1]
			if a.bits != b.bits || !pkeySameFamily(a, b) || a.bits == pkeyMinBits(a) {
				break
			}
			parent := a.mask(a.bits - 1)
			if parent.hi != a.hi || parent.lo != a.lo || b.mask(a.bits-1) != parent {
				break
			}
			stack = append(stack[:n-2], parent)
		}
	}
	return stack
}

// pkeyFamily is 0 for IPv4 keys (in ::ffff:0:0/96 with a length of at
// least 96) and 1 for IPv6.
func pkeyFamily(k pkey) int {
	if k.hi == 0 && k.lo>>32 == 0xffff && k.bits >= 96 {
		return 0
	}
	return 1
}

func pkeySameFamily(a, b pkey) bool { return pkeyFamily(a) == pkeyFamily(b) }

// pkeyMinBits is the shortest length of k's family (an IPv4 /0 is 96).
func pkeyMinBits(k pkey) uint8 {
	if pkeyFamily(k) == 0 {
		return 96
	}
	return 0
}

// pkeyContains reports whether prefix a contains prefix b.
func pkeyContains(a, b pkey) bool {
	return a.bits <= b.bits && b.mask(a.bits) == a
}
