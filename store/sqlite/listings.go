package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/rampart-ip/rampart/store"
)

// batch is how many prefixes one statement writes. Multi-row statements
// cut the per-statement cost of database/sql and the driver, which
// dominates a load of a million small rows; SQLite allows up to 32766
// parameters per statement.
const batch = 1000

// encodePrefixes returns each prefix's stored key (the binary form of the
// masked prefix), all sharing one backing array. It rejects invalid
// prefixes, so that Apply fails before it writes anything.
func encodePrefixes(ps []netip.Prefix) ([][]byte, error) {
	size := 0
	for i, p := range ps {
		if !p.IsValid() {
			return nil, fmt.Errorf("prefix %d (%s): invalid", i, p)
		}
		size += p.Addr().BitLen()/8 + 1
	}
	buf := make([]byte, 0, size)
	keys := make([][]byte, len(ps))
	for i, p := range ps {
		start := len(buf)
		buf, _ = p.Masked().AppendBinary(buf) // cannot fail: p is valid and has no zone
		keys[i] = buf[start:len(buf):len(buf)]
	}
	return keys, nil
}

func decodePrefix(b []byte) (netip.Prefix, error) {
	var p netip.Prefix
	if (len(b) != 5 && len(b) != 17) || p.UnmarshalBinary(b) != nil || !p.IsValid() {
		return netip.Prefix{}, fmt.Errorf("corrupt stored prefix %x", b)
	}
	return p, nil
}

// rowsSQL returns head followed by n copies of row, comma-separated, with
// the "$" in row replaced by the next numbered parameter from first on.
func rowsSQL(head, row string, first, n int) string {
	var b strings.Builder
	b.WriteString(head)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strings.Replace(row, "$", "?"+strconv.Itoa(first+i), 1))
	}
	return b.String()
}

// Statements over a batch of n prefixes; parameter 1 is the source id,
// 2 is now, 3 onwards are the prefixes.
func insertSQL(n int) string {
	return rowsSQL(`INSERT OR IGNORE INTO listings (source_id, prefix, since) VALUES `, "(?1, $, ?2)", 3, n)
}

func endSQL(n int) string {
	return rowsSQL(`INSERT INTO episodes (source_id, prefix, started, ended)
		SELECT source_id, prefix, since, ?2 FROM listings WHERE source_id = ?1 AND prefix IN (`, "$", 3, n) + ")"
}

func deleteSQL(n int) string {
	return rowsSQL(`DELETE FROM listings WHERE source_id = ?1 AND prefix IN (`, "$", 3, n) + ")"
}

// Apply writes one source's change at time now in one transaction. A prefix
// in both Added and Removed ends its episode and opens a new one.
func (s *Store) Apply(ctx context.Context, source string, ch store.Change, now time.Time) (err error) {
	if source == "" {
		return errors.New("apply: empty source name")
	}
	added, err := encodePrefixes(ch.Added)
	if err != nil {
		return fmt.Errorf("apply to %q: added %w", source, err)
	}
	removed, err := encodePrefixes(ch.Removed)
	if err != nil {
		return fmt.Errorf("apply to %q: removed %w", source, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("apply to %q: %w", source, err)
	}
	if ch.Empty() {
		return nil
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("apply to %q: %w", source, err)
		}
	}()

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	id, err := sourceID(ctx, tx, source)
	if err != nil {
		return err
	}
	ms := millis(now)
	if err := writeBatches(ctx, tx, removed, id, ms, endSQL, deleteSQL); err != nil {
		return fmt.Errorf("end listings: %w", err)
	}
	if err := writeBatches(ctx, tx, added, id, ms, insertSQL); err != nil {
		return fmt.Errorf("add listings: %w", err)
	}
	return tx.Commit()
}

// sourceID returns the listing key of a source name, creating it on first
// use.
func sourceID(ctx context.Context, tx *sql.Tx, name string) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM source_ids WHERE name = ?`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRowContext(ctx, `INSERT INTO source_ids (name) VALUES (?) RETURNING id`, name).Scan(&id)
	}
	if err != nil {
		return 0, fmt.Errorf("source id: %w", err)
	}
	return id, nil
}

// writeBatches runs each statement built by stmts over keys, batch by
// batch, in order. Full batches reuse one prepared statement per builder.
func writeBatches(ctx context.Context, tx *sql.Tx, keys [][]byte, id, now int64, stmts ...func(n int) string) error {
	if len(keys) == 0 {
		return nil
	}
	prepared := make([]*sql.Stmt, len(stmts))
	if len(keys) >= batch {
		for i, build := range stmts {
			st, err := tx.PrepareContext(ctx, build(batch))
			if err != nil {
				return err
			}
			defer st.Close()
			prepared[i] = st
		}
	}
	args := make([]any, 2, 2+batch)
	args[0], args[1] = id, now
	for start := 0; start < len(keys); start += batch {
		// Cancellation is checked between batches as well as by the
		// driver, so a large Apply stops promptly and rolls back.
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk := keys[start:min(start+batch, len(keys))]
		args = args[:2]
		for _, k := range chunk {
			args = append(args, k)
		}
		for i, build := range stmts {
			var err error
			if len(chunk) == batch {
				_, err = prepared[i].ExecContext(ctx, args...)
			} else {
				_, err = tx.ExecContext(ctx, build(len(chunk)), args...)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// SourceListings returns the prefixes that source lists now.
func (s *Store) SourceListings(ctx context.Context, source string) ([]netip.Prefix, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT prefix FROM listings WHERE source_id = (SELECT id FROM source_ids WHERE name = ?)`, source)
	if err != nil {
		return nil, fmt.Errorf("listings of %q: %w", source, err)
	}
	defer rows.Close()
	var (
		out []netip.Prefix
		raw sql.RawBytes
	)
	for rows.Next() {
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("listings of %q: %w", source, err)
		}
		p, err := decodePrefix(raw)
		if err != nil {
			return nil, fmt.Errorf("listings of %q: %w", source, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listings of %q: %w", source, err)
	}
	return out, nil
}

// names turns source ids into names while streaming rows, which arrive
// grouped by source: it converts a name only when the id changes.
type names struct {
	ok   bool
	id   int64
	name string
}

func (n *names) get(id int64, raw sql.RawBytes) string {
	if !n.ok || id != n.id {
		n.ok, n.id, n.name = true, id, string(raw)
	}
	return n.name
}

// Listings calls fn for every current listing of every source.
func (s *Store) Listings(ctx context.Context, fn func(store.Listing) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT l.source_id, s.name, l.prefix, l.since
		FROM listings l JOIN source_ids s ON s.id = l.source_id`)
	if err != nil {
		return fmt.Errorf("stream listings: %w", err)
	}
	defer rows.Close()
	var (
		id, since int64
		name, raw sql.RawBytes
		cache     names
	)
	for rows.Next() {
		if err := rows.Scan(&id, &name, &raw, &since); err != nil {
			return fmt.Errorf("stream listings: %w", err)
		}
		p, err := decodePrefix(raw)
		if err != nil {
			return fmt.Errorf("stream listings: %w", err)
		}
		if err := fn(store.Listing{Source: cache.get(id, name), Prefix: p, Since: fromMillis(since)}); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("stream listings: %w", err)
	}
	return nil
}

// Episodes calls fn for every ended episode with Ended >= since.
func (s *Store) Episodes(ctx context.Context, since time.Time, fn func(store.Episode) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT e.source_id, s.name, e.prefix, e.started, e.ended
		FROM episodes e JOIN source_ids s ON s.id = e.source_id WHERE e.ended >= ?`, millis(since))
	if err != nil {
		return fmt.Errorf("stream episodes: %w", err)
	}
	defer rows.Close()
	var (
		id, started, ended int64
		name, raw          sql.RawBytes
		cache              names
	)
	for rows.Next() {
		if err := rows.Scan(&id, &name, &raw, &started, &ended); err != nil {
			return fmt.Errorf("stream episodes: %w", err)
		}
		p, err := decodePrefix(raw)
		if err != nil {
			return fmt.Errorf("stream episodes: %w", err)
		}
		e := store.Episode{Source: cache.get(id, name), Prefix: p, Started: fromMillis(started), Ended: fromMillis(ended)}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("stream episodes: %w", err)
	}
	return nil
}

// PurgeEpisodes deletes ended episodes with Ended < before.
func (s *Store) PurgeEpisodes(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM episodes WHERE ended < ?`, millis(before))
	if err != nil {
		return 0, fmt.Errorf("purge episodes: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("purge episodes: %w", err)
	}
	return n, nil
}
