package ingest

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/misp"
	"github.com/rampart-ip/rampart/reputation"
	"github.com/rampart-ip/rampart/store"
	"github.com/rampart-ip/rampart/store/sqlite"
)

// testTTL is the replicas' lease ttl: renewals every 100ms of real time,
// expiry by the injected clock, which only the tests move.
const testTTL = 300 * time.Millisecond

// leaseStore counts lease attempts and can lose its release, as a
// replica that crashes does.
type leaseStore struct {
	store.Store
	noRelease bool
	tries     atomic.Int64
}

func (s *leaseStore) TryLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	s.tries.Add(1)
	return s.Store.TryLease(ctx, name, holder, ttl, now)
}

func (s *leaseStore) ReleaseLease(ctx context.Context, name, holder string) error {
	if s.noRelease {
		return nil
	}
	return s.Store.ReleaseLease(ctx, name, holder)
}

// replica is one engine with its own store handle and index on a shared
// database file.
type replica struct {
	eng  *Engine
	svc  *reputation.Service
	st   *leaseStore
	runs atomic.Int64 // runs of its writer job
}

func newReplica(t *testing.T, path string, clk *clock, holder string, noRelease bool, feeds ...misp.Feed) *replica {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	raw, err := sqlite.Open(context.Background(), path, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	r := &replica{st: &leaseStore{Store: raw, noRelease: noRelease}}
	r.svc = reputation.NewService(reputation.ServiceOptions{Now: clk.now, CacheSize: -1})
	cfg := config.Default()
	r.eng = NewEngine(EngineOptions{
		Store: r.st, Service: r.svc, Sync: cfg.Sync, History: cfg.History, Now: clk.now, Logger: log,
		Lease: LeaseOptions{Shared: true, TTL: testTTL, Holder: holder, Poll: 20 * time.Millisecond},
	})
	r.eng.SetFeeds(OriginConfig, feeds)
	r.eng.AddJob("test:writer", 50*time.Millisecond, func(context.Context) error {
		r.runs.Add(1)
		return nil
	})
	return r
}

func (r *replica) listed(t *testing.T, ip string) bool {
	return r.svc.Check(mustPrefix(t, ip).Addr()).IsActive
}

func (r *replica) job(t *testing.T, name string) JobStatus {
	t.Helper()
	for _, j := range r.eng.Jobs() {
		if j.Name == name {
			return j
		}
	}
	t.Fatalf("no job %q", name)
	return JobStatus{}
}

// waitTries waits until r has made n more lease attempts: enough turns for
// anything that would go wrong to have happened.
func (r *replica) waitTries(t *testing.T, n int64) {
	t.Helper()
	want := r.st.tries.Load() + n
	eventually(t, "lease attempts", func() bool { return r.st.tries.Load() >= want })
}

func TestLeaseAloneOnItsStore(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	srv := newFeedServer(t)
	srv.set("/a", []byte("192.0.2.1\n"))
	h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("a", srv.URL+"/a")})
	t.Run("the engine is the leader before and while it runs", func(t *testing.T) {
		if !h.eng.Leader() {
			t.Fatal("not the leader before Run")
		}
		runEngine(t, h.eng)
		eventually(t, "the initial sync", func() bool { return h.status(t, "a").Entries == 1 })
		if !h.eng.Leader() {
			t.Fatal("not the leader under Run")
		}
	})
	t.Run("no job is on standby", func(t *testing.T) {
		for _, j := range h.eng.Jobs() {
			if j.Standby {
				t.Errorf("job %s on standby", j.Name)
			}
		}
	})
	t.Run("the generation is not written", func(t *testing.T) {
		if g, err := h.raw.Generation(t.Context()); err != nil || g != 0 {
			t.Fatalf("generation: got %d, %v; want 0", g, err)
		}
	})
}

func TestLeaseReplicas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rampart.db")
	clk := newClock()
	srv := newFeedServer(t)
	srv.set("/a", []byte("192.0.2.1\n192.0.2.2\n"))
	def := feed("a", srv.URL+"/a")
	def.Refresh = misp.Duration(100 * time.Millisecond)

	a := newReplica(t, path, clk, "replica-a", false, def)
	stopA := runEngine(t, a.eng)
	eventually(t, "replica a holds the lease", a.eng.Leader)
	b := newReplica(t, path, clk, "replica-b", false, def)
	runEngine(t, b.eng)

	t.Run("only the holder runs the jobs that write", func(t *testing.T) {
		eventually(t, "replica a syncs", func() bool { return a.job(t, feedJobPrefix+"a").Runs >= 2 && a.runs.Load() >= 2 })
		b.waitTries(t, 2)
		if b.eng.Leader() {
			t.Fatal("replica b leads while a holds the lease")
		}
		if j := b.job(t, feedJobPrefix+"a"); j.Runs != 0 || !j.Standby {
			t.Errorf("replica b's feed job: %+v, want no run and standby", j)
		}
		if n := b.runs.Load(); n != 0 {
			t.Errorf("replica b's job added with AddJob ran %d times", n)
		}
		if j := a.job(t, feedJobPrefix+"a"); j.Standby {
			t.Errorf("replica a's feed job on standby: %+v", j)
		}
	})
	t.Run("the other replica's index follows the generation", func(t *testing.T) {
		srv.set("/a", []byte("192.0.2.1\n192.0.2.2\n198.51.100.7\n"))
		eventually(t, "replica a lists the new address", func() bool { return a.listed(t, "198.51.100.7") })
		eventually(t, "replica b lists the new address", func() bool { return b.listed(t, "198.51.100.7") })
		eventually(t, "replica b shows the feed's new state", func() bool {
			for _, f := range b.eng.Feeds() {
				if f.Name == "a" {
					return f.Entries == 3
				}
			}
			return false
		})
		if !b.listed(t, "192.0.2.1") {
			t.Error("replica b lost an address it listed")
		}
	})
	t.Run("the holder stopping hands the syncs over", func(t *testing.T) {
		stopA()
		eventually(t, "replica b holds the lease", b.eng.Leader)
		eventually(t, "replica b syncs", func() bool { return b.job(t, feedJobPrefix+"a").Runs >= 1 && b.runs.Load() >= 1 })
		srv.set("/a", []byte("192.0.2.1\n"))
		eventually(t, "replica b drops a removed address", func() bool { return !b.listed(t, "198.51.100.7") })
		if j := b.job(t, feedJobPrefix+"a"); j.Standby {
			t.Errorf("the new holder's feed job on standby: %+v", j)
		}
	})
}

func TestLeaseTakeoverAfterExpiry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rampart.db")
	clk := newClock()
	a := newReplica(t, path, clk, "replica-a", true) // its release is lost, as in a crash
	stopA := runEngine(t, a.eng)
	eventually(t, "replica a holds the lease", a.eng.Leader)
	b := newReplica(t, path, clk, "replica-b", false)
	runEngine(t, b.eng)
	stopA()

	t.Run("the lease of a stopped holder lasts its ttl", func(t *testing.T) {
		b.waitTries(t, 3)
		if b.eng.Leader() {
			t.Fatal("replica b took the lease before it expired")
		}
	})
	t.Run("it is taken over once the ttl has passed", func(t *testing.T) {
		clk.advance(testTTL)
		eventually(t, "replica b holds the lease", b.eng.Leader)
		eventually(t, "replica b runs its writer job", func() bool { return b.runs.Load() >= 1 })
	})
}
