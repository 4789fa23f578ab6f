package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode"

	"github.com/rampart-ip/rampart/misp"
	"github.com/rampart-ip/rampart/store"
)

// OriginAPI is the origin of feeds defined through the admin API. It comes
// after every other origin in precedence, but AddFeed refuses a name that
// another origin defines, so an API feed never shadows or is shadowed.
const OriginAPI = "api"

// APIFeedsKey is the store key holding the feeds defined through the admin
// API, as a JSON document, so that they survive a restart.
const APIFeedsKey = "feeds:api"

// maxAPIFeeds bounds the feeds the admin API may define.
const maxAPIFeeds = 1000

// maxFeedName bounds a feed name given through the admin API.
const maxFeedName = 200

// apiFeedsLock names the engine lock that serialises admin feed changes.
// Feed names cannot hold control characters (checkAPIFeed), so it cannot
// collide with a feed's own lock.
const apiFeedsLock = "\x00admin feeds"

// Errors returned by the admin feed methods.
var (
	// ErrFeedExists is returned by AddFeed for a name that is taken.
	ErrFeedExists = errors.New("feed already defined")
	// ErrFeedNotEditable is returned for a feed that another origin (the
	// config file, the catalog, a feeds file, MISP) defines: it is changed
	// where it is defined, not through the API.
	ErrFeedNotEditable = errors.New("feed is not defined through the api")
	// ErrInvalidFeed is returned for a definition that does not validate;
	// it joins every problem, each wrapping misp.ErrFeed.
	ErrInvalidFeed = errors.New("invalid feed")
)

// apiFeedsDoc is the stored document under APIFeedsKey.
type apiFeedsDoc struct {
	Version int         `json:"version"`
	Feeds   []misp.Feed `json:"feeds"`
}

// LoadAPIFeeds reads the feeds defined through the admin API from the store
// and sets them as origin "api". Call it before Start, so that Start does
// not take them for removed feeds and end their listings. A store without
// the key has no API feeds.
func (e *Engine) LoadAPIFeeds(ctx context.Context) error {
	lk := e.lockFor(apiFeedsLock)
	lk.Lock()
	defer lk.Unlock()
	feeds, err := e.readAPIFeeds(ctx)
	if err != nil {
		return fmt.Errorf("load api feeds: %w", err)
	}
	e.SetFeeds(OriginAPI, feeds)
	return nil
}

// AddFeed defines a new feed of origin "api", stores it and starts syncing
// it (under Run, right away). It returns the feed's status. A name that
// any origin defines is ErrFeedExists; a definition that does not validate
// is ErrInvalidFeed.
func (e *Engine) AddFeed(ctx context.Context, f misp.Feed) (FeedStatus, error) {
	f.Origin = ""
	if err := checkAPIFeed(f); err != nil {
		return FeedStatus{}, fmt.Errorf("add feed %q: %w", f.Name, err)
	}
	lk := e.lockFor(apiFeedsLock)
	lk.Lock()
	defer lk.Unlock()
	if origin, ok := e.feedOrigin(f.Name); ok {
		return FeedStatus{}, fmt.Errorf("add feed %q: %w by origin %s", f.Name, ErrFeedExists, origin)
	}
	feeds := e.apiFeeds()
	if len(feeds) >= maxAPIFeeds {
		return FeedStatus{}, fmt.Errorf("add feed %q: %w: at most %d feeds may be defined through the api", f.Name, ErrInvalidFeed, maxAPIFeeds)
	}
	feeds = append(feeds, f)
	if err := e.setAPIFeeds(ctx, feeds); err != nil {
		return FeedStatus{}, fmt.Errorf("add feed %q: %w", f.Name, err)
	}
	e.log.Info("feed added through the api", "feed", f.Name, "url", redactURL(f.URL))
	return e.feedStatus(f.Name), nil
}

// ReplaceFeed replaces the definition of a feed of origin "api". f.Name
// must be empty or name. The feed keeps its listings and history; if the
// new definition is disabled its listings end. An unknown name is
// ErrUnknownFeed, a feed of another origin ErrFeedNotEditable.
func (e *Engine) ReplaceFeed(ctx context.Context, name string, f misp.Feed) (FeedStatus, error) {
	f.Origin = ""
	if f.Name == "" {
		f.Name = name
	}
	if f.Name != name {
		return FeedStatus{}, fmt.Errorf("replace feed %q: %w: name: %q differs from the feed replaced (renaming is not supported)", name, ErrInvalidFeed, f.Name)
	}
	if err := checkAPIFeed(f); err != nil {
		return FeedStatus{}, fmt.Errorf("replace feed %q: %w", name, err)
	}
	lk := e.lockFor(apiFeedsLock)
	lk.Lock()
	defer lk.Unlock()
	feeds, i, err := e.apiFeedIndex(name)
	if err != nil {
		return FeedStatus{}, fmt.Errorf("replace feed %q: %w", name, err)
	}
	changed := !reflect.DeepEqual(feeds[i], f)
	feeds[i] = f
	if changed {
		// The stored fetch state belongs to the old definition: kept, a
		// feed whose settings changed but whose content did not would be
		// "unchanged" and never parsed with the new settings.
		if err := e.resetFetchState(ctx, name); err != nil {
			return FeedStatus{}, fmt.Errorf("replace feed %q: %w", name, err)
		}
	}
	if err := e.setAPIFeeds(ctx, feeds); err != nil {
		return FeedStatus{}, fmt.Errorf("replace feed %q: %w", name, err)
	}
	if changed {
		e.jobs.runSoon(feedJobPrefix + name)
	}
	e.log.Info("feed replaced through the api", "feed", name, "url", redactURL(f.URL))
	return e.feedStatus(name), nil
}

// DeleteFeed removes a feed of origin "api". Its listings end (move to
// history) before DeleteFeed returns when the engine has started and
// leads the store; its history stays. An unknown name is ErrUnknownFeed, a
// feed of another origin ErrFeedNotEditable.
func (e *Engine) DeleteFeed(ctx context.Context, name string) error {
	lk := e.lockFor(apiFeedsLock)
	lk.Lock()
	defer lk.Unlock()
	feeds, i, err := e.apiFeedIndex(name)
	if err != nil {
		return fmt.Errorf("delete feed %q: %w", name, err)
	}
	feeds = slices.Delete(feeds, i, i+1)
	if err := e.setAPIFeeds(ctx, feeds); err != nil {
		return fmt.Errorf("delete feed %q: %w", name, err)
	}
	e.log.Info("feed deleted through the api", "feed", name)
	return nil
}

// checkAPIFeed validates a definition given through the API: the feed's
// own rules and a name that is short and printable (it names the feed in
// URLs, logs and the store).
func checkAPIFeed(f misp.Feed) error {
	errs := f.Validate()
	switch {
	case len(f.Name) > maxFeedName:
		errs = append(errs, fmt.Errorf("name: %w: longer than %d bytes", misp.ErrFeed, maxFeedName))
	case strings.ContainsFunc(f.Name, func(r rune) bool { return unicode.IsControl(r) || r == '/' }):
		errs = append(errs, fmt.Errorf("name: %w: must not contain control characters or '/'", misp.ErrFeed))
	case f.Name != strings.TrimSpace(f.Name):
		errs = append(errs, fmt.Errorf("name: %w: must not start or end with spaces", misp.ErrFeed))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidFeed, errors.Join(errs...))
}

// feedOrigin returns the origin that defines name, if any: the one holding
// the name, or, for a name only a skipped duplicate uses, that one's.
func (e *Engine) feedOrigin(name string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f, ok := e.feeds[name]; ok {
		return f.def.Origin, true
	}
	for _, d := range e.dups {
		if d.def.Name == name {
			return d.def.Origin, true
		}
	}
	return "", false
}

// apiFeeds returns a copy of the API origin's definitions.
func (e *Engine) apiFeeds() []misp.Feed {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.origins[OriginAPI])
}

// apiFeedIndex returns the API feeds and the index of name among them, or
// an error saying why name cannot be changed through the API.
func (e *Engine) apiFeedIndex(name string) ([]misp.Feed, int, error) {
	feeds := e.apiFeeds()
	i := slices.IndexFunc(feeds, func(f misp.Feed) bool { return f.Name == name })
	origin, defined := e.feedOrigin(name)
	switch {
	case defined && origin != OriginAPI:
		where := "origin " + origin
		if origin == OriginConfig {
			where = "the config file"
		}
		return nil, -1, fmt.Errorf("%w: it comes from %s; change it there", ErrFeedNotEditable, where)
	case i < 0:
		return nil, -1, ErrUnknownFeed
	}
	return feeds, i, nil
}

// setAPIFeeds stores feeds as the API origin's definitions, then sets
// them. The caller holds the admin feeds lock. On a failed write nothing
// changes. Feeds gone or disabled have their listings ended here when the
// engine has started and leads; a running engine would do it soon anyway,
// but the caller's answer should mean it is done.
func (e *Engine) setAPIFeeds(ctx context.Context, feeds []misp.Feed) error {
	for i := range feeds {
		feeds[i].Origin = ""
	}
	b, err := json.Marshal(apiFeedsDoc{Version: 1, Feeds: feeds})
	if err != nil {
		return fmt.Errorf("encode api feeds: %w", err)
	}
	if err := e.st.Put(ctx, APIFeedsKey, string(b)); err != nil {
		return fmt.Errorf("store api feeds: %w", err)
	}
	e.SetFeeds(OriginAPI, feeds)
	e.mu.Lock()
	started := e.started
	e.mu.Unlock()
	if !started || !e.Leader() {
		return nil
	}
	if err := e.retireInactive(ctx); err != nil {
		return err
	}
	if err := e.rebuildAfterChange(ctx); err != nil {
		return err
	}
	e.publish(ctx)
	return nil
}

// readAPIFeeds reads the stored API feeds.
func (e *Engine) readAPIFeeds(ctx context.Context) ([]misp.Feed, error) {
	v, err := e.st.Get(ctx, APIFeedsKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var doc apiFeedsDoc
	if err := json.Unmarshal([]byte(v), &doc); err != nil {
		return nil, fmt.Errorf("decode %s: %w", APIFeedsKey, err)
	}
	if doc.Version != 1 {
		return nil, fmt.Errorf("decode %s: unknown version %d", APIFeedsKey, doc.Version)
	}
	for i := range doc.Feeds {
		doc.Feeds[i].Origin = ""
	}
	return doc.Feeds, nil
}

// feedStatus returns the status of one feed, as Feeds reports it.
func (e *Engine) feedStatus(name string) FeedStatus {
	for _, f := range e.Feeds() {
		if f.Name == name {
			return f
		}
	}
	return FeedStatus{Name: name}
}

// resetFetchState forgets a feed's ETag, Last-Modified and content hash,
// so that its next sync fetches and parses in full. Its listings stay.
func (e *Engine) resetFetchState(ctx context.Context, name string) error {
	lk := e.lockFor(name)
	lk.Lock()
	defer lk.Unlock()
	src, err := e.st.Source(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reset fetch state: %w", err)
	}
	if src.ETag == "" && src.LastModified == "" && src.ContentHash == "" {
		return nil
	}
	src.ETag, src.LastModified, src.ContentHash = "", "", ""
	if err := e.put(ctx, src); err != nil {
		return fmt.Errorf("reset fetch state: %w", err)
	}
	return nil
}

// runSoon reschedules a scheduled job to run within moments (the jitter
// of a new job) instead of at its next interval: a feed whose definition
// changed is fetched with the new one right away. Without a scheduler it
// does nothing (Run's first sync covers the job).
func (t *jobTable) runSoon(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	j, ok := t.jobs[name]
	if !ok || t.sched == nil {
		return
	}
	t.unscheduleLocked(j)
	j.delayed = false
	t.scheduleLocked(j)
}
