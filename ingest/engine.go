package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/misp"
	"github.com/rampart-ip/rampart/reputation"
	"github.com/rampart-ip/rampart/store"
)

// Errors returned by the engine.
var (
	// ErrUnknownFeed is returned for a feed name that no origin defines.
	ErrUnknownFeed = errors.New("unknown feed")
	// ErrFeedInactive is returned for a feed that is disabled or skipped.
	ErrFeedInactive = errors.New("feed is not enabled")
	// ErrSuspiciousPull is returned when a pull would empty or nearly empty
	// a feed; the previous listings stay in force (see the package doc).
	ErrSuspiciousPull = errors.New("suspicious pull")
	// ErrNameTaken is returned by ApplySource for a name that a feed uses.
	ErrNameTaken = errors.New("source name is used by a feed")
)

// SuspiciousMinEntries is the size from which a feed's collapse to under a
// tenth of its entries is held back as suspicious.
const SuspiciousMinEntries = 1000

// Meta keys the engine keeps in a feed's store.Source.Meta.
const (
	metaOrigin   = "origin"
	metaProvider = "provider"
	metaCategory = "category"
	metaTags     = "tags"
	metaSuspect  = "suspect_pull"
)

// EngineOptions configure an Engine. Store is required; the rest default.
type EngineOptions struct {
	// Store holds sources, listings and history.
	Store store.Store
	// Service receives each rebuilt index. Nil means build nothing (a
	// one-shot sync that only writes the store).
	Service *reputation.Service
	// Fetcher downloads and parses feeds. Nil means a fetcher built from
	// Sync.Timeout and Sync.MaxBytes.
	Fetcher *misp.Fetcher
	Sync    config.Sync
	History config.History
	// Scoring is the scoring configuration. The index build needs none of
	// it today (a zero weight or lifetime in a SourceInfo means the
	// model's default); it is accepted so that wiring hands the engine one
	// configuration.
	Scoring  config.Scoring
	Enricher reputation.Enricher
	Warner   reputation.Warner
	// Now is the clock that stamps listings and decides retention, and
	// that the sync lease is taken by.
	Now    func() time.Time
	Logger *slog.Logger
	// Lease lets several replicas share Store; the zero value is one
	// engine alone on it.
	Lease LeaseOptions
}

// Report is the outcome of one feed sync.
type Report struct {
	Feed        string        `json:"feed"`
	Added       int           `json:"added"`
	Removed     int           `json:"removed"`
	Entries     int           `json:"entries"`
	NotModified bool          `json:"not_modified"`
	Duration    time.Duration `json:"duration"`
	Err         error         `json:"-"`
}

// Engine keeps the store and the reputation index in step with the feeds.
// Its methods are safe for concurrent use.
type Engine struct {
	st       store.Store
	svc      *reputation.Service
	fetcher  *misp.Fetcher
	syncCfg  config.Sync
	hist     config.History
	scoring  config.Scoring
	enricher reputation.Enricher
	warner   reputation.Warner
	now      func() time.Time
	log      *slog.Logger

	sem     chan struct{} // bounds concurrent feed syncs
	startMu sync.Mutex    // serialises Start

	mu         sync.Mutex
	origins    map[string][]misp.Feed
	setOrigins map[string]bool
	feeds      map[string]*feedEntry // resolved definitions by name
	dups       []feedEntry           // definitions skipped for a taken name
	status     map[string]store.Source
	attempted  map[string]bool
	checked    map[string]bool // inactive feeds already retired
	locks      map[string]*sync.Mutex
	started    bool
	loaded     bool
	ready      atomic.Bool

	rbMu      sync.Mutex
	changeSeq atomic.Uint64
	builtSeq  uint64 // guarded by rbMu

	signal chan struct{} // wakes Run: feeds changed or a rebuild is wanted
	jobs   jobTable
	lease  lease
	stats  syncStats // failures and pull durations, for metrics.go
}

// NewEngine returns an engine over opts.Store. It does no I/O: call Start
// to load the index from the store, then Run.
func NewEngine(opts EngineOptions) *Engine {
	def := config.Default()
	if opts.Sync.Interval <= 0 {
		opts.Sync.Interval = def.Sync.Interval
	}
	if opts.Sync.Concurrency <= 0 {
		opts.Sync.Concurrency = def.Sync.Concurrency
	}
	if opts.Sync.Timeout <= 0 {
		opts.Sync.Timeout = def.Sync.Timeout
	}
	if opts.Sync.MaxBytes <= 0 {
		opts.Sync.MaxBytes = def.Sync.MaxBytes
	}
	if opts.History.Retention <= 0 {
		opts.History.Retention = def.History.Retention
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	log := opts.Logger.With("component", "ingest")
	if opts.Fetcher == nil {
		opts.Fetcher = misp.NewFetcher(misp.FetchOptions{
			Timeout:  opts.Sync.Timeout.Std(),
			MaxBytes: opts.Sync.MaxBytes,
		}, opts.Logger)
	}
	e := &Engine{
		st:         opts.Store,
		svc:        opts.Service,
		fetcher:    opts.Fetcher,
		syncCfg:    opts.Sync,
		hist:       opts.History,
		scoring:    opts.Scoring,
		enricher:   opts.Enricher,
		warner:     opts.Warner,
		now:        opts.Now,
		log:        log,
		sem:        make(chan struct{}, opts.Sync.Concurrency),
		origins:    map[string][]misp.Feed{},
		setOrigins: map[string]bool{},
		feeds:      map[string]*feedEntry{},
		status:     map[string]store.Source{},
		attempted:  map[string]bool{},
		checked:    map[string]bool{},
		locks:      map[string]*sync.Mutex{},
		signal:     make(chan struct{}, 1),
	}
	e.lease.init(opts.Lease)
	e.jobs.init(log, e.Leader, e.publish)
	e.stats.init()
	e.addHistoryJobs()
	return e
}

// Start loads the index from the store: the first thing to do at startup,
// so that queries are answered from the last good state before any feed is
// fetched. Stored feeds that no static origin defines any more have their
// listings ended first. Start is idempotent.
func (e *Engine) Start(ctx context.Context) error {
	e.startMu.Lock()
	defer e.startMu.Unlock()
	e.mu.Lock()
	started := e.started
	e.mu.Unlock()
	if started {
		return nil
	}
	srcs, err := e.st.Sources(ctx)
	if err != nil {
		return fmt.Errorf("start sync engine: %w", err)
	}
	e.mu.Lock()
	for _, s := range srcs {
		e.status[s.Name] = s
	}
	e.started = true
	e.mu.Unlock()
	// With a shared store the replica holding the lease retires feeds.
	if e.Leader() {
		if err := e.retireInactive(ctx); err != nil {
			return fmt.Errorf("start sync engine: %w", err)
		}
	}
	if err := e.noteGeneration(ctx); err != nil {
		return fmt.Errorf("start sync engine: %w", err)
	}
	n, err := e.rebuildNow(ctx)
	if err != nil {
		return fmt.Errorf("start sync engine: %w", err)
	}
	e.mu.Lock()
	e.loaded = n > 0
	e.mu.Unlock()
	e.log.Info("index loaded from store", "listings", n, "sources", len(srcs))
	return nil
}

// Ready reports whether the engine has something to answer with: an index
// loaded at Start from a store that had listings, or a first sync attempt
// (good or bad) of every enabled feed. Once true it stays true.
func (e *Engine) Ready() bool {
	if e.ready.Load() {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ok := e.loaded
	if !ok {
		active := 0
		ok = true
		for name, f := range e.feeds {
			if !f.active {
				continue
			}
			active++
			if !e.attempted[name] {
				ok = false
				break
			}
		}
		if active == 0 {
			ok = e.started
		}
	}
	if ok {
		e.ready.Store(true)
	}
	return ok
}

// SyncFeed pulls one feed, writes what changed and, if anything did,
// rebuilds the index before returning (coalesced with concurrent syncs).
//
// An unchanged feed (HTTP 304 or the same content hash) writes only its
// source state. A failed fetch, a failed parse or a suspicious pull
// (ErrSuspiciousPull) writes no listings: the previous ones stay in force,
// the source's LastError and LastAttempt are recorded, and the failure is
// logged and returned, also in Report.Err.
func (e *Engine) SyncFeed(ctx context.Context, name string) (Report, error) {
	before := e.changeSeq.Load()
	rep, err := e.syncFeed(ctx, name)
	if e.changeSeq.Load() != before {
		if rerr := e.rebuildAfterChange(ctx); rerr != nil {
			err = errors.Join(err, rerr)
			rep.Err = err
		}
		e.publish(ctx)
	}
	if !errors.Is(err, ErrUnknownFeed) && !errors.Is(err, ErrFeedInactive) && ctx.Err() == nil {
		e.markAttempted(name)
	}
	return rep, err
}

// SyncAll syncs every enabled feed, at most Sync.Concurrency at once,
// calls progress (serialized, may be nil) as each feed finishes, and
// rebuilds the index once at the end. Reports are in feed-name order.
func (e *Engine) SyncAll(ctx context.Context, progress func(Report)) []Report {
	if err := e.retireInactive(ctx); err != nil {
		e.log.Error("end listings of removed feeds", "err", err)
	}
	names := e.activeNames()
	reports := make([]Report, len(names))
	var pmu sync.Mutex
	var wg sync.WaitGroup
	before := e.changeSeq.Load()
	for i, name := range names {
		wg.Go(func() {
			rep, _ := e.syncFeed(ctx, name)
			reports[i] = rep
			if progress != nil {
				pmu.Lock()
				progress(rep)
				pmu.Unlock()
			}
		})
	}
	wg.Wait()
	if e.changeSeq.Load() != before {
		if err := e.rebuildAfterChange(ctx); err != nil {
			e.log.Error("rebuild index after sync", "err", err)
		}
		e.publish(ctx)
	}
	if ctx.Err() == nil {
		for _, name := range names {
			e.markAttempted(name)
		}
	}
	return reports
}

// ApplySource writes one change of a source that is not a fetched feed
// (the IP attributes of a MISP event) and its state. It does not wait for
// the index: a running engine (Run) rebuilds soon after, one rebuild for a
// burst of calls; without Run, call Rebuild. An empty change writes only
// the state. A Kind left empty means store.KindMISPEvent.
func (e *Engine) ApplySource(ctx context.Context, src store.Source, ch store.Change) error {
	if src.Name == "" {
		return errors.New("apply source: empty name")
	}
	if src.Kind == "" {
		src.Kind = store.KindMISPEvent
	}
	e.mu.Lock()
	_, isFeed := e.feeds[src.Name]
	e.mu.Unlock()
	if isFeed && src.Kind != store.KindFeed {
		return fmt.Errorf("apply source %q: %w", src.Name, ErrNameTaken)
	}
	lk := e.lockFor(src.Name)
	lk.Lock()
	defer lk.Unlock()
	if !ch.Empty() {
		if err := e.st.Apply(ctx, src.Name, ch, e.now()); err != nil {
			return fmt.Errorf("apply source %q: %w", src.Name, err)
		}
		e.changeSeq.Add(1)
	}
	if err := e.st.PutSource(ctx, src); err != nil {
		return fmt.Errorf("apply source %q: %w", src.Name, err)
	}
	e.changeSeq.Add(1) // the source's state (confirmed time, meta) is in the index too
	e.mu.Lock()
	e.status[src.Name] = src
	e.mu.Unlock()
	e.wake()
	return nil
}

// syncFeed pulls one feed without rebuilding the index.
func (e *Engine) syncFeed(ctx context.Context, name string) (Report, error) {
	start := time.Now()
	rep := Report{Feed: name}
	def, err := e.activeDef(name)
	if err != nil {
		rep.Err = err
		return rep, err
	}
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		rep.Err = fmt.Errorf("sync feed %q: %w", name, ctx.Err())
		return rep, rep.Err
	}
	defer func() { <-e.sem }()
	lk := e.lockFor(name)
	lk.Lock()
	defer lk.Unlock()
	// The definition may have changed or gone while this call waited.
	if def, err = e.activeDef(name); err != nil {
		rep.Err = err
		return rep, err
	}
	pullStart := time.Now()
	rep, err = e.pull(ctx, def)
	if ctx.Err() == nil { // a pull cut short by shutdown is no failure of the feed
		e.stats.observe(name, time.Since(pullStart), err)
	}
	rep.Duration = time.Since(start)
	rep.Err = err
	return rep, err
}

// pull fetches def and writes the difference. The caller holds the feed's lock.
func (e *Engine) pull(ctx context.Context, def misp.Feed) (Report, error) {
	rep := Report{Feed: def.Name}
	src, err := e.st.Source(ctx, def.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		src = store.Source{Name: def.Name, Kind: store.KindFeed}
	case err != nil:
		return rep, fmt.Errorf("sync feed %q: read state: %w", def.Name, err)
	}
	src.Meta = feedMeta(src.Meta, def)
	now := e.now()
	src.LastAttempt = now
	rep.Entries = src.Entries

	res, err := e.fetcher.Fetch(ctx, def, misp.FetchState{ETag: src.ETag, LastModified: src.LastModified, ContentHash: src.ContentHash})
	if err == nil && (res == nil || (!res.NotModified && res.Result == nil)) {
		err = fmt.Errorf("fetch feed %q: fetcher returned no result", def.Name)
	}
	if err != nil {
		// The fetcher's error already names the feed.
		return rep, e.fail(ctx, &src, def, err)
	}
	if res.NotModified {
		setState(&src, res.State)
		src.LastSuccess = now
		src.LastError = ""
		delete(src.Meta, metaSuspect)
		if err := e.put(ctx, src); err != nil {
			return rep, fmt.Errorf("sync feed %q: %w", def.Name, err)
		}
		rep.NotModified = true
		return rep, nil
	}

	next := sortedUnique(res.Result.Prefixes)
	cur, err := e.st.SourceListings(ctx, def.Name)
	if err != nil {
		return rep, e.fail(ctx, &src, def, fmt.Errorf("sync feed %q: read listings: %w", def.Name, err))
	}
	cur = sortedUnique(cur)
	if reason := suspicious(&src, len(cur), res, len(next)); reason != "" {
		return rep, e.fail(ctx, &src, def, fmt.Errorf("sync feed %q: %w: %s; previous %d entries kept", def.Name, ErrSuspiciousPull, reason, len(cur)))
	}
	ch := diff(cur, next)
	if !ch.Empty() {
		if err := e.st.Apply(ctx, def.Name, ch, now); err != nil {
			return rep, e.fail(ctx, &src, def, fmt.Errorf("sync feed %q: write listings: %w", def.Name, err))
		}
		e.changeSeq.Add(1)
	}
	setState(&src, res.State)
	src.Entries = len(next)
	src.LastSuccess = now
	src.LastError = ""
	delete(src.Meta, metaSuspect)
	rep.Added, rep.Removed, rep.Entries = len(ch.Added), len(ch.Removed), len(next)
	// Written after the listings: a crash in between leaves the old fetch
	// state, so the next sync fetches again and finds nothing to change.
	if err := e.put(ctx, src); err != nil {
		return rep, fmt.Errorf("sync feed %q: %w", def.Name, err)
	}
	if res.Result.Malformed > 0 {
		e.log.Debug("feed has malformed lines", "feed", def.Name, "malformed", res.Result.Malformed, "lines", res.Result.Lines)
	}
	e.log.Info("feed synced", "feed", def.Name, "entries", len(next), "added", len(ch.Added), "removed", len(ch.Removed))
	return rep, nil
}

// fail records a failed pull in the source's state (no listing is touched),
// logs it and returns err.
func (e *Engine) fail(ctx context.Context, src *store.Source, def misp.Feed, err error) error {
	src.LastError = redactIn(err.Error(), def.URL)
	// The error travels on to job status, API answers and logs: it carries
	// the redacted message, and the cause only for errors.Is.
	err = &redactedError{msg: src.LastError, err: err}
	e.mu.Lock()
	e.status[src.Name] = *src
	e.mu.Unlock()
	if ctx.Err() == nil {
		if perr := e.st.PutSource(ctx, *src); perr != nil {
			err = errors.Join(err, fmt.Errorf("record failure: %w", perr))
		}
	}
	e.log.Warn("feed sync failed, previous listings kept", "feed", def.Name, "err", src.LastError)
	return err
}

// redactedError is an error whose message has the secrets of a feed URL
// (user info, secret query values) removed; it still wraps its cause.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// put writes a source's state and caches it for Feeds.
func (e *Engine) put(ctx context.Context, src store.Source) error {
	if err := e.st.PutSource(ctx, src); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	e.mu.Lock()
	e.status[src.Name] = src
	e.mu.Unlock()
	return nil
}

// suspicious says why a pull must not replace the current listings, or "".
// It may record the pull in src.Meta so that a repeat is accepted.
func suspicious(src *store.Source, cur int, res *misp.FetchResult, next int) string {
	r := res.Result
	if next == 0 && r.Malformed > 0 {
		return fmt.Sprintf("no valid entry in %d lines (%d malformed)", r.Lines, r.Malformed)
	}
	// A list that really emptied is blank, comments and at most a header
	// row. Lines of something else without a single address are an error
	// page or garbage, however often they are served.
	if next == 0 && cur > 0 && r.Lines > 1 {
		return fmt.Sprintf("no address in %d lines where %d were listed", r.Lines, cur)
	}
	emptied := next == 0 && cur > 0
	collapsed := cur >= SuspiciousMinEntries && next*10 < cur
	if !emptied && !collapsed {
		return ""
	}
	key := res.State.ContentHash
	if key == "" {
		key = fmt.Sprintf("entries:%d", next)
	}
	if src.Meta[metaSuspect] == key {
		return "" // the same content twice in a row: the list really shrank
	}
	src.Meta[metaSuspect] = key
	return fmt.Sprintf("%d entries where %d were listed (accepted if the next pull is the same)", next, cur)
}

// setState records the fetch state of a good pull; a fetcher that reports
// no state (a 304 without headers) leaves the previous one.
func setState(src *store.Source, st misp.FetchState) {
	if st == (misp.FetchState{}) {
		return
	}
	src.ETag, src.LastModified, src.ContentHash = st.ETag, st.LastModified, st.ContentHash
}

// diff merge-walks two sorted, deduplicated lists: what next adds to cur
// and what it removes.
func diff(cur, next []netip.Prefix) store.Change {
	var ch store.Change
	i, j := 0, 0
	for i < len(cur) && j < len(next) {
		switch c := cur[i].Compare(next[j]); {
		case c == 0:
			i++
			j++
		case c < 0:
			ch.Removed = append(ch.Removed, cur[i])
			i++
		default:
			ch.Added = append(ch.Added, next[j])
			j++
		}
	}
	ch.Removed = append(ch.Removed, cur[i:]...)
	ch.Added = append(ch.Added, next[j:]...)
	return ch
}

// sortedUnique sorts p (in place) unless it already is, and drops
// duplicates and invalid prefixes.
func sortedUnique(p []netip.Prefix) []netip.Prefix {
	cmp := func(a, b netip.Prefix) int { return a.Compare(b) }
	if !slices.IsSortedFunc(p, cmp) {
		slices.SortFunc(p, cmp)
	}
	p = slices.Compact(p)
	for len(p) > 0 && !p[0].IsValid() { // invalid prefixes sort first
		p = p[1:]
	}
	return p
}

func (e *Engine) lockFor(name string) *sync.Mutex {
	e.mu.Lock()
	defer e.mu.Unlock()
	lk, ok := e.locks[name]
	if !ok {
		lk = new(sync.Mutex)
		e.locks[name] = lk
	}
	return lk
}

func (e *Engine) markAttempted(name string) {
	e.mu.Lock()
	e.attempted[name] = true
	e.mu.Unlock()
}

// wake asks Run to look at feed changes and pending rebuilds.
func (e *Engine) wake() {
	select {
	case e.signal <- struct{}{}:
	default:
	}
}
