package misp

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
)

// Bounds on what a feed may list. A feed must never list the whole Internet
// or a large part of it: a 0.0.0.0/0 or 2000::/3 entry (a typo, a bogon list
// read the wrong way, a hostile feed) would turn every client into an
// indicator. A /8 is the largest IPv4 block any registry allocates, and a /16
// is far smaller than that share of the IPv6 unicast space, so shorter
// prefixes are counted as malformed and skipped.
const (
	// MinBitsIPv4 is the shortest IPv4 prefix a feed may list.
	MinBitsIPv4 = 8
	// MinBitsIPv6 is the shortest IPv6 prefix a feed may list.
	MinBitsIPv6 = 16
	// MaxOthers caps how many non-address indicators one parse keeps, so that
	// a huge domain or URL list cannot exhaust memory through Result.Others.
	MaxOthers = 100_000
	// MaxLineBytes is the longest line the list parsers read; a longer line
	// is counted as malformed and skipped.
	MaxLineBytes = 64 << 10
	// maxTokenBytes bounds one freetext token; longer tokens are dropped.
	maxTokenBytes = 4096
)

// Indicator is one indicator of a type other than an address or range, such
// as a domain, URL or file hash, with MISP's attribute type name.
type Indicator struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Result is what one parse of a feed yields.
type Result struct {
	// Prefixes are the addresses and ranges, masked, deduplicated and sorted
	// (IPv4 before IPv6); a single address is a /32 or /128. Only addresses
	// and ranges are ever listed here.
	Prefixes []netip.Prefix
	// Others are the other indicators (domains, URLs, hashes ...), in the order
	// first seen, deduplicated and capped at MaxOthers.
	Others []Indicator
	// OthersDropped counts the other indicators dropped beyond MaxOthers.
	OthersDropped int
	// Lines counts the data lines read: not blank, not comments. For the misp
	// format it counts the attributes read.
	Lines int
	// Malformed counts entries that looked like an address or range but were
	// invalid or out of bounds (see MinBitsIPv4), and overlong lines.
	Malformed int
}

// collector gathers the indicators of one parse.
type collector struct {
	prefixes []netip.Prefix
	others   []Indicator
	seen     map[Indicator]struct{}
	dropped  int
	lines    int
	bad      int
}

func (c *collector) addOther(typ, value string) {
	if c.seen == nil {
		c.seen = make(map[Indicator]struct{})
	}
	in := Indicator{Type: typ, Value: value}
	if _, ok := c.seen[in]; ok {
		return
	}
	if len(c.others) >= MaxOthers {
		c.dropped++
		return
	}
	// The value may point into a reused read buffer: keep a copy.
	in.Value = strings.Clone(value)
	c.seen[in] = struct{}{}
	c.others = append(c.others, in)
}

func (c *collector) result() *Result {
	p := c.prefixes
	slices.SortFunc(p, comparePrefix)
	p = slices.Compact(p)
	return &Result{
		Prefixes:      slices.Clip(p),
		Others:        c.others,
		OthersDropped: c.dropped,
		Lines:         c.lines,
		Malformed:     c.bad,
	}
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

// addrKind says what an address parse found.
type addrKind uint8

const (
	notAddr  addrKind = iota // not an address at all (maybe a domain or URL)
	addrOK                   // a valid address or range
	addrBad                  // looked like an address or range but is invalid
	addrSkip                 // a valid but meaningless address (0.0.0.0, ::)
)

// ParsePrefix parses the value of a MISP attribute of an address-bearing type
// (ip-src, ip-dst: an address or CIDR range; ip-src|port, ip-dst|port:
// "1.2.3.4|443"; domain|ip: "example.com|1.2.3.4") into a masked prefix. It
// reports false for other types, invalid values, ranges shorter than
// MinBitsIPv4 / MinBitsIPv6 and the unspecified addresses. IPv4-mapped IPv6
// addresses are returned as IPv4.
func ParsePrefix(typ, value string) (netip.Prefix, bool) {
	value = strings.TrimSpace(value)
	var p netip.Prefix
	var k addrKind
	switch typ {
	case "ip-src", "ip-dst":
		p, k = parseHostOrCIDR(value)
	case "ip-src|port", "ip-dst|port":
		host, port, ok := strings.Cut(value, "|")
		if !ok || !validPort(port) {
			return netip.Prefix{}, false
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		p, k = parseHostOrCIDR(host)
	case "domain|ip":
		domain, ip, ok := strings.Cut(value, "|")
		if !ok || !isDomain(domain) {
			return netip.Prefix{}, false
		}
		p, k = parseHostOrCIDR(ip)
	default:
		return netip.Prefix{}, false
	}
	return p, k == addrOK
}

// parseAddrToken recognises the address forms of a freetext token: an
// address, a CIDR range, "ip:port", "[ipv6]:port", "ip|port" and
// "domain|ip". s may alias a read buffer; it is not retained.
func parseAddrToken(s string) (netip.Prefix, addrKind) {
	if left, right, ok := strings.Cut(s, "|"); ok {
		if validPort(right) {
			p, k := parseHostOrCIDR(strings.TrimSuffix(strings.TrimPrefix(left, "["), "]"))
			if k == notAddr {
				return netip.Prefix{}, notAddr
			}
			return p, k
		}
		if isDomain(left) {
			return parseHostOrCIDR(right)
		}
		return netip.Prefix{}, notAddr
	}
	if len(s) > 0 && s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Prefix{}, notAddr
		}
		rest := s[end+1:]
		if rest != "" && (rest[0] != ':' || !validPort(rest[1:])) {
			return netip.Prefix{}, notAddr
		}
		return parseHostOrCIDR(s[1:end])
	}
	// a.b.c.d:port: exactly one colon and an IPv4-looking host.
	if i := strings.IndexByte(s, ':'); i > 0 && strings.IndexByte(s[i+1:], ':') < 0 {
		host, port := s[:i], s[i+1:]
		if !looksIPv4(host) {
			return netip.Prefix{}, notAddr
		}
		if !validPort(port) {
			return netip.Prefix{}, addrBad
		}
		return parseHostOrCIDR(host)
	}
	return parseHostOrCIDR(s)
}

// parseHostOrCIDR parses "addr" or "addr/bits" and applies the bounds.
func parseHostOrCIDR(s string) (netip.Prefix, addrKind) {
	host, bitsStr, hasBits := strings.Cut(s, "/")
	if hasBits && !isDigits(bitsStr) {
		return netip.Prefix{}, notAddr // "192.0.2.1/admin": a URL
	}
	addr, k := parseAddr(host)
	if k != addrOK {
		return netip.Prefix{}, k
	}
	bits := addr.BitLen()
	if hasBits {
		b, ok := atoiSmall(bitsStr)
		if !ok || b > addr.BitLen() {
			return netip.Prefix{}, addrBad
		}
		bits = b
	}
	if addr.Is4In6() && bits >= 96 {
		addr, bits = addr.Unmap(), bits-96
	}
	if !hasBits && addr.IsUnspecified() {
		return netip.Prefix{}, addrSkip
	}
	if (addr.Is4() && bits < MinBitsIPv4) || (addr.Is6() && bits < MinBitsIPv6) {
		return netip.Prefix{}, addrBad
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return netip.Prefix{}, addrBad
	}
	return p, addrOK
}

// parseAddr parses an address without a zone. Strings that do not look like
// an address at all are notAddr, so that "10" or "12:30:00" are not counted
// as malformed.
func parseAddr(s string) (netip.Addr, addrKind) {
	if looksIPv4(s) {
		a, ok := parseIPv4(s)
		if !ok {
			return netip.Addr{}, addrBad
		}
		return a, addrOK
	}
	if !looksIPv6(s) {
		return netip.Addr{}, notAddr
	}
	if strings.IndexByte(s, '%') >= 0 {
		return netip.Addr{}, addrBad // zones name local interfaces; never in a feed
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, addrBad
	}
	return a, addrOK
}

// looksIPv4 reports whether s is made of digits and exactly three dots.
func looksIPv4(s string) bool {
	if len(s) < 7 || len(s) > 19 {
		return false
	}
	dots := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			dots++
		case c < '0' || c > '9':
			return false
		}
	}
	return dots == 3
}

// parseIPv4 parses dotted-quad IPv4 without allocating; like netip it
// rejects leading zeros, which some parsers read as octal.
func parseIPv4(s string) (netip.Addr, bool) {
	var out [4]byte
	part, val, digits := 0, 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || part > 3 {
				return netip.Addr{}, false
			}
			out[part] = byte(val)
			part, val, digits = part+1, 0, 0
			continue
		}
		if digits > 0 && val == 0 {
			return netip.Addr{}, false // leading zero
		}
		val = val*10 + int(s[i]-'0')
		digits++
		if val > 255 {
			return netip.Addr{}, false
		}
	}
	if part != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(out), true
}

// looksIPv6 reports whether s is made of hex digits, colons and dots (and a
// zone) with the colons of an IPv6 address: a "::" or at least seven.
func looksIPv6(s string) bool {
	if len(s) < 2 || len(s) > 64 {
		return false
	}
	colons := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ':':
			colons++
		case c == '%':
			return colons >= 2
		case c == '.', '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
		default:
			return false
		}
	}
	return colons >= 7 || (colons >= 2 && strings.Contains(s, "::"))
}

// validPort reports whether s is a port number, 0 to 65535.
func validPort(s string) bool {
	if len(s) == 0 || len(s) > 5 {
		return false
	}
	n, ok := atoiSmall(s)
	return ok && n <= 65535
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// atoiSmall parses up to five decimal digits.
func atoiSmall(s string) (int, bool) {
	if len(s) == 0 || len(s) > 5 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
