package ingest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rampart-ip/rampart/reputation"
	"github.com/rampart-ip/rampart/store"
)

// Rebuild reads every source, current listing and ended episode within
// history retention from the store, builds a new index and swaps it into
// the Service. Queries keep being answered from the previous index while
// it builds. Without a Service it only reads the sources.
func (e *Engine) Rebuild(ctx context.Context) error {
	_, err := e.rebuildNow(ctx)
	return err
}

// rebuildNow rebuilds unconditionally and returns the number of listings.
func (e *Engine) rebuildNow(ctx context.Context) (int, error) {
	e.rbMu.Lock()
	defer e.rbMu.Unlock()
	seq := e.changeSeq.Load()
	n, err := e.build(ctx)
	if err != nil {
		return n, err
	}
	e.builtSeq = seq
	return n, nil
}

// rebuildAfterChange makes sure the index reflects every change made
// before the call. Callers that arrive while a rebuild runs wait for it
// and share the next one: N syncs finishing together cost at most two
// rebuilds, not N.
func (e *Engine) rebuildAfterChange(ctx context.Context) error {
	want := e.changeSeq.Load()
	e.rbMu.Lock()
	defer e.rbMu.Unlock()
	if e.builtSeq >= want {
		return nil // a rebuild that started after our change has finished
	}
	seq := e.changeSeq.Load()
	if _, err := e.build(ctx); err != nil {
		return err
	}
	e.builtSeq = seq
	return nil
}

// build reads the store and swaps in a new index. The caller holds rbMu.
func (e *Engine) build(ctx context.Context) (int, error) {
	start := time.Now()
	now := e.now()
	srcs, err := e.st.Sources(ctx)
	if err != nil {
		return 0, fmt.Errorf("rebuild index: %w", err)
	}
	total := 0
	for _, s := range srcs {
		total += s.Entries
	}
	if e.svc == nil {
		return total, nil
	}
	e.mu.Lock()
	infos := make([]reputation.SourceInfo, 0, len(srcs))
	for _, s := range srcs {
		var def *feedEntry
		if s.Kind == store.KindFeed {
			def = e.feeds[s.Name]
		}
		infos = append(infos, sourceInfo(s, def))
	}
	e.mu.Unlock()

	listings := make([]store.Listing, 0, total)
	if err := e.st.Listings(ctx, func(l store.Listing) error {
		listings = append(listings, l)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("rebuild index: %w", err)
	}
	var episodes []store.Episode
	if err := e.st.Episodes(ctx, now.Add(-e.hist.Retention.Std()), func(ep store.Episode) error {
		episodes = append(episodes, ep)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("rebuild index: %w", err)
	}
	read := time.Since(start)
	idx := reputation.Build(reputation.Data{Sources: infos, Listings: listings, Episodes: episodes},
		reputation.BuildOptions{Enricher: e.enricher, Warner: e.warner, Retention: e.hist.Retention.Std(), Now: e.now})
	e.svc.Swap(idx)
	e.log.Info("index rebuilt", "sources", len(infos), "listings", len(listings), "episodes", len(episodes),
		"entries", idx.Len(), "read", read.Round(time.Millisecond), "took", time.Since(start).Round(time.Millisecond))
	return len(listings), nil
}

// sourceInfo describes a stored source for the index: from its feed
// definition when there is one, else from what the source's Meta recorded
// (a retired feed's history, a MISP event's threat level and tags).
func sourceInfo(s store.Source, f *feedEntry) reputation.SourceInfo {
	info := reputation.SourceInfo{
		Name:        s.Name,
		Kind:        s.Kind,
		Provider:    s.Meta[metaProvider],
		Category:    s.Meta[metaCategory],
		Tags:        splitTags(s.Meta[metaTags]),
		ConfirmedAt: s.LastSuccess,
	}
	switch {
	case f != nil:
		info.Provider = f.def.Provider
		info.Category = f.def.Category
		info.Tags = f.def.Tags
		if f.def.Weight != nil {
			info.Weight = *f.def.Weight
		}
		info.Lifetime = f.def.Lifetime.Std()
	case s.Kind == store.KindMISPEvent:
		if info.Provider == "" {
			info.Provider = "MISP"
		}
		if tl, err := strconv.Atoi(s.Meta["threat_level"]); err == nil && tl >= 1 && tl <= 4 {
			info.ThreatLevel = tl
		}
	}
	return info
}

func splitTags(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
