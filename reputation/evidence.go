package reputation

import (
	"net/netip"
	"time"

	"github.com/rampart-ip/rampart/misp"
)

// SourceInfo is what the index and the model know about one evidence source
// (a feed or a MISP event).
type SourceInfo struct {
	Name     string
	Kind     string // store.KindFeed or store.KindMISPEvent
	Provider string
	Category string
	Tags     []string
	// Weight is the configured weight, 0 to 1; 0 means the model's default
	// for the source's provider, category and tags.
	Weight float64
	// Lifetime is the configured lifetime; 0 means the model's default.
	Lifetime time.Duration
	// ThreatLevel is a MISP event's threat level (1 high .. 4 undefined); 0 for feeds.
	ThreatLevel int
	// ConfirmedAt is when the source last confirmed its current listings
	// (store.Source.LastSuccess): their last_seen.
	ConfirmedAt time.Time
}

// Match is one listing or ended episode whose prefix contains the address.
type Match struct {
	Source   *SourceInfo
	Prefix   netip.Prefix
	Since    time.Time // episode start (first seen in this episode)
	LastSeen time.Time // ConfirmedAt for an open listing, Ended for an ended one
	Ended    time.Time // zero while the listing is open
}

// Active reports whether the match is an open listing at time at.
func (m *Match) Active(at time.Time) bool {
	if m.Since.After(at) {
		return false
	}
	return m.Ended.IsZero() || m.Ended.After(at)
}

// Context is what the index knows about an address's surroundings; the
// model weighs it for addresses that no source lists. Counts are of
// distinct listed host addresses and ranges with at least one open listing.
type Context struct {
	// Same /24 (IPv4) or /64 (IPv6), excluding the address itself.
	NeighboursNear int
	// Same /16 (IPv4) or /48 (IPv6), excluding the address itself.
	NeighboursFar int
	// NearestDistance is the distance in addresses to the nearest listed
	// IPv4 host address (0 if unknown or none within the /16).
	NearestDistance uint32
	// ASN is the autonomous system announcing the address (0 if unknown).
	ASN uint32
	// ASNDensity is listed addresses per announced address in the ASN,
	// computed at index build (0 if unknown).
	ASNDensity float64
	// ASNShrunk is the ASN density shrunk toward the density of all
	// announced space, (listed + α × prior) / (announced + α): small ASNs
	// with one listing or none say less than their raw density (0 if
	// unknown). The learned model reads it.
	ASNShrunk float64
	// CountryDensity is listed addresses per announced address in the
	// address's country, computed at index build (0 if unknown).
	CountryDensity float64
	// NetworkListed is the number of listed hosts and ranges, the address
	// excluded, in the routed prefix holding the address (the ASN
	// database's network record), and NetworkBits that prefix's length;
	// both 0 when no listing shares the prefix or the enricher cannot
	// tell networks (IPv4 only).
	NetworkListed int
	NetworkBits   int
	// Announced reports whether the address is inside announced space
	// (true when no ASN database is loaded).
	Announced bool
	// NearestHost is the distance in addresses to the nearest listed IPv4
	// host anywhere (0 if none), and NearestRange to the nearest listed
	// IPv4 range not containing the address (0 if none).
	NearestHost  uint32
	NearestRange uint32
	// RoutedBits is the length of the routed prefix holding the address
	// (the ASN database's network record; 0 if unknown), listed or not.
	RoutedBits int
	// Learned is the index's learned context model (learn.go), nil when
	// the index had too little data to learn from; the model then weighs
	// its fixed context signals.
	Learned *ContextModel `json:"-"`
}

// Evidence is everything known about one address at query time: the input
// of Model.Score.
type Evidence struct {
	Addr     netip.Addr
	Matches  []Match
	Context  Context
	Metadata Metadata
	Warnings []Warning
}

// Judgement is the part of an answer a proxy acts on.
type Judgement struct {
	Score   float64
	Verdict string
	Action  string
}

// Enricher tells what is known of an address's network. Implemented by
// package enrich; safe for concurrent use; must not block on I/O.
type Enricher interface {
	// Metadata returns the address's network metadata.
	Metadata(addr netip.Addr) Metadata
	// ASN returns the autonomous system announcing addr, if known.
	ASN(addr netip.Addr) (asn uint32, ok bool)
	// Announced returns how many addresses asn announces (0 if unknown).
	Announced(asn uint32) uint64
}

// Warner matches addresses and ranges against warninglists. Implemented by
// misp.Warninglists; safe for concurrent use.
type Warner interface {
	// Warnings returns the warninglist hits for prefix p (a single address
	// is a /32 or /128).
	Warnings(p netip.Prefix) []Warning
}

var _ Warner = (*misp.Warninglists)(nil)
