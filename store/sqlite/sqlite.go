package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/rampart-ip/rampart/store"
)

// ErrNewerSchema is returned by Open when the file was written by a newer
// version of Rampart whose schema this one does not know.
var ErrNewerSchema = errors.New("database schema is newer than this program")

// Store is the SQLite implementation of store.Store. It is safe for
// concurrent use.
type Store struct {
	db     *sql.DB
	logger *slog.Logger
}

var _ store.Store = (*Store)(nil)

// migrations are applied in order; migrations[i] takes the schema from
// version i to i+1. Never edit one that has shipped: append a new one.
var migrations = []string{
	// 1: the first schema.
	`
CREATE TABLE sources (
	name          TEXT PRIMARY KEY,
	kind          TEXT NOT NULL,
	etag          TEXT NOT NULL,
	last_modified TEXT NOT NULL,
	content_hash  TEXT NOT NULL,
	last_attempt  INTEGER NOT NULL, -- Unix milliseconds
	last_success  INTEGER NOT NULL,
	last_error    TEXT NOT NULL,
	entries       INTEGER NOT NULL,
	meta          TEXT NOT NULL     -- JSON object
) WITHOUT ROWID;

-- Listing keys: a small integer per source name keeps the listing rows and
-- their primary key short. A name gets an id on its first Apply, whether or
-- not its state was ever stored in sources.
CREATE TABLE source_ids (
	id   INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE
);

-- Current listings (open episodes). prefix is netip.Prefix's binary form.
CREATE TABLE listings (
	source_id INTEGER NOT NULL REFERENCES source_ids (id),
	prefix    BLOB NOT NULL,
	since     INTEGER NOT NULL,
	PRIMARY KEY (source_id, prefix)
) WITHOUT ROWID;

-- Ended episodes.
CREATE TABLE episodes (
	source_id INTEGER NOT NULL REFERENCES source_ids (id),
	prefix    BLOB NOT NULL,
	started   INTEGER NOT NULL,
	ended     INTEGER NOT NULL
);
CREATE INDEX episodes_ended ON episodes (ended);

CREATE TABLE kv (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
`,
}

// Open opens or creates the database file at path and migrates its schema
// to the current version.
func Open(ctx context.Context, path string, logger *slog.Logger) (*Store, error) {
	// The driver splits the DSN at the first '?' and takes what follows as
	// parameters; a path with one would be silently cut short.
	if path == "" || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("open sqlite store: invalid path %q", path)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// A bigger page cache keeps a million-row B-tree in memory during a
	// load (negative means KiB).
	q.Add("_pragma", "cache_size(-65536)")
	// Writers take the write lock at BEGIN, so two writers queue on
	// busy_timeout instead of failing to upgrade a read lock.
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	// Connections hold the page cache; keep a few alive instead of
	// reopening them.
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(0)
	s := &Store{db: db, logger: logger.With("component", "store/sqlite")}
	if err := s.migrate(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open sqlite store %s: %w", path, err), db.Close())
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var version int
	switch err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&version); {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	case err != nil:
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("migrate: version %d, known up to %d: %w", version, len(migrations), ErrNewerSchema)
	}
	for v := version; v < len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, len(migrations)); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if version < len(migrations) {
		s.logger.Info("schema migrated", "from", version, "to", len(migrations))
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close sqlite store: %w", err)
	}
	return nil
}

// millis and fromMillis convert times to the stored Unix milliseconds.
// Every time.Time, the zero one included, fits in an int64 of milliseconds.
func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time {
	t := time.UnixMilli(ms).UTC()
	if t.IsZero() {
		return time.Time{}
	}
	return t
}

const sourceColumns = `name, kind, etag, last_modified, content_hash, last_attempt, last_success, last_error, entries, meta`

func scanSource(row interface{ Scan(...any) error }) (store.Source, error) {
	var (
		src              store.Source
		attempt, success int64
		meta             string
	)
	if err := row.Scan(&src.Name, &src.Kind, &src.ETag, &src.LastModified, &src.ContentHash,
		&attempt, &success, &src.LastError, &src.Entries, &meta); err != nil {
		return store.Source{}, err
	}
	src.LastAttempt, src.LastSuccess = fromMillis(attempt), fromMillis(success)
	if meta != "" && meta != "{}" && meta != "null" {
		if err := json.Unmarshal([]byte(meta), &src.Meta); err != nil {
			return store.Source{}, fmt.Errorf("source %q meta: %w", src.Name, err)
		}
	}
	return src, nil
}

// Sources returns every stored source, ordered by name.
func (s *Store) Sources(ctx context.Context) ([]store.Source, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sourceColumns+` FROM sources ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	defer rows.Close()
	var out []store.Source
	for rows.Next() {
		src, err := scanSource(rows)
		if err != nil {
			return nil, fmt.Errorf("list sources: %w", err)
		}
		out = append(out, src)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	return out, nil
}

// Source returns one source, or store.ErrNotFound.
func (s *Store) Source(ctx context.Context, name string) (store.Source, error) {
	src, err := scanSource(s.db.QueryRowContext(ctx, `SELECT `+sourceColumns+` FROM sources WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Source{}, fmt.Errorf("get source %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return store.Source{}, fmt.Errorf("get source %q: %w", name, err)
	}
	return src, nil
}

// PutSource creates or replaces a source's state.
func (s *Store) PutSource(ctx context.Context, src store.Source) error {
	if src.Name == "" {
		return errors.New("put source: empty name")
	}
	meta := "{}"
	if len(src.Meta) > 0 {
		b, err := json.Marshal(src.Meta)
		if err != nil {
			return fmt.Errorf("put source %q: %w", src.Name, err)
		}
		meta = string(b)
	}
	_, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO sources (`+sourceColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		src.Name, src.Kind, src.ETag, src.LastModified, src.ContentHash,
		millis(src.LastAttempt), millis(src.LastSuccess), src.LastError, src.Entries, meta)
	if err != nil {
		return fmt.Errorf("put source %q: %w", src.Name, err)
	}
	return nil
}

// Get returns the value stored under key, or store.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("get key %q: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("get key %q: %w", key, err)
	}
	return v, nil
}

// Put stores value under key.
func (s *Store) Put(ctx context.Context, key, value string) error {
	if _, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)`, key, value); err != nil {
		return fmt.Errorf("put key %q: %w", key, err)
	}
	return nil
}
