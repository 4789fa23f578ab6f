// Package ingest is Rampart's sync engine: it keeps the store's listings in
// step with the feeds and MISP sources, and the reputation index in step
// with the store.
//
// An Engine holds the feed definitions by origin ("config", "catalog",
// "feeds_file", "misp"; SetFeeds replaces one origin's set). SyncFeed fetches
// one feed with its stored fetch state (ETag, Last-Modified, content hash),
// diffs the sorted result against the feed's current listings with a merge
// walk, writes only the change (store.Apply), records the new fetch state
// and rebuilds the index. An unchanged feed costs one source write and no
// listing writes. A failed fetch or parse writes no listings: the last good
// pull stays in force and the failure is recorded in the source's LastError,
// shown by Feeds and logged.
//
// Rebuilds are coalesced: callers that finish a sync while a rebuild is
// running wait for one more rebuild that covers all of them, never one each.
// A rebuild reads the store into a new immutable reputation.Index and swaps
// it into the Service; queries keep using the old index until the swap.
//
// A pull that would empty a listed feed, or shrink a feed of at least
// SuspiciousMinEntries listings to under a tenth of them, is held back as
// suspicious (ErrSuspiciousPull: an error page served with status 200, a
// truncated mirror). It is accepted when the same content is pulled twice
// in a row, so a list that really shrank takes effect one refresh later. A
// body with malformed lines and no valid entry is never accepted, and
// neither is one that would empty a listed feed with more than one data line
// (not blank, not a comment) and no address: a list that really emptied
// holds at most a header row.
//
// Run schedules every periodic task with gocron: one job per enabled feed
// at its refresh interval, history:purge daily and history:rescore hourly,
// plus jobs registered with AddJob (the MISP poller's). Jobs run in
// singleton mode with a jittered start and stop when Run's context ends.
//
// Usage:
//
//	eng := ingest.NewEngine(ingest.EngineOptions{Store: st, Service: svc, Sync: cfg.Sync, History: cfg.History, Logger: log})
//	eng.SetFeeds("config", cfg.Feeds)
//	if err := eng.Start(ctx); err != nil { ... } // index from the store
//	err := eng.Run(ctx)                           // initial sync, then schedules, until ctx ends
package ingest
