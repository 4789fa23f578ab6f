package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rampart-ip/rampart/store"
)

// A lease is one kv row under store.LeaseKeyPrefix + name whose value is
// "<expiry in Unix milliseconds> <holder>". Every write happens in one
// transaction that takes the write lock at BEGIN (the DSN's _txlock), so
// the read and the decision that follows it are atomic across every
// connection and process on the file.

// TryLease acquires or renews the lease name for holder until now+ttl.
func (s *Store) TryLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (held bool, err error) {
	if err := store.CheckLease(name, holder, ttl); err != nil {
		return false, fmt.Errorf("try lease %q: %w", name, err)
	}
	key := store.LeaseKeyPrefix + name
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var v string
		switch err := tx.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = ?`, key).Scan(&v); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			expires, cur := store.ParseLease(v)
			if cur != holder && now.Before(expires) {
				return nil // held by another, not expired
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)`,
			key, store.FormatLease(now.Add(ttl), holder)); err != nil {
			return err
		}
		held = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("try lease %q: %w", name, err)
	}
	return held, nil
}

// ReleaseLease ends holder's lease name, if holder holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if name == "" || holder == "" {
		return fmt.Errorf("release lease %q: empty name or holder", name)
	}
	key := store.LeaseKeyPrefix + name
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var v string
		switch err := tx.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = ?`, key).Scan(&v); {
		case errors.Is(err, sql.ErrNoRows):
			return nil
		case err != nil:
			return err
		}
		if _, cur := store.ParseLease(v); cur != holder {
			return nil
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM kv WHERE key = ?`, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %q: %w", name, err)
	}
	return nil
}

// BumpGeneration increments the sync generation and returns it.
func (s *Store) BumpGeneration(ctx context.Context) (int64, error) {
	var gen int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var v string
		switch err := tx.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = ?`, store.GenerationKey).Scan(&v); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("stored generation %q: %w", v, err)
			}
			gen = n
		}
		gen++
		_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)`,
			store.GenerationKey, strconv.FormatInt(gen, 10))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("bump generation: %w", err)
	}
	return gen, nil
}

// Generation returns the sync generation, 0 until the first bump.
func (s *Store) Generation(ctx context.Context) (int64, error) {
	var v string
	switch err := s.db.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = ?`, store.GenerationKey).Scan(&v); {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read generation: %w", err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read generation: stored %q: %w", v, err)
	}
	return n, nil
}

// inTx runs fn in a write transaction and commits it if fn succeeds.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // err says what went wrong; a failed rollback adds nothing
		return err
	}
	return tx.Commit()
}
