package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/store"
)

// leaseTTL is the suite's lease duration; the suite moves its own clock,
// so the value only sets the arithmetic.
const leaseTTL = time.Minute

// tryLease calls TryLease and fails the test on an error.
func tryLease(t *testing.T, s store.Store, name, holder string, now time.Time) bool {
	t.Helper()
	held, err := s.TryLease(t.Context(), name, holder, leaseTTL, now)
	if err != nil {
		t.Fatalf("try lease %q for %q: %v", name, holder, err)
	}
	return held
}

// wantLease checks, in order, that each holder's attempt at now gets the
// wanted answer.
func wantLease(t *testing.T, s store.Store, name string, now time.Time, attempts ...any) {
	t.Helper()
	for i := 0; i+1 < len(attempts); i += 2 {
		holder, want := attempts[i].(string), attempts[i+1].(bool)
		if got := tryLease(t, s, name, holder, now); got != want {
			t.Fatalf("lease %q for %q at %v: held %v, want %v", name, holder, now.Sub(base), got, want)
		}
	}
}

func testLeaseExclusive(t *testing.T, open Opener) {
	a, b := openStore(t, open), openStore(t, open) // two replicas on one database
	t.Run("a free lease is taken", func(t *testing.T) {
		wantLease(t, a, "sync", base, "replica-a", true)
	})
	t.Run("another holder is refused while it lasts, through any handle", func(t *testing.T) {
		wantLease(t, b, "sync", base.Add(time.Second), "replica-b", false)
		wantLease(t, a, "sync", base.Add(leaseTTL-time.Millisecond), "replica-b", false)
	})
	t.Run("the holder renews it and the renewal extends it", func(t *testing.T) {
		wantLease(t, b, "sync", base.Add(40*time.Second), "replica-a", true)
		// The first term would have ended at base+ttl.
		wantLease(t, b, "sync", base.Add(leaseTTL+time.Second), "replica-b", false)
	})
	t.Run("leases of other names are independent", func(t *testing.T) {
		wantLease(t, b, "rescore", base.Add(time.Minute), "replica-b", true)
		wantLease(t, a, "sync", base.Add(time.Minute), "replica-a", true)
	})
}

func testLeaseExpiry(t *testing.T, open Opener) {
	a, b := openStore(t, open), openStore(t, open)
	wantLease(t, a, "sync", base, "replica-a", true)
	t.Run("an expired lease is taken over", func(t *testing.T) {
		wantLease(t, b, "sync", base.Add(leaseTTL), "replica-b", true)
	})
	t.Run("the previous holder cannot renew a lease taken over", func(t *testing.T) {
		wantLease(t, a, "sync", base.Add(leaseTTL+time.Second), "replica-a", false)
	})
	t.Run("a holder renews past expiry when nobody took it", func(t *testing.T) {
		wantLease(t, b, "sync", base.Add(10*leaseTTL), "replica-b", true)
		wantLease(t, a, "sync", base.Add(10*leaseTTL+time.Second), "replica-a", false)
	})
}

func testLeaseRelease(t *testing.T, open Opener) {
	a, b := openStore(t, open), openStore(t, open)
	wantLease(t, a, "sync", base, "replica-a", true)
	release := func(s store.Store, holder string) {
		t.Helper()
		if err := s.ReleaseLease(t.Context(), "sync", holder); err != nil {
			t.Fatalf("release lease for %q: %v", holder, err)
		}
	}
	t.Run("a release by another holder changes nothing", func(t *testing.T) {
		release(b, "replica-b")
		wantLease(t, b, "sync", base.Add(time.Second), "replica-b", false)
	})
	t.Run("the holder's release frees the lease at once", func(t *testing.T) {
		release(a, "replica-a")
		wantLease(t, b, "sync", base.Add(2*time.Second), "replica-b", true)
		wantLease(t, a, "sync", base.Add(3*time.Second), "replica-a", false)
	})
	t.Run("releasing a lease not held is no error", func(t *testing.T) {
		release(a, "replica-a")
		if err := a.ReleaseLease(t.Context(), "never-taken", "replica-a"); err != nil {
			t.Fatalf("release of a lease never taken: %v", err)
		}
	})
}

func testLeaseRace(t *testing.T, open Opener) {
	const n = 4
	stores := make([]store.Store, n)
	for i := range stores {
		stores[i] = openStore(t, open)
	}
	winners := func(now time.Time, names func(i int) string) []string {
		t.Helper()
		var (
			mu  sync.Mutex
			won []string
			wg  sync.WaitGroup
		)
		errs := make([]error, n)
		for i, s := range stores {
			wg.Go(func() {
				held, err := s.TryLease(t.Context(), "sync", names(i), leaseTTL, now)
				errs[i] = err
				if held {
					mu.Lock()
					won = append(won, names(i))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("racing for the lease: %v", err)
		}
		return won
	}
	t.Run("holders racing for a free lease: one wins", func(t *testing.T) {
		won := winners(base, func(i int) string { return fmt.Sprintf("replica-%d", i) })
		if len(won) != 1 {
			t.Fatalf("winners: got %v, want exactly one", won)
		}
		// The winner holds it; the others are still refused.
		for i := range n {
			holder := fmt.Sprintf("replica-%d", i)
			wantLease(t, stores[i], "sync", base.Add(time.Second), holder, holder == won[0])
		}
	})
}

func testGeneration(t *testing.T, open Opener) {
	a, b := openStore(t, open), openStore(t, open)
	gen := func(s store.Store) int64 {
		t.Helper()
		g, err := s.Generation(t.Context())
		if err != nil {
			t.Fatalf("generation: %v", err)
		}
		return g
	}
	bump := func(s store.Store) int64 {
		t.Helper()
		g, err := s.BumpGeneration(t.Context())
		if err != nil {
			t.Fatalf("bump generation: %v", err)
		}
		return g
	}
	t.Run("it starts at zero", func(t *testing.T) {
		if g := gen(a); g != 0 {
			t.Fatalf("generation of a new database: got %d, want 0", g)
		}
	})
	t.Run("each bump returns the next value, seen by every handle", func(t *testing.T) {
		var got []int64
		for _, s := range []store.Store{a, b, a} {
			got = append(got, bump(s))
		}
		if want := []int64{1, 2, 3}; !slices.Equal(got, want) {
			t.Fatalf("bumps: got %v, want %v", got, want)
		}
		if g := gen(b); g != 3 {
			t.Fatalf("generation after three bumps: got %d, want 3", g)
		}
	})
	t.Run("it survives close and reopen", func(t *testing.T) {
		s, err := open(t.Context())
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		bump(s)
		if err := s.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		if g := gen(openStore(t, open)); g != 4 {
			t.Fatalf("generation after reopen: got %d, want 4", g)
		}
	})
	t.Run("keys of the key/value space are not affected", func(t *testing.T) {
		if _, err := a.Get(t.Context(), "sync"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("get of an unrelated key: got %v, want store.ErrNotFound", err)
		}
	})
}

func testLeaseErrors(t *testing.T, open Opener) {
	s := openStore(t, open)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	calls := []struct {
		name      string
		call      func() error
		cancelled bool
	}{
		{"an empty lease name is refused", func() error {
			_, err := s.TryLease(t.Context(), "", "replica-a", leaseTTL, base)
			return err
		}, false},
		{"an empty holder is refused", func() error {
			_, err := s.TryLease(t.Context(), "sync", "", leaseTTL, base)
			return err
		}, false},
		{"a ttl of zero is refused", func() error {
			_, err := s.TryLease(t.Context(), "sync", "replica-a", 0, base)
			return err
		}, false},
		{"an empty release is refused", func() error { return s.ReleaseLease(t.Context(), "", "") }, false},
		{"try lease fails on a cancelled context", func() error {
			_, err := s.TryLease(cancelled, "sync", "replica-a", leaseTTL, base)
			return err
		}, true},
		{"release fails on a cancelled context", func() error { return s.ReleaseLease(cancelled, "sync", "replica-a") }, true},
		{"bump fails on a cancelled context", func() error { _, err := s.BumpGeneration(cancelled); return err }, true},
		{"generation fails on a cancelled context", func() error { _, err := s.Generation(cancelled); return err }, true},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			switch {
			case err == nil:
				t.Fatal("got no error")
			case c.cancelled && !errors.Is(err, context.Canceled):
				t.Fatalf("got %v, want context.Canceled", err)
			}
		})
	}
	t.Run("nothing was written", func(t *testing.T) {
		wantLease(t, s, "sync", base, "replica-b", true)
		if g, err := s.Generation(t.Context()); err != nil || g != 0 {
			t.Fatalf("generation: got %d, %v; want 0", g, err)
		}
	})
}
