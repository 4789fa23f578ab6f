package ingest

import (
	"context"
	"fmt"
	"time"
)

// Names of the engine's own history jobs.
const (
	JobPurge   = "history:purge"
	JobRescore = "history:rescore"
)

// addHistoryJobs registers the daily purge and the hourly rescore.
func (e *Engine) addHistoryJobs() {
	// The purge runs soon after start, then daily, so that a process
	// restarted more often than daily still purges.
	e.jobs.add(&job{name: JobPurge, every: 24 * time.Hour, leader: true, fn: func(ctx context.Context) error {
		_, err := e.Purge(ctx)
		return err
	}})
	// Scores decay at query time, so re-scoring needs no writes; the
	// rebuild refreshes what the index computes once (the sources'
	// last-confirmed times, neighbourhood context, enrichment) and drops
	// episodes that left retention. Start has just built the index, so the
	// first rescore waits one interval.
	e.jobs.add(&job{name: JobRescore, every: time.Hour, delayed: true, fn: e.Rebuild})
}

// Purge deletes ended episodes older than history retention (by the
// engine's clock) and, if it deleted any, rebuilds the index. It returns
// how many it deleted.
func (e *Engine) Purge(ctx context.Context) (int64, error) {
	before := e.now().Add(-e.hist.Retention.Std())
	n, err := e.st.PurgeEpisodes(ctx, before)
	if err != nil {
		return 0, fmt.Errorf("purge history: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	e.log.Info("history purged", "episodes", n, "before", before)
	if err := e.Rebuild(ctx); err != nil {
		return n, fmt.Errorf("purge history: %w", err)
	}
	return n, nil
}
