// Package sqlite is Rampart's embedded store: one SQLite file in data_dir,
// opened with the pure-Go modernc.org/sqlite driver, so the binary needs no
// C toolchain and no database server.
//
// The database runs in WAL mode with synchronous=NORMAL, so readers never
// wait for a sync and a sync commits without an fsync per transaction; a
// crash loses at most the last transactions, never consistency. Each Apply
// is one transaction: a failed or cancelled call rolls back completely.
//
// Prefixes are stored as netip.Prefix's binary form (4 or 16 address bytes
// followed by the prefix length), and listings are keyed by a small integer
// per source, so a feed of a million entries is a compact, clustered
// B-tree that loads and streams in about a second. The schema carries a
// version and is migrated forward on Open; a file written by a newer
// Rampart is refused rather than guessed at.
//
//	s, err := sqlite.Open(ctx, filepath.Join(dataDir, "rampart.db"), logger)
//	if err != nil { ... }
//	defer s.Close()
package sqlite
