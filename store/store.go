package store

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// ErrNotFound is returned when a source or key does not exist.
var ErrNotFound = errors.New("not found")

// Keys of the key/value space that the lease and generation methods own.
const (
	// LeaseKeyPrefix + a lease's name holds that lease.
	LeaseKeyPrefix = "lease:"
	// GenerationKey holds the sync generation, in decimal.
	GenerationKey = "sync:generation"
)

// Source kinds.
const (
	KindFeed      = "feed"       // a list fetched by Rampart (config, catalog, MISP feed)
	KindMISPEvent = "misp-event" // the IP attributes of one MISP event
)

// Source is the stored state of one evidence source: a feed or a MISP event.
// Its listings are written with Apply; its state with PutSource.
type Source struct {
	Name string // unique; what the answer's blacklists field reports
	Kind string // KindFeed or KindMISPEvent

	// Fetch state of the last good pull, for conditional requests and for
	// skipping an unchanged body.
	ETag         string
	LastModified string
	ContentHash  string

	LastAttempt time.Time // last sync attempt, good or bad
	// LastSuccess is when the source last confirmed its current listings:
	// every current listing of the source was seen then. It is the
	// listings' last_seen, so an unchanged re-sync writes one source row
	// and no listing rows.
	LastSuccess time.Time
	LastError   string // empty after a good pull
	Entries     int    // current listings after the last good pull

	// Meta carries what scoring weighs that is not a feed setting: for MISP
	// events "threat_level" ("1".."4"), "tags" (comma-separated), "event_uuid".
	Meta map[string]string
}

// Listing is an open episode: Source has listed Prefix since Since.
// Host addresses are stored as single-address prefixes (/32, /128).
type Listing struct {
	Source string
	Prefix netip.Prefix
	Since  time.Time
}

// Episode is an ended listing: Source listed Prefix from Started until Ended.
type Episode struct {
	Source  string
	Prefix  netip.Prefix
	Started time.Time
	Ended   time.Time
}

// Change is what one sync changes in one source's listings.
type Change struct {
	Added   []netip.Prefix // new or re-listed: an episode starts
	Removed []netip.Prefix // no longer listed: the open episode ends
}

// Empty reports whether the change writes nothing.
func (c Change) Empty() bool { return len(c.Added) == 0 && len(c.Removed) == 0 }

// Store is the persistence that Rampart needs. Both backends (store/sqlite,
// store/mongo) implement it and pass the conformance suite in store/storetest.
//
// Contract: every method honours ctx cancellation and returns ctx.Err()
// (wrapped) when cancelled. Apply is atomic per call on backends with
// transactions; on backends without them it is ordered so that a crash
// leaves a state that the next Apply of the same change repairs (the change
// is idempotent). A failed call leaves the previously committed state
// readable. Times are kept to the millisecond and read back in UTC.
type Store interface {
	// Sources returns every stored source, ordered by name.
	Sources(ctx context.Context) ([]Source, error)
	// Source returns one source, or ErrNotFound.
	Source(ctx context.Context, name string) (Source, error)
	// PutSource creates or replaces a source's state (not its listings).
	PutSource(ctx context.Context, s Source) error

	// Apply writes one source's change at time now: each added prefix that is
	// not currently listed by the source opens an episode starting at now;
	// each removed prefix that is listed moves to history with Ended = now.
	// Added prefixes already listed and removed ones not listed are ignored.
	// Prefixes are stored masked (10.1.2.3/8 is 10.0.0.0/8); an invalid
	// prefix or an empty source name fails the call before anything is
	// written. A prefix in both lists ends its episode and opens a new one.
	// Apply neither needs nor creates the source's state (PutSource).
	Apply(ctx context.Context, source string, ch Change, now time.Time) error
	// SourceListings returns the prefixes that source lists now, in no
	// particular order; none (and no error) for an unknown source.
	SourceListings(ctx context.Context, source string) ([]netip.Prefix, error)
	// Listings calls fn for every current listing of every source, in no
	// particular order, stopping at fn's first error and returning it.
	Listings(ctx context.Context, fn func(Listing) error) error
	// Episodes calls fn for every ended episode with Ended >= since.
	Episodes(ctx context.Context, since time.Time, fn func(Episode) error) error
	// PurgeEpisodes deletes ended episodes with Ended < before and returns
	// how many it deleted.
	PurgeEpisodes(ctx context.Context, before time.Time) (int64, error)

	// Get returns the value stored under key, or ErrNotFound. Keys hold
	// small state such as MISP pull cursors and the sync generation.
	Get(ctx context.Context, key string) (string, error)
	// Put stores value under key. Keys starting with LeaseKeyPrefix and
	// the key GenerationKey belong to the methods below; Get reads them
	// (for diagnostics) but Put must not write them.
	Put(ctx context.Context, key, value string) error

	// TryLease acquires or renews the lease name for holder, until
	// now+ttl, and reports whether holder holds it after the call. It
	// succeeds when nobody holds the lease, when holder already holds it
	// (even past its expiry: nobody took it over), or when another
	// holder's lease has expired (now >= its expiry). Otherwise it returns
	// false and changes nothing. Several store handles, in one process or
	// many, sharing one database see one lease: at most one holder holds
	// it at any time as long as the callers' clocks agree to well within
	// ttl. An empty name or holder, or a ttl <= 0, is an error.
	TryLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error)
	// ReleaseLease ends holder's lease name now, so that another holder
	// can take it at once. A lease that holder does not hold is left
	// alone, without an error.
	ReleaseLease(ctx context.Context, name, holder string) error

	// BumpGeneration increments the sync generation, a counter shared by
	// every handle on the database, and returns the new value. Writers
	// call it after they change listings or sources, so that the other
	// replicas reload. Concurrent bumps return distinct values (on
	// MongoDB by compare and swap on one document, which needs no
	// transaction); a bump never returns a value already seen.
	BumpGeneration(ctx context.Context) (int64, error)
	// Generation returns the sync generation: 0 until the first bump.
	Generation(ctx context.Context) (int64, error)

	// Close releases the store's resources.
	Close() error
}
