package reputation

import (
	"time"

	"github.com/rampart-ip/rampart/misp"
)

// Verdicts, with ARTIF's strings.
const (
	VerdictDangerous  = "dangerous"
	VerdictSuspicious = "suspicious"
	VerdictTriage     = "Manual triage needed"
	VerdictNone       = "No action needed"
)

// Actions a proxy takes on an answer.
const (
	ActionAllow     = "allow"
	ActionChallenge = "challenge"
	ActionBlock     = "block"
)

// Answer is what Rampart knows about one address: the /ip response. Its JSON
// field names are the /ip contract in ARCHITECTURE.md. Slices are never nil
// in a rendered answer and Metadata is always an object.
type Answer struct {
	IP          string     `json:"ip"`
	IsIoC       bool       `json:"is_IoC"`
	IsActive    bool       `json:"is_Active"`
	Historical  bool       `json:"historical"`
	Score       float64    `json:"score"`
	Verdict     string     `json:"verdict"`
	Action      string     `json:"action"`
	Description string     `json:"description"`
	Blacklists  []string   `json:"blacklists"`
	Type        []string   `json:"type"`
	Metadata    Metadata   `json:"metadata"`
	FirstSeen   *time.Time `json:"first_seen,omitempty"`
	LastSeen    *time.Time `json:"last_seen,omitempty"`
	Reasons     []Reason   `json:"reasons"`
	Warnings    []Warning  `json:"warnings,omitempty"`
}

// Metadata is enrichment about the address's network. Empty fields are left out.
type Metadata struct {
	ASN         string `json:"asn,omitempty"`
	Country     string `json:"country,omitempty"`
	Org         string `json:"org,omitempty"`
	City        string `json:"city,omitempty"`
	Anonymous   bool   `json:"anonymous,omitempty"`
	VPN         bool   `json:"vpn,omitempty"`
	Tor         bool   `json:"tor,omitempty"`
	Hosting     bool   `json:"hosting,omitempty"`
	PublicProxy bool   `json:"public_proxy,omitempty"`
}

// Reason is one factor of the score: what it is, about what, and how much
// it weighed. The reasons of an answer multiply out to its score, as
// docs/scoring.md explains.
type Reason struct {
	Factor string  `json:"factor"`
	Detail string  `json:"detail"`
	Weight float64 `json:"weight"`
}

// Warning is a warninglist hit: the list's name and the range that matched.
// It is misp.Warning, so the warninglists answer in the answer's own type.
type Warning = misp.Warning
