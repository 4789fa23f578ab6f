package reputation

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Default source weights (docs/scoring.md, "Source weights"). A weight is
// the risk, 0 to 1, that a fresh listing by the source carries; the
// threshold for block is a weight of 0.70 at the default thresholds.
const (
	weightDefault    = 0.80 // MISP's default base score for NIDS attributes
	weightCurated    = 0.90 // hand-curated lists: Spamhaus DROP, FireHOL level1, DShield
	weightTracker    = 0.85 // C2 and botnet trackers: Feodo, SSLBL, ThreatFox
	weightScanner    = 0.50 // scanners are noisy and often benign research
	weightAnonymizer = 0.45 // Tor exits, proxies, VPNs: anonymizers, not attackers
	weightIPsum      = 0.55 // IPsum without a level: most entries are on one list
	weightMaxSource  = 0.99 // no single default-weighted source is certain
	maxRisk          = 0.999
)

// ipsumLevels are the weights of IPsum's level-N lists (addresses on at
// least N of its ~30 source lists); MISP's own feed names call level 1
// "lot of false positives" and levels 6 and up "no false positives".
var ipsumLevels = [...]float64{0, 0.55, 0.65, 0.75, 0.80, 0.85, 0.90, 0.92, 0.95}

var ipsumBasis = [...]string{"IPsum", "IPsum level 1", "IPsum level 2", "IPsum level 3",
	"IPsum level 4", "IPsum level 5", "IPsum level 6", "IPsum level 7", "IPsum level 8+"}

// MISP event weights by threat level (1 high, 2 medium, 3 low, 4 undefined).
var threatLevels = [...]float64{0.5, 0.9, 0.75, 0.6, 0.5}

var threatBasis = [...]string{"MISP threat level unknown", "MISP threat level high",
	"MISP threat level medium", "MISP threat level low", "MISP threat level undefined"}

// tagFactors adjust a default weight by the MISP taxonomy tags a source
// carries (misp, false-positive and admiralty-scale taxonomies). TLP tags
// are about sharing, not confidence, and do not count.
var tagFactors = [...]struct {
	tag    string
	factor float64
}{
	{`misp:confidence-level="completely-confident"`, 1.10},
	{`misp:confidence-level="usually-confident"`, 1.00},
	{`misp:confidence-level="fairly-confident"`, 0.85},
	{`misp:confidence-level="rarely-confident"`, 0.60},
	{`misp:confidence-level="unconfident"`, 0.40},
	{`misp:confidence-level="confidence-cannot-be-evaluated"`, 0.80},
	{`false-positive:risk="low"`, 1.00},
	{`false-positive:risk="medium"`, 0.75},
	{`false-positive:risk="high"`, 0.50},
	{`false-positive:risk="cannot-be-judged"`, 0.80},
	{`false-positive`, 0.50},
	{`admiralty-scale:source-reliability="a"`, 1.10},
	{`admiralty-scale:source-reliability="b"`, 1.00},
	{`admiralty-scale:source-reliability="c"`, 0.90},
	{`admiralty-scale:source-reliability="d"`, 0.70},
	{`admiralty-scale:source-reliability="e"`, 0.50},
	{`admiralty-scale:source-reliability="f"`, 0.80},
}

// sourceClass is what the words of a feed's name, provider, category and
// tags say it lists.
type sourceClass uint8

const (
	classDefault sourceClass = iota
	classTracker
	classCurated
	classIPsum
	classScanner
	classAnonymizer
)

// weightOf returns a source's weight, a short word on where it comes from,
// and the factor its tags applied. A configured weight is the operator's
// word and is used as is; otherwise the default comes from the source's
// kind, words and tags.
func weightOf(src *SourceInfo) (w float64, basis string, tags float64) {
	if src.Weight > 0 {
		return min(src.Weight, 1), "configured", 1
	}
	tags = tagFactor(src.Tags)
	if src.Kind == "misp-event" {
		tl := src.ThreatLevel
		if tl < 0 || tl >= len(threatLevels) {
			tl = 0
		}
		w, basis = threatLevels[tl], threatBasis[tl]
	} else {
		w, basis = classWeight(src)
	}
	return min(w*tags, weightMaxSource), basis, tags
}

// tagFactor multiplies the factors of the known tags in tags.
func tagFactor(tags []string) float64 {
	f := 1.0
	for _, t := range tags {
		t = strings.TrimSpace(t)
		for _, tf := range tagFactors {
			if strings.EqualFold(t, tf.tag) {
				f *= tf.factor
				break
			}
		}
	}
	return f
}

// classWeight classifies a feed by the words of its name, provider,
// category and tags. An anonymizer or scanner word wins over a provider's
// reputation: FireHOL's tor_exits is an anonymizer list even though
// FireHOL also curates level1.
func classWeight(src *SourceInfo) (float64, string) {
	var c classifier
	c.scan(src.Name)
	c.scan(src.Provider)
	c.scan(src.Category)
	for _, t := range src.Tags {
		c.scan(t)
	}
	switch {
	case c.anonymizer:
		return weightAnonymizer, "anonymizer list"
	case c.scanner:
		return weightScanner, "scanner list"
	case c.ipsum:
		lv := min(c.level, len(ipsumLevels)-1)
		if lv <= 0 {
			return weightIPsum, ipsumBasis[0]
		}
		return ipsumLevels[lv], ipsumBasis[lv]
	case c.curated || (c.firehol && c.level == 1):
		return weightCurated, "curated list"
	case c.tracker:
		return weightTracker, "C2 or botnet tracker"
	}
	return weightDefault, "default"
}

// classifier collects the words that classify a source.
type classifier struct {
	anonymizer, scanner, ipsum, curated, tracker, firehol bool
	level                                                 int
	afterLevel                                            bool
}

// scan feeds the words of s (runs of ASCII letters and digits) to the
// classifier without allocating.
func (c *classifier) scan(s string) {
	start := -1
	for i := 0; i <= len(s); i++ {
		if i < len(s) && isWordByte(s[i]) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			c.word(s[start:i])
			start = -1
		}
	}
}

func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// word classifies one word. Words are compared case-insensitively; a
// number right after "level", or "levelN", sets the list level.
func (c *classifier) word(w string) {
	if c.afterLevel {
		c.afterLevel = false
		if n, ok := smallNumber(w); ok {
			c.level = n
			return
		}
	}
	if len(w) > 16 {
		return // longer than any word that classifies
	}
	var buf [16]byte
	for i := 0; i < len(w); i++ {
		ch := w[i]
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		buf[i] = ch
	}
	lw := buf[:len(w)]
	if len(lw) > 5 && string(lw[:5]) == "level" {
		if n, ok := smallNumber(w[5:]); ok {
			c.level = n
			return
		}
	}
	switch string(lw) {
	case "level", "lvl":
		c.afterLevel = true
	case "tor", "anonymizer", "anonymizers", "anonymous", "anonymity", "proxy", "proxies", "vpn", "vpns", "relay", "relays":
		c.anonymizer = true
	case "scanner", "scanners", "scanning", "scan", "scans", "crawler", "crawlers":
		c.scanner = true
	case "ipsum":
		c.ipsum = true
	case "spamhaus", "drop", "edrop", "dshield":
		c.curated = true
	case "firehol":
		c.firehol = true
	case "feodo", "feodotracker", "sslbl", "threatfox", "c2", "cnc", "botnet", "botnets", "ransomware":
		c.tracker = true
	}
}

// smallNumber parses a decimal number of one or two digits.
func smallNumber(s string) (int, bool) {
	if len(s) == 0 || len(s) > 2 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// Context signals for addresses no source lists (docs/scoring.md,
// "Context"). Each is a strength in [0, 1); the signals combine like
// sources, and their combined strength counts at Scoring.ContextCap of
// itself. The count and density signals are power laws, so that
// −log(1 − s) grows with the logarithm of the count or density: a
// listed-to-announced likelihood ratio is roughly proportional to the
// density (a power of the count), and summing logarithms ranks addresses
// like a naive Bayes combination. Linear or saturating forms flattened the
// ranking among the many addresses with weak signals (leave-one-feed-out,
// docs/scoring.md).
const (
	nearExp     = 0.70  // n listed neighbours in the /24 (IPv6 /64): 1 − (1 + n)^−nearExp
	farExp      = 0.05  // n listed neighbours in the /16 (IPv6 /48): 1 − (1 + n)^−farExp
	proxMax     = 0.30  // nearest listed host d addresses away: proxMax / (1 + d/proxScale)
	proxScale   = 16.0  //
	asnExp      = 0.30  // ASN density ρ: 1 − (asnFloor/ρ)^asnExp above asnFloor
	asnFloor    = 2e-5  //
	ccExp       = 0.10  // country density ρ: 1 − (ccFloor/ρ)^ccExp above ccFloor
	ccFloor     = 1e-5  //
	maxStrength = 0.999 // bound of a power-law strength, so that huge IPv6 counts stay below 1
	unannounced = 0.95  // not inside announced address space
	netMax      = 0.05  // routed-prefix density ρ: netMax × ρ / (ρ + netHalf)
	netHalf     = 0.005 //
	ccMax       = 0.05  // country density ρ: ccMax × ρ / (ρ + ccHalf)
	ccHalf      = 2e-5  //
	torRisk     = 0.70  // Tor exit (enrichment flag)
	proxyRisk   = 0.50  // public proxy
	vpnRisk     = 0.30  // VPN or other anonymizer
	hostingRisk = 0.20  // hosting or data-centre network
)

// maxSignals bounds the context signals of one address.
const maxSignals = 10

// signal is one context signal about an unlisted address.
type signal struct {
	factor string
	risk   float64
	kind   signalKind
	n      int
	f      float64
}

type signalKind uint8

const (
	sigNear signalKind = iota
	sigFar
	sigProximity
	sigASN
	sigUnannounced
	sigNetwork
	sigCountry
	sigAnonymizer
	sigHosting
)

// contextSignals returns the context signals with risk for ev, in a fixed
// order, without allocating.
// A hit on a shared-infrastructure warninglist counts as the hosting
// signal.
func contextSignals(ev *Evidence, shared bool) (sigs [maxSignals]signal, n int) {
	c := &ev.Context
	add := func(s signal) {
		if s.risk > 0 && n < len(sigs) {
			sigs[n] = s
			n++
		}
	}
	if c.NeighboursNear > 0 {
		add(signal{factor: "neighbours", kind: sigNear, n: c.NeighboursNear,
			risk: min(maxStrength, 1-math.Pow(1+float64(c.NeighboursNear), -nearExp))})
	}
	if c.NeighboursFar > 0 {
		add(signal{factor: "neighbours", kind: sigFar, n: c.NeighboursFar,
			risk: min(maxStrength, 1-math.Pow(1+float64(c.NeighboursFar), -farExp))})
	}
	if c.NearestDistance > 0 {
		add(signal{factor: "proximity", kind: sigProximity, n: int(c.NearestDistance),
			risk: proxMax / (1 + float64(c.NearestDistance)/proxScale)})
	}
	if c.ASNDensity > 0 {
		rho := c.ASNDensity
		add(signal{factor: "asn-density", kind: sigASN, f: rho, risk: powerStrength(rho, asnFloor, asnExp)})
	}
	if c.NetworkListed > 0 && c.NetworkBits > 0 {
		rho := float64(c.NetworkListed) / float64(uint64(1)<<(32-c.NetworkBits))
		add(signal{factor: "network-density", kind: sigNetwork, n: c.NetworkListed, f: rho, risk: netMax * rho / (rho + netHalf)})
	}
	if c.CountryDensity > 0 {
		rho := c.CountryDensity
		add(signal{factor: "country-density", kind: sigCountry, f: rho, risk: powerStrength(rho, ccFloor, ccExp)})
	}
	if !c.Announced {
		add(signal{factor: "unannounced", kind: sigUnannounced, risk: unannounced})
	}
	md := &ev.Metadata
	switch {
	case md.Tor:
		add(signal{factor: "anonymizer", kind: sigAnonymizer, n: 0, risk: torRisk})
	case md.PublicProxy:
		add(signal{factor: "anonymizer", kind: sigAnonymizer, n: 1, risk: proxyRisk})
	case md.VPN:
		add(signal{factor: "anonymizer", kind: sigAnonymizer, n: 2, risk: vpnRisk})
	case md.Anonymous:
		add(signal{factor: "anonymizer", kind: sigAnonymizer, n: 3, risk: vpnRisk})
	}
	switch {
	case md.Hosting:
		add(signal{factor: "hosting", kind: sigHosting, risk: hostingRisk})
	case shared:
		add(signal{factor: "hosting", kind: sigHosting, n: 1, risk: hostingRisk})
	}
	return sigs, n
}

// powerStrength is the strength 1 − (floor/ρ)^exp of a density ρ, 0 at or
// below floor (a density that low is not evidence) and bounded by
// maxStrength.
func powerStrength(rho, floor, exp float64) float64 {
	if rho <= floor {
		return 0
	}
	return min(maxStrength, 1-math.Pow(floor/rho, exp))
}

var anonymizerNames = [...]string{"Tor exit", "public proxy", "VPN", "anonymous network"}

// appendDetail explains the signal.
func (s *signal) appendDetail(b []byte, ev *Evidence) []byte {
	is4 := ev.Addr.Unmap().Is4()
	switch s.kind {
	case sigNear:
		b = appendInt(b, s.n)
		b = append(b, " listed in its "...)
		b = append(b, pick(is4, "/24", "/64")...)
	case sigFar:
		b = appendInt(b, s.n)
		b = append(b, " listed in its "...)
		b = append(b, pick(is4, "/16", "/48")...)
	case sigProximity:
		b = append(b, "nearest listed host "...)
		b = appendInt(b, s.n)
		b = append(b, pick(s.n == 1, " address away", " addresses away")...)
	case sigASN:
		b = appendASN(b, ev.Context.ASN)
		b = append(b, ": "...)
		b = appendPercent(b, s.f)
		b = append(b, " of announced addresses listed"...)
	case sigUnannounced:
		b = append(b, "not in announced address space"...)
	case sigCountry:
		b = append(b, ev.Metadata.Country...)
		b = append(b, ": "...)
		b = appendPercent(b, s.f)
		b = append(b, " of announced addresses listed"...)
	case sigNetwork:
		b = appendInt(b, s.n)
		b = append(b, " listed in its routed prefix /"...)
		b = appendInt(b, ev.Context.NetworkBits)
	case sigAnonymizer:
		b = append(b, anonymizerNames[s.n]...)
	case sigHosting:
		b = append(b, "hosting network"...)
		if s.n == 1 {
			b = append(b, " (shared-infrastructure warninglist)"...)
		}
	}
	return b
}

// appendContextSummary writes the description's reason for an unlisted
// address with risk, from its strongest context factor.
func appendContextSummary(b []byte, factor string, ev *Evidence) []byte {
	c := &ev.Context
	is4 := ev.Addr.Unmap().Is4()
	switch factor {
	case "neighbours":
		n, p := c.NeighboursNear, pick(is4, "/24", "/64")
		if n == 0 {
			n, p = c.NeighboursFar, pick(is4, "/16", "/48")
		}
		b = appendCount(b, n, "listed neighbour", "listed neighbours")
		b = append(b, " in its "...)
		return append(b, p...)
	case "proximity":
		d := c.NearestDistance
		if c.Learned != nil {
			d = c.NearestHost
		}
		b = append(b, "a listed host "...)
		b = appendInt(b, int(d))
		return append(b, pick(d == 1, " address away", " addresses away")...)
	case "range-proximity":
		b = append(b, "a listed range "...)
		b = appendInt(b, int(c.NearestRange))
		return append(b, pick(c.NearestRange == 1, " address away", " addresses away")...)
	case "routed-prefix":
		b = append(b, "routed prefix /"...)
		return appendInt(b, c.RoutedBits)
	case "warninglist-kind":
		return appendWarningKind(b, warningKind(ev.Warnings))
	case "asn-density":
		b = appendASN(b, c.ASN)
		b = append(b, " has "...)
		b = appendPercent(b, c.ASNDensity)
		return append(b, " of its addresses listed"...)
	case "unannounced":
		return append(b, "unannounced address space"...)
	case "country-density":
		b = append(b, ev.Metadata.Country...)
		b = append(b, " has "...)
		b = appendPercent(b, c.CountryDensity)
		return append(b, " of its addresses listed"...)
	case "network-density":
		b = appendCount(b, c.NetworkListed, "listed host", "listed hosts")
		b = append(b, " in its routed prefix /"...)
		return appendInt(b, c.NetworkBits)
	case "anonymizer":
		md := &ev.Metadata
		switch {
		case md.Tor:
			return append(b, "Tor exit"...)
		case md.PublicProxy:
			return append(b, "public proxy"...)
		}
		return append(b, "anonymizer"...)
	case "hosting":
		return append(b, "hosting network"...)
	}
	return append(b, factor...)
}

// sharedWords are the whole words (case-insensitive) of a warninglist's
// name that make it a list of shared infrastructure: cloud, hosting and
// VPN ranges, where any customer may run anything. Every other list names
// specific benign services (resolvers, sinkholes, crawlers, CDN edges,
// mail and reserved space) and takes the full discount.
var sharedWords = [...]string{"vpn", "datacenter", "datacenters", "datacentre", "hosting", "vps",
	"amazon", "aws", "azure", "gcp", "oracle", "oci", "ovh", "github", "icloud", "digitalocean", "linode", "hetzner"}

// warninglistKinds reports whether ws holds a hit on a list of specific
// benign services and one on a list of shared infrastructure.
func warninglistKinds(ws []Warning) (benign, shared bool) {
	for i := range ws {
		if isSharedList(ws[i].List) {
			shared = true
		} else {
			benign = true
		}
	}
	return benign, shared
}

// isSharedList classifies a warninglist by the words of its name, without
// allocating.
func isSharedList(name string) bool { return hasWord(name, sharedWords[:]) }

// scannerWords are the whole words (case-insensitive) of a warninglist's
// name that make it a list of research scanners.
var scannerWords = [...]string{"scanning", "scanner", "scanners", "scan", "census"}

// isScannerList reports whether a warninglist lists research scanners.
func isScannerList(name string) bool { return hasWord(name, scannerWords[:]) }

// hasWord reports whether name has one of words as a whole word,
// case-insensitive.
func hasWord(name string, words []string) bool {
	start := -1
	for i := 0; i <= len(name); i++ {
		if i < len(name) && isWordByte(name[i]) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			w := name[start:i]
			start = -1
			for _, s := range words {
				if strings.EqualFold(w, s) {
					return true
				}
			}
		}
	}
	return false
}

func pick(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}

func appendASN(b []byte, asn uint32) []byte {
	if asn == 0 {
		return append(b, "its network"...)
	}
	b = append(b, "AS"...)
	return strconv.AppendUint(b, uint64(asn), 10)
}

func appendInt(b []byte, n int) []byte { return strconv.AppendInt(b, int64(n), 10) }

// appendFloat writes v with at most prec decimals and no trailing zeros.
func appendFloat(b []byte, v float64, prec int) []byte {
	start := len(b)
	b = strconv.AppendFloat(b, v, 'f', prec, 64)
	if prec > 0 {
		for b[len(b)-1] == '0' {
			b = b[:len(b)-1]
		}
		if b[len(b)-1] == '.' {
			b = b[:len(b)-1]
		}
	}
	if string(b[start:]) == "-0" {
		b = append(b[:start], '0')
	}
	return b
}

// appendPercent writes share as a percentage with two significant digits,
// so that a small density reads "0.0012%", not "0%".
func appendPercent(b []byte, share float64) []byte {
	v := 100 * share
	prec := 0
	if v > 0 && v < 10 {
		prec = 1 - int(math.Floor(math.Log10(v)))
	}
	b = appendFloat(b, v, min(prec, 12))
	return append(b, '%')
}

func appendCount(b []byte, n int, one, many string) []byte {
	b = appendInt(b, n)
	b = append(b, ' ')
	return append(b, pick(n == 1, one, many)...)
}

// appendAge writes a duration the way a person reads it: minutes under an
// hour, hours under two days, days after.
func appendAge(b []byte, d time.Duration) []byte {
	switch {
	case d < time.Hour:
		b = appendInt(b, int(d/time.Minute))
		return append(b, 'm')
	case d < 48*time.Hour:
		b = appendFloat(b, d.Hours(), 1)
		return append(b, 'h')
	}
	b = appendFloat(b, d.Hours()/24, 1)
	return append(b, 'd')
}
