package ingest

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rampart-ip/rampart/misp"
	"github.com/rampart-ip/rampart/store"
)

// Feed origins, in order of precedence: when two origins define the same
// feed name, the one earlier in this list keeps it.
const (
	OriginConfig    = "config"
	OriginCatalog   = "catalog"
	OriginFeedsFile = "feeds_file"
	OriginMISP      = "misp"
)

var originOrder = []string{OriginConfig, OriginCatalog, OriginFeedsFile, OriginMISP}

// FeedStatus is one feed's definition and sync state, as /api/v1/feeds and
// `rampart feeds` show it. URL has credentials and secret query values
// redacted.
type FeedStatus struct {
	Name     string `json:"name"`
	Provider string `json:"provider"`
	URL      string `json:"url"`
	Format   string `json:"source_format"`
	Origin   string `json:"origin"`
	// Enabled reports whether Rampart syncs the feed: enabled in its
	// definition and not skipped (Note says why it is skipped).
	Enabled     bool      `json:"enabled"`
	Entries     int       `json:"entries"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastError   string    `json:"last_error"`
	Note        string    `json:"note,omitempty"`
}

// feedEntry is one resolved feed definition.
type feedEntry struct {
	def    misp.Feed
	active bool   // enabled and not skipped: synced
	note   string // why it is not synced
}

// SetFeeds replaces the feed definitions of one origin. Feeds that are new
// or newly enabled start syncing (under Run, right away); feeds that are
// gone or disabled stop, and their listings end (move to history) under
// Run right away, otherwise at the next SyncAll or Start. A name already
// defined by an origin of higher precedence is skipped and logged.
func (e *Engine) SetFeeds(origin string, feeds []misp.Feed) {
	e.mu.Lock()
	e.origins[origin] = slices.Clone(feeds)
	e.setOrigins[origin] = true
	e.resolveLocked()
	sched := e.feedSchedulesLocked()
	e.mu.Unlock()
	e.jobs.setFeeds(e, sched)
	e.wake()
}

// resolveLocked rebuilds e.feeds from e.origins.
func (e *Engine) resolveLocked() {
	origins := make([]string, 0, len(e.origins))
	for o := range e.origins {
		origins = append(origins, o)
	}
	slices.SortFunc(origins, func(a, b string) int {
		ia, ib := slices.Index(originOrder, a), slices.Index(originOrder, b)
		if ia < 0 {
			ia = len(originOrder)
		}
		if ib < 0 {
			ib = len(originOrder)
		}
		return cmp.Or(cmp.Compare(ia, ib), cmp.Compare(a, b))
	})
	feeds := map[string]*feedEntry{}
	var dups []feedEntry
	for _, o := range origins {
		for _, f := range e.origins[o] {
			f.Origin = o
			if f.Name == "" {
				e.log.Warn("feed without a name skipped", "origin", o, "url", redactURL(f.URL))
				continue
			}
			if prev, ok := feeds[f.Name]; ok {
				note := fmt.Sprintf("skipped: name already defined by origin %s", prev.def.Origin)
				if prev.def.Origin == o {
					note = "skipped: name defined twice in origin " + o
				}
				dups = append(dups, feedEntry{def: f, note: note})
				if old := e.findDup(f); !old {
					e.log.Warn("duplicate feed name skipped", "feed", f.Name, "origin", o, "kept_origin", prev.def.Origin)
				}
				continue
			}
			note := skipReason(f)
			if note == "" && !f.Enabled {
				note = "disabled"
			}
			active := note == ""
			feeds[f.Name] = &feedEntry{def: f, active: active, note: note}
			if active {
				delete(e.checked, f.Name)
			}
		}
	}
	e.feeds, e.dups = feeds, dups
}

// findDup reports whether the same duplicate was already known (so that it
// is logged once, not on every SetFeeds).
func (e *Engine) findDup(f misp.Feed) bool {
	for _, d := range e.dups {
		if d.def.Name == f.Name && d.def.Origin == f.Origin {
			return true
		}
	}
	return false
}

// skipReason says why a definition cannot be synced, or "".
func skipReason(f misp.Feed) string {
	switch f.SourceFormat {
	case misp.FormatFreetext, misp.FormatCSV, misp.FormatMISP:
	default:
		return fmt.Sprintf("skipped: unsupported source_format %q", f.SourceFormat)
	}
	if strings.TrimSpace(f.URL) == "" {
		return "skipped: no url"
	}
	if f.Origin == OriginMISP {
		// A MISP feed's local input is a path on the MISP host; reading it
		// here would let a MISP admin read this host's files.
		if f.InputSource == "local" {
			return "skipped: input_source local (a path on the MISP host)"
		}
		u, err := url.Parse(f.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return "skipped: a feed from MISP must have an http or https url"
		}
	}
	return ""
}

// feedSchedulesLocked returns the refresh interval of every active feed.
func (e *Engine) feedSchedulesLocked() map[string]time.Duration {
	out := make(map[string]time.Duration, len(e.feeds))
	for name, f := range e.feeds {
		if !f.active {
			continue
		}
		every := f.def.Refresh.Std()
		if every <= 0 {
			every = e.syncCfg.Interval.Std()
		}
		out[name] = every
	}
	return out
}

// activeDef returns the definition of an active feed.
func (e *Engine) activeDef(name string) (misp.Feed, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f, ok := e.feeds[name]
	if !ok {
		return misp.Feed{}, fmt.Errorf("sync feed %q: %w", name, ErrUnknownFeed)
	}
	if !f.active {
		return misp.Feed{}, fmt.Errorf("sync feed %q: %w (%s)", name, ErrFeedInactive, f.note)
	}
	return f.def, nil
}

// activeNames returns the names of the active feeds, sorted.
func (e *Engine) activeNames() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var names []string
	for name, f := range e.feeds {
		if f.active {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Feeds returns every defined feed with its sync state, ordered by name
// (skipped duplicates after the definition that holds the name).
func (e *Engine) Feeds() []FeedStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]FeedStatus, 0, len(e.feeds)+len(e.dups))
	add := func(f feedEntry, withState bool) {
		fs := FeedStatus{
			Name:     f.def.Name,
			Provider: f.def.Provider,
			URL:      redactURL(f.def.URL),
			Format:   f.def.SourceFormat,
			Origin:   f.def.Origin,
			Enabled:  f.active,
			Note:     f.note,
		}
		if s, ok := e.status[f.def.Name]; ok && withState {
			fs.Entries = s.Entries
			fs.LastAttempt = s.LastAttempt
			fs.LastSuccess = s.LastSuccess
			fs.LastError = s.LastError
		}
		out = append(out, fs)
	}
	for _, f := range e.feeds {
		add(*f, true)
	}
	for _, f := range e.dups {
		add(f, false)
	}
	// Stable by name: the definition holding a name comes before the
	// duplicates skipped for it, which keep their precedence order.
	slices.SortStableFunc(out, func(a, b FeedStatus) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// LoadState reads every feed's stored sync state (entries, last attempt,
// last success, last error) for Feeds, without loading the index or
// changing the store, for tools that only report. Start does it as well.
func (e *Engine) LoadState(ctx context.Context) error {
	srcs, err := e.st.Sources(ctx)
	if err != nil {
		return fmt.Errorf("load feed state: %w", err)
	}
	e.mu.Lock()
	for _, s := range srcs {
		if _, ok := e.status[s.Name]; !ok {
			e.status[s.Name] = s
		}
	}
	e.mu.Unlock()
	return nil
}

// retireInactive ends the listings of stored feeds that are no longer
// synced: disabled, skipped or no longer defined. A stored feed whose
// origin is MISP is only retired once MISP's feed list has been set, so
// that a restart does not end (and the first poll re-open) every MISP
// feed's listings.
func (e *Engine) retireInactive(ctx context.Context) error {
	e.mu.Lock()
	if !e.started {
		e.mu.Unlock()
		return nil
	}
	var names []string
	for name, src := range e.status {
		if src.Kind != store.KindFeed || e.checked[name] {
			continue
		}
		f, defined := e.feeds[name]
		if defined && f.active {
			continue
		}
		if origin := src.Meta[metaOrigin]; !defined && origin == OriginMISP && !e.setOrigins[origin] {
			continue
		}
		names = append(names, name)
	}
	e.mu.Unlock()
	slices.Sort(names)
	for _, name := range names {
		if err := e.retire(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// retire ends every listing of one feed and marks it retired.
func (e *Engine) retire(ctx context.Context, name string) error {
	lk := e.lockFor(name)
	lk.Lock()
	defer lk.Unlock()
	e.mu.Lock()
	f, ok := e.feeds[name]
	e.mu.Unlock()
	if ok && f.active {
		return nil // re-enabled meanwhile
	}
	cur, err := e.st.SourceListings(ctx, name)
	if err != nil {
		return fmt.Errorf("retire feed %q: %w", name, err)
	}
	if len(cur) > 0 {
		if err := e.st.Apply(ctx, name, store.Change{Removed: cur}, e.now()); err != nil {
			return fmt.Errorf("retire feed %q: %w", name, err)
		}
		e.changeSeq.Add(1)
	}
	src, err := e.st.Source(ctx, name)
	if err != nil {
		return fmt.Errorf("retire feed %q: %w", name, err)
	}
	// The fetch state goes with the listings: kept, it would make the next
	// pull of a feed that comes back "not modified" or "unchanged", and its
	// listings would stay ended.
	if src.Entries != 0 || src.ETag != "" || src.LastModified != "" || src.ContentHash != "" || src.Meta[metaSuspect] != "" {
		src.Entries = 0
		src.ETag, src.LastModified, src.ContentHash = "", "", ""
		delete(src.Meta, metaSuspect)
		if err := e.put(ctx, src); err != nil {
			return fmt.Errorf("retire feed %q: %w", name, err)
		}
	}
	e.mu.Lock()
	e.status[name] = src
	e.checked[name] = true
	e.mu.Unlock()
	if len(cur) > 0 {
		e.log.Info("feed no longer synced, listings ended", "feed", name, "ended", len(cur))
	}
	return nil
}

// feedMeta returns meta (copied) with the feed's definition recorded, so
// that its history keeps provider and category after the definition is gone.
func feedMeta(meta map[string]string, def misp.Feed) map[string]string {
	out := make(map[string]string, len(meta)+4)
	for k, v := range meta {
		out[k] = v
	}
	set := func(k, v string) {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	set(metaOrigin, def.Origin)
	set(metaProvider, def.Provider)
	set(metaCategory, def.Category)
	set(metaTags, strings.Join(def.Tags, ","))
	return out
}

// secretWords mark query parameters and headers whose values are secrets.
var secretWords = []string{"key", "token", "secret", "pass", "auth", "sig", "cred", "session"}

func isSecretName(name string) bool {
	name = strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

const redacted = "REDACTED"

// redactURL removes userinfo and secret query values from a feed URL.
// Paths that are not URLs are returned as they are.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid url)"
	}
	if u.User != nil {
		u.User = url.User(redacted)
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			k, _, _ := strings.Cut(p, "=")
			if uk, err := url.QueryUnescape(k); err == nil && isSecretName(uk) {
				parts[i] = k + "=" + redacted
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return u.String()
}

// redactIn replaces the secrets of a feed URL (userinfo, secret query
// values) in msg, in whatever form an error message quotes the URL.
func redactIn(msg, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return strings.ReplaceAll(msg, raw, "(invalid url)")
	}
	var secrets []string
	if u.User != nil {
		secrets = append(secrets, u.User.Username())
		if p, ok := u.User.Password(); ok {
			secrets = append(secrets, p)
		}
	}
	for k, vs := range u.Query() {
		if isSecretName(k) {
			secrets = append(secrets, vs...)
		}
	}
	for _, s := range secrets {
		if len(s) < 3 {
			continue // too short to replace without mangling the message
		}
		msg = strings.ReplaceAll(msg, s, redacted)
		msg = strings.ReplaceAll(msg, url.QueryEscape(s), redacted)
	}
	return msg
}
