package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/misp"
	"github.com/rampart-ip/rampart/store"
)

// Job names of the MISP poller.
const (
	JobMISPFeeds      = "misp:feeds"
	JobMISPAttributes = "misp:attributes"
	JobMISPReconcile  = "misp:reconcile"
)

// Store keys of the MISP poller.
const (
	// MISPCursorKey holds the highest attribute timestamp (unix seconds)
	// pulled so far; the next incremental pull asks for timestamp >= it.
	MISPCursorKey = "misp:attributes:cursor"
	// mispEventKey + event id holds an event's attribute → prefix state.
	mispEventKey = "misp:event:"
	// mispEmptyKey marks a reconcile that found no attribute at all.
	mispEmptyKey = "misp:reconcile:empty"
)

// DefaultMISPMaxPages bounds the pages of one attribute pull.
const DefaultMISPMaxPages = 10_000

// maxInfoLen bounds a source name taken from an event's info.
const maxInfoLen = 200

// Errors of the MISP poller.
var (
	// ErrEndlessPages means MISP kept answering full pages: the same page
	// again, or more than MISPOptions.MaxPages of them.
	ErrEndlessPages = errors.New("misp paging does not end")
)

// MISPOptions configure a MISP poller. Engine, Store and Client are required.
type MISPOptions struct {
	Engine *Engine
	// Store is the engine's store (the poller keeps its cursor and each
	// event's attribute state there).
	Store  store.Store
	Client *misp.Client
	Config config.MISP
	// MaxPages bounds the pages of one pull (0: DefaultMISPMaxPages).
	MaxPages int
	Logger   *slog.Logger
}

// MISP keeps Rampart in step with a MISP instance: its feed list becomes
// the engine's "misp" feeds, and the IP attributes of its events become
// one source per event. Its methods are safe for concurrent use; attribute
// pulls and reconciles run one at a time.
type MISP struct {
	eng      *Engine
	st       store.Store
	client   *misp.Client
	cfg      config.MISP
	maxPages int
	log      *slog.Logger

	pullMu sync.Mutex // one attribute pull or reconcile at a time

	feedMu    sync.Mutex
	lastFeeds []misp.Feed
	feedsSet  bool
	lastNotes string
}

// MISPClientOptions maps the misp configuration onto the client's options.
func MISPClientOptions(cfg config.MISP) misp.ClientOptions {
	return misp.ClientOptions{
		URL:                cfg.URL,
		Key:                cfg.Key,
		InsecureSkipVerify: !cfg.VerifyTLS,
		CAFile:             cfg.CAFile,
		Timeout:            cfg.Timeout.Std(),
	}
}

// NewMISP returns a MISP poller; Register adds its jobs to the engine.
func NewMISP(opts MISPOptions) *MISP {
	def := config.Default().MISP
	if opts.Config.PollInterval <= 0 {
		opts.Config.PollInterval = def.PollInterval
	}
	if opts.Config.Attributes.PageSize <= 0 {
		opts.Config.Attributes.PageSize = def.Attributes.PageSize
	}
	if opts.Config.Attributes.Reconcile <= 0 {
		opts.Config.Attributes.Reconcile = def.Attributes.Reconcile
	}
	if len(opts.Config.Attributes.Types) == 0 {
		opts.Config.Attributes.Types = def.Attributes.Types
	}
	if opts.MaxPages <= 0 {
		opts.MaxPages = DefaultMISPMaxPages
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &MISP{
		eng: opts.Engine, st: opts.Store, client: opts.Client, cfg: opts.Config,
		maxPages: opts.MaxPages, log: opts.Logger.With("component", "ingest", "source", "misp"),
	}
}

// Register adds the poller's jobs to the engine: misp:feeds (when
// misp.feeds is on) and misp:attributes every poll interval, and
// misp:reconcile at misp.attributes.reconcile (when attributes are on).
func (m *MISP) Register() {
	every := m.cfg.PollInterval.Std()
	if m.cfg.Feeds {
		m.eng.AddJob(JobMISPFeeds, every, func(ctx context.Context) error {
			_, err := m.SyncFeeds(ctx)
			return err
		})
	}
	if m.cfg.Attributes.Enabled {
		m.eng.AddJob(JobMISPAttributes, every, func(ctx context.Context) error {
			_, err := m.PullAttributes(ctx)
			return err
		})
		m.eng.AddJob(JobMISPReconcile, m.cfg.Attributes.Reconcile.Std(), func(ctx context.Context) error {
			_, err := m.Reconcile(ctx)
			return err
		})
	}
}

// SyncFeeds reads MISP's feed list and makes its enabled feeds the
// engine's "misp" feeds (SetFeeds): a new or newly enabled feed starts
// syncing, a disabled or deleted one stops and its listings end. Feeds the
// engine cannot sync (input_source local, another source_format) stay in
// the set so that the engine's Feeds shows why they are skipped. On
// failure the previous set stays in force. It returns the number of
// enabled feeds.
func (m *MISP) SyncFeeds(ctx context.Context) (int, error) {
	recs, err := m.client.Feeds(ctx)
	if err != nil {
		return 0, fmt.Errorf("sync misp feeds: %w", err)
	}
	feeds := make([]misp.Feed, 0, len(recs))
	var notes []string
	for _, r := range recs {
		if !r.Enabled {
			continue
		}
		f, err := r.Feed()
		if err != nil {
			notes = append(notes, fmt.Sprintf("%q skipped: invalid settings", r.Name))
			continue
		}
		f.Origin = OriginMISP
		if reason := skipReason(f); reason != "" {
			notes = append(notes, fmt.Sprintf("%q %s", f.Name, reason))
		}
		feeds = append(feeds, f)
	}
	slices.SortFunc(feeds, func(a, b misp.Feed) int { return strings.Compare(a.Name, b.Name) })

	m.feedMu.Lock()
	defer m.feedMu.Unlock()
	if n := strings.Join(notes, "; "); n != m.lastNotes {
		if n != "" {
			m.log.Warn("MISP feeds not synced", "feeds", n)
		}
		m.lastNotes = n
	}
	if m.feedsSet && feedsEqual(m.lastFeeds, feeds) {
		return len(feeds), nil
	}
	m.eng.SetFeeds(OriginMISP, feeds)
	m.log.Info("MISP feed list applied", "enabled", len(feeds), "listed", len(recs))
	m.lastFeeds, m.feedsSet = feeds, true
	return len(feeds), nil
}

func feedsEqual(a, b []misp.Feed) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// AttributeReport is the outcome of one attribute pull or reconcile.
type AttributeReport struct {
	Full       bool          `json:"full"`
	Pages      int           `json:"pages"`
	Attributes int           `json:"attributes"`
	Malformed  int           `json:"malformed"`
	Events     int           `json:"events"` // events whose listings or state changed
	Added      int           `json:"added"`
	Removed    int           `json:"removed"`
	Cursor     int64         `json:"cursor"`
	Duration   time.Duration `json:"duration"`
}

// PullAttributes pulls the configured IP attribute types changed since the
// stored cursor, soft-deleted ones included, paged until a short page, and
// writes each touched event's change. The cursor is written last, so an
// interrupted pull is repeated, never skipped. A pull that finds nothing
// new writes nothing. Without a cursor it is a full pull of live
// attributes (without ending anything).
func (m *MISP) PullAttributes(ctx context.Context) (AttributeReport, error) {
	m.pullMu.Lock()
	defer m.pullMu.Unlock()
	start := time.Now()
	rep := AttributeReport{}
	cursor, err := m.cursor(ctx)
	if err != nil {
		return rep, fmt.Errorf("pull misp attributes: %w", err)
	}
	rep.Cursor = cursor
	q := misp.AttributeQuery{
		Types: m.cfg.Attributes.Types, Timestamp: cursor, IncludeEventTags: true, Limit: m.cfg.Attributes.PageSize,
	}
	if cursor > 0 {
		// Deletions and to_ids being cleared must be seen, so neither is
		// filtered by MISP on an incremental pull.
		q.Deleted = true
	} else {
		q.ToIDs = m.cfg.Attributes.ToIDsOnly
	}
	maxTS := cursor
	changed := false
	err = m.pages(ctx, q, &rep, func(page []misp.AttributeRecord) error {
		for _, a := range page {
			maxTS = max(maxTS, a.Timestamp)
		}
		c, err := m.applyBatch(ctx, page, false, &rep)
		changed = changed || c
		return err
	})
	if changed {
		if rerr := m.eng.rebuildAfterChange(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	rep.Duration = time.Since(start)
	if err != nil {
		return rep, fmt.Errorf("pull misp attributes: %w", err)
	}
	if maxTS != cursor {
		if err := m.st.Put(ctx, MISPCursorKey, strconv.FormatInt(maxTS, 10)); err != nil {
			return rep, fmt.Errorf("pull misp attributes: save cursor: %w", err)
		}
		rep.Cursor = maxTS
	}
	if changed {
		m.log.Info("MISP attributes pulled", "pages", rep.Pages, "attributes", rep.Attributes,
			"events", rep.Events, "added", rep.Added, "removed", rep.Removed, "cursor", rep.Cursor)
	}
	return rep, nil
}

// Reconcile pulls every live attribute of the configured types and makes
// the stored events match it exactly: attributes no longer present (events
// deleted in MISP, which incremental pulls cannot see) end their listings.
// Nothing is written unless the whole pull succeeded. A reconcile that
// finds no attribute at all while listings exist is held back
// (ErrSuspiciousPull) unless the previous reconcile found none either.
func (m *MISP) Reconcile(ctx context.Context) (AttributeReport, error) {
	m.pullMu.Lock()
	defer m.pullMu.Unlock()
	start := time.Now()
	rep := AttributeReport{Full: true}
	q := misp.AttributeQuery{
		Types: m.cfg.Attributes.Types, ToIDs: m.cfg.Attributes.ToIDsOnly, IncludeEventTags: true,
		Limit: m.cfg.Attributes.PageSize,
	}
	var all []misp.AttributeRecord
	var maxTS int64
	if err := m.pages(ctx, q, &rep, func(page []misp.AttributeRecord) error {
		for _, a := range page {
			maxTS = max(maxTS, a.Timestamp)
		}
		all = append(all, page...)
		return nil
	}); err != nil {
		return rep, fmt.Errorf("reconcile misp attributes: %w", err)
	}
	srcs, err := m.st.Sources(ctx)
	if err != nil {
		return rep, fmt.Errorf("reconcile misp attributes: %w", err)
	}
	seen := map[string]bool{}
	for _, a := range all {
		seen[a.EventID] = true
	}
	var gone []string
	listed := 0
	for _, s := range srcs {
		if s.Kind != store.KindMISPEvent || s.Meta["event_id"] == "" {
			continue
		}
		listed += s.Entries
		if !seen[s.Meta["event_id"]] && s.Entries > 0 {
			gone = append(gone, s.Meta["event_id"])
		}
	}
	if len(all) == 0 && listed > 0 {
		if prev, _ := m.st.Get(ctx, mispEmptyKey); prev != "1" {
			if err := m.st.Put(ctx, mispEmptyKey, "1"); err != nil {
				return rep, fmt.Errorf("reconcile misp attributes: %w", err)
			}
			return rep, fmt.Errorf("reconcile misp attributes: %w: MISP returned no attribute while %d are listed; accepted if the next reconcile agrees", ErrSuspiciousPull, listed)
		}
	} else if len(all) > 0 {
		if prev, _ := m.st.Get(ctx, mispEmptyKey); prev == "1" {
			_ = m.st.Put(ctx, mispEmptyKey, "0")
		}
	}
	changed, err := m.applyBatch(ctx, all, true, &rep)
	for _, id := range gone {
		if err != nil {
			break
		}
		var c bool
		c, err = m.applyEvent(ctx, id, nil, true, &rep)
		changed = changed || c
	}
	if changed {
		if rerr := m.eng.rebuildAfterChange(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	rep.Duration = time.Since(start)
	if err != nil {
		return rep, fmt.Errorf("reconcile misp attributes: %w", err)
	}
	if cur, cerr := m.cursor(ctx); cerr == nil && maxTS > cur {
		if err := m.st.Put(ctx, MISPCursorKey, strconv.FormatInt(maxTS, 10)); err != nil {
			return rep, fmt.Errorf("reconcile misp attributes: save cursor: %w", err)
		}
		rep.Cursor = maxTS
	}
	m.log.Info("MISP attributes reconciled", "attributes", rep.Attributes, "events", rep.Events,
		"added", rep.Added, "removed", rep.Removed)
	return rep, nil
}

// cursor returns the stored cursor, 0 when there is none.
func (m *MISP) cursor(ctx context.Context) (int64, error) {
	v, err := m.st.Get(ctx, MISPCursorKey)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, nil // a damaged cursor means a full pull, never a skipped one
	}
	return n, nil
}

// pages runs q page by page until a short page, calling fn with each.
func (m *MISP) pages(ctx context.Context, q misp.AttributeQuery, rep *AttributeReport, fn func([]misp.AttributeRecord) error) error {
	var prevFirst string
	for page := 1; ; page++ {
		if page > m.maxPages {
			return fmt.Errorf("%w: more than %d full pages of %d", ErrEndlessPages, m.maxPages, q.Limit)
		}
		q.Page = page
		recs, err := m.client.SearchAttributes(ctx, q)
		if err != nil {
			return err
		}
		rep.Pages++
		if len(recs) > 0 {
			first := recs[0].ID + "/" + recs[0].UUID + "/" + recs[len(recs)-1].ID
			if page > 1 && first == prevFirst {
				return fmt.Errorf("%w: page %d repeats page %d", ErrEndlessPages, page, page-1)
			}
			prevFirst = first
		}
		rep.Attributes += len(recs)
		if err := fn(recs); err != nil {
			return err
		}
		if len(recs) < q.Limit {
			return nil
		}
	}
}

// MISPProgress reports one step of SyncOnce.
type MISPProgress struct {
	Step   string          // "feeds", "feed", "attributes"
	Feeds  int             // enabled MISP feeds (step "feeds")
	Report Report          // one MISP feed's sync (step "feed")
	Pull   AttributeReport // step "attributes"
	Err    error
}

// SyncOnce runs the MISP side of `rampart sync` once: the feed list (when
// misp.feeds is on), a sync of each MISP feed, an attribute pull (when
// attributes are on) and an index rebuild. progress (may be nil) is called
// after each step. It returns every failure joined.
func (m *MISP) SyncOnce(ctx context.Context, progress func(MISPProgress)) error {
	if progress == nil {
		progress = func(MISPProgress) {}
	}
	var errs []error
	if m.cfg.Feeds {
		n, err := m.SyncFeeds(ctx)
		progress(MISPProgress{Step: "feeds", Feeds: n, Err: err})
		if err != nil {
			errs = append(errs, err)
		} else {
			for _, f := range m.eng.Feeds() {
				if f.Origin != OriginMISP || !f.Enabled {
					continue
				}
				rep, err := m.eng.SyncFeed(ctx, f.Name)
				progress(MISPProgress{Step: "feed", Report: rep, Err: err})
				if err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if m.cfg.Attributes.Enabled {
		rep, err := m.PullAttributes(ctx)
		progress(MISPProgress{Step: "attributes", Pull: rep, Err: err})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
