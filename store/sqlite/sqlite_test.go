package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/store"
	"github.com/rampart-ip/rampart/store/storetest"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), "rampart.db")
		return func(ctx context.Context) (store.Store, error) {
			return Open(ctx, path, discard())
		}
	})
}

func openTest(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path, discard())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func hosts(n int) []netip.Prefix {
	out := make([]netip.Prefix, n)
	for i := range out {
		out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
	}
	return out
}

func TestOpen(t *testing.T) {
	t.Run("a fresh file gets the current schema version", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "rampart.db")
		s := openTest(t, path)
		var v int
		if err := s.db.QueryRowContext(t.Context(), `SELECT version FROM schema_version`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != len(migrations) {
			t.Fatalf("schema version: got %d, want %d", v, len(migrations))
		}
		var mode string
		if err := s.db.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("journal mode: got %q, %v; want wal", mode, err)
		}
		var fk int
		if err := s.db.QueryRowContext(t.Context(), `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
			t.Fatalf("foreign keys: got %d, %v; want 1", fk, err)
		}
	})
	t.Run("a file from a newer version is refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "rampart.db")
		s := openTest(t, path)
		if _, err := s.db.ExecContext(t.Context(), `UPDATE schema_version SET version = ?`, len(migrations)+1); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		_, err := Open(t.Context(), path, discard())
		if !errors.Is(err, ErrNewerSchema) {
			t.Fatalf("open: got %v, want ErrNewerSchema", err)
		}
	})
	t.Run("a path the driver would cut short is refused", func(t *testing.T) {
		if _, err := Open(t.Context(), filepath.Join(t.TempDir(), "a?mode=memory"), discard()); err == nil {
			t.Fatal("open: got no error")
		}
	})
	t.Run("a directory that does not exist fails", func(t *testing.T) {
		if _, err := Open(t.Context(), filepath.Join(t.TempDir(), "missing", "rampart.db"), discard()); err == nil {
			t.Fatal("open: got no error")
		}
	})
}

// dataVersion reads PRAGMA data_version through a connection of its own;
// it changes whenever another connection commits a change to the file.
func dataVersion(t *testing.T, conn *sql.Conn) int64 {
	t.Helper()
	var v int64
	if err := conn.QueryRowContext(t.Context(), `PRAGMA data_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestApplyWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rampart.db")
	s := openTest(t, path)
	listed := hosts(2500)
	if err := s.Apply(t.Context(), "feed", store.Change{Added: listed}, t0); err != nil {
		t.Fatal(err)
	}
	observer, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = observer.Close() })
	conn, err := observer.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	tests := []struct {
		name   string
		change store.Change
		writes bool
	}{
		{"an empty change writes nothing", store.Change{}, false},
		{"re-adding listed prefixes writes nothing", store.Change{Added: listed[:1200]}, false},
		{"removing unlisted prefixes writes nothing", store.Change{Removed: hosts(3000)[2600:]}, false},
		{"a real change writes", store.Change{Removed: listed[:1]}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := dataVersion(t, conn)
			if err := s.Apply(t.Context(), "feed", tc.change, t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if wrote := dataVersion(t, conn) != before; wrote != tc.writes {
				t.Fatalf("file changed: got %v, want %v", wrote, tc.writes)
			}
		})
	}
}

// cancelAfter is a context that cancels itself on the n-th call of Err,
// so that an Apply is cancelled deterministically part-way through.
type cancelAfter struct {
	context.Context
	cancel context.CancelFunc
	calls  atomic.Int64
	n      int64
}

func (c *cancelAfter) Err() error {
	if c.calls.Add(1) == c.n {
		c.cancel()
	}
	return c.Context.Err()
}

func TestApplyRollsBack(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "rampart.db"))
	before := hosts(3000)
	if err := s.Apply(t.Context(), "feed", store.Change{Added: before[:2000]}, t0); err != nil {
		t.Fatal(err)
	}
	// A change of several batches: the first 1000 removals, 1000 re-adds and
	// 1000 new prefixes; Err is consulted between batches.
	change := store.Change{Removed: before[:1000], Added: append(slices.Clone(before[:1000]), before[2000:]...)}
	for _, n := range []int64{2, 3, 4} {
		t.Run(fmt.Sprintf("cancelled at check %d leaves the previous state", n), func(t *testing.T) {
			inner, cancel := context.WithCancel(t.Context())
			defer cancel()
			ctx := &cancelAfter{Context: inner, cancel: cancel, n: n}
			err := s.Apply(ctx, "feed", change, t0.Add(time.Hour))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("apply: got %v, want context.Canceled", err)
			}
			if ctx.calls.Load() < n {
				t.Fatalf("apply consulted the context %d times, wanted it cancelled at %d", ctx.calls.Load(), n)
			}
			got, err := s.SourceListings(t.Context(), "feed")
			if err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(got, netip.Prefix.Compare)
			if !slices.Equal(got, before[:2000]) {
				t.Fatalf("listings after a cancelled apply: got %d prefixes, want the 2000 before it", len(got))
			}
			var episodes int
			if err := s.Episodes(t.Context(), time.Time{}, func(store.Episode) error { episodes++; return nil }); err != nil {
				t.Fatal(err)
			}
			if episodes != 0 {
				t.Fatalf("episodes after a cancelled apply: got %d, want 0", episodes)
			}
		})
	}
	t.Run("the same change then applies in full", func(t *testing.T) {
		if err := s.Apply(t.Context(), "feed", change, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, err := s.SourceListings(t.Context(), "feed")
		if err != nil || len(got) != 3000 {
			t.Fatalf("listings: got %d, %v; want 3000", len(got), err)
		}
	})
}
