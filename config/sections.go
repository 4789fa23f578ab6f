package config

import (
	"github.com/rampart-ip/rampart/misp"
)

// Duration is a time.Duration in Go syntax ("90s", "5m", "24h").
type Duration = misp.Duration

// HTTP configures the REST, forward-auth and CrowdSec-compatible listener.
type HTTP struct {
	Listen string `yaml:"listen"`
	// TrustedProxies are the peers (addresses or CIDR ranges) whose
	// X-Forwarded-For / X-Real-IP headers are believed by /authz.
	TrustedProxies []string `yaml:"trusted_proxies"`
	ReadTimeout    Duration `yaml:"read_timeout"`
	WriteTimeout   Duration `yaml:"write_timeout"`
	// MaxBatch is the most addresses one POST /ip may ask about.
	MaxBatch int `yaml:"max_batch"`
	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// AuthzChallenge says what /authz answers when the action is
	// challenge: "allow" (200, the default when empty; the proxy may act
	// on the X-Rampart-Action header) or "deny" (403, as for block).
	AuthzChallenge string `yaml:"authz_challenge"`
}

// GRPC configures the gRPC listener (Rampart's API, Envoy ext_authz, health).
type GRPC struct {
	Listen   string   `yaml:"listen"`
	ExtAuthz ExtAuthz `yaml:"ext_authz"`
}

// ExtAuthz configures the Envoy external authorization service.
type ExtAuthz struct {
	// TrustedHops is how many X-Forwarded-For entries, counted from the
	// right, were appended by proxies Rampart trusts. Zero means judge the
	// connection's source address.
	TrustedHops int `yaml:"trusted_hops"`
	// Challenge says what a challenge answer does: "allow" or "deny".
	Challenge string `yaml:"challenge"`
	// FailOpen allows requests when Rampart has no index loaded yet.
	FailOpen bool `yaml:"fail_open"`
}

// Storage selects the store: embedded SQLite in data_dir unless a MongoDB URI is set.
type Storage struct {
	MongoDBURI string `yaml:"mongodb_uri"`
	Database   string `yaml:"database"`
}

// MISP configures the MISP instance Rampart syncs from.
type MISP struct {
	URL          string         `yaml:"url"`
	Key          string         `yaml:"key"`
	VerifyTLS    bool           `yaml:"verify_tls"`
	CAFile       string         `yaml:"ca_file"`
	Timeout      Duration       `yaml:"timeout"`
	PollInterval Duration       `yaml:"poll_interval"`
	Feeds        bool           `yaml:"feeds"` // follow MISP's /feeds/index
	Attributes   MISPAttributes `yaml:"attributes"`
}

// MISPAttributes configures the pull of IP attributes from MISP events.
type MISPAttributes struct {
	Enabled   bool     `yaml:"enabled"`
	Types     []string `yaml:"types"`
	ToIDsOnly bool     `yaml:"to_ids_only"`
	PageSize  int      `yaml:"page_size"`
	// Reconcile is how often a full pull reconciles deletions.
	Reconcile Duration `yaml:"reconcile"`
}

// Sync configures feed refreshes.
type Sync struct {
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`
	// MaxBytes bounds one feed download (after decompression).
	MaxBytes int64 `yaml:"max_bytes"`
	// Concurrency is how many feeds are fetched at once.
	Concurrency int `yaml:"concurrency"`
}

// History configures listing history.
type History struct {
	Retention  Duration `yaml:"retention"`
	StaleAfter Duration `yaml:"stale_after"`
}

// Enrich configures GeoIP/ASN databases and MISP warninglists.
type Enrich struct {
	GeoIP GeoIP `yaml:"geoip"`
	// Warninglists are MISP warninglist JSON files or directories of them.
	Warninglists []string `yaml:"warninglists"`
}

// GeoIP names MaxMind-format database files; each is optional.
type GeoIP struct {
	City        string `yaml:"city"`
	Country     string `yaml:"country"`
	ASN         string `yaml:"asn"`
	ISP         string `yaml:"isp"`
	AnonymousIP string `yaml:"anonymous_ip"`
}

// Scoring configures the risk model (docs/scoring.md).
type Scoring struct {
	Thresholds Thresholds `yaml:"thresholds"`
	// DefaultLifetime is how long a listing stays strong after last seen
	// when its feed sets no lifetime.
	DefaultLifetime Duration `yaml:"default_lifetime"`
	// DecaySpeed is MISP's decay_speed for the polynomial decay.
	DecaySpeed float64 `yaml:"decay_speed"`
	// WarninglistDiscount multiplies a source's risk when the address is on
	// a warninglist, unless the source is weighted at least WarninglistTrust.
	WarninglistDiscount float64 `yaml:"warninglist_discount"`
	WarninglistTrust    float64 `yaml:"warninglist_trust"`
	// WarninglistSharedDiscount replaces WarninglistDiscount for a listing
	// of the address itself when the only warninglist hits are lists of
	// shared infrastructure (cloud, hosting and VPN ranges): being shared
	// is not being benign (0 means 0.9; never below WarninglistDiscount).
	WarninglistSharedDiscount float64 `yaml:"warninglist_shared_discount"`
	// WarninglistQuorum is how many independent providers listing an
	// address together override a warninglist hit (0 means 3).
	WarninglistQuorum int `yaml:"warninglist_quorum"`
	// Grace is how long after a source last confirmed a listing the
	// listing still counts as seen now, because feeds confirm their
	// listings only when they are refreshed (0 means 24h; negative means
	// none).
	Grace Duration `yaml:"grace"`
	// HistoryWeight multiplies the weight of a listing that has ended:
	// delisting is itself evidence that the threat stopped (0 means 0.6;
	// negative means history does not count).
	HistoryWeight float64 `yaml:"history_weight"`
	// ContextCap is the most risk, 0 to 1, that an unlisted address's
	// surroundings (neighbours, ASN density, anonymizer flags) can add, so
	// that context alone never blocks (0 means 0.45; negative means
	// context is not weighed).
	ContextCap float64 `yaml:"context_cap"`
}

// Thresholds map a score (0-100, 100 safest) to an action: at or below
// Block → block; at or below Challenge → challenge; else allow.
type Thresholds struct {
	Block     float64 `yaml:"block"`
	Challenge float64 `yaml:"challenge"`
	// Triage is the score at or below which an allowed address is still
	// reported as "Manual triage needed" rather than "No action needed"
	// (0 means 90; never below Challenge).
	Triage float64 `yaml:"triage"`
}

// Cache configures the response cache.
type Cache struct {
	Size int `yaml:"size"`
	// Doorkeeper caches an address only on its second miss, so that
	// addresses seen once (scans, random traffic) never churn the cache.
	Doorkeeper bool `yaml:"doorkeeper"`
}

// Auth configures API keys and query access.
type Auth struct {
	// OpenQueries lets anyone query /ip, /authz and gRPC Check without a key.
	OpenQueries bool     `yaml:"open_queries"`
	APIKeys     []APIKey `yaml:"api_keys"`
	// RateLimit bounds how fast one API key or one client address may
	// call the HTTP and gRPC APIs; it is off by default.
	RateLimit RateLimit `yaml:"rate_limit"`
}

// RateLimit configures token buckets: a request carrying a configured API
// key draws from its key's bucket, any other request from its client
// address's bucket. A zero rate turns that limit off. Requests from
// http.trusted_proxies have no per-address limit (they speak for many
// clients); /healthz, /readyz and /metrics are never limited.
type RateLimit struct {
	// PerKey is the sustained rate, in requests per second, of one API key.
	PerKey float64 `yaml:"per_key"`
	// PerPeer is the sustained rate, in requests per second, of one client
	// address (an IPv6 client's /64).
	PerPeer float64 `yaml:"per_peer"`
	// Burst is how many requests a bucket allows at once above the rate.
	Burst int `yaml:"burst"`
	// MaxPeers bounds the client addresses tracked at once; the least
	// recently seen are forgotten (and start again with a full bucket).
	MaxPeers int `yaml:"max_peers"`
}

// APIKey is one API key with a role: "query", "bouncer" or "admin".
type APIKey struct {
	Name   string `yaml:"name"`
	Key    string `yaml:"key"`
	KeyEnv string `yaml:"key_env"` // read the key from this environment variable
	Role   string `yaml:"role"`
}

// Alerts configures notifications.
type Alerts struct {
	Slack Slack `yaml:"slack"`
}

// Slack configures Slack alerts for dangerous answers.
type Slack struct {
	Token    string   `yaml:"token"`
	TokenEnv string   `yaml:"token_env"`
	Channel  string   `yaml:"channel"`
	Verdicts []string `yaml:"verdicts"`
	// Dedup is how long one address is not alerted again.
	Dedup Duration `yaml:"dedup"`
	// APIURL overrides Slack's API base URL (for tests and proxies).
	APIURL string `yaml:"api_url"`
	// BatchSize is the most alerts one message lists (0 means 20; at most
	// 45, because Slack allows 50 blocks per message).
	BatchSize int `yaml:"batch_size"`
	// BatchWindow is how long the first alert of a batch waits for others
	// before the batch is sent (0 means 10s).
	BatchWindow Duration `yaml:"batch_window"`
	// PerMinute is the most messages sent in any minute (0 means 10), below
	// Slack's own limit of about one message per second per channel.
	PerMinute int `yaml:"per_minute"`
	// QueueSize bounds the alerts waiting for the sender; when it is full,
	// alerts are dropped and counted rather than slowing a query (0 means
	// 1024).
	QueueSize int `yaml:"queue_size"`
	// DedupSize bounds how many addresses the dedup window remembers; the
	// least recently alerted are forgotten first (0 means 100000).
	DedupSize int `yaml:"dedup_size"`
	// Timeout bounds one call to Slack (0 means 10s).
	Timeout Duration `yaml:"timeout"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}
