package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// LeaseName is the store lease held by the replica that runs the syncs.
const LeaseName = "sync"

// Defaults of LeaseOptions.
const (
	DefaultLeaseTTL       = 60 * time.Second
	DefaultGenerationPoll = 5 * time.Second
)

// releaseTimeout bounds the release of the lease when Run stops.
const releaseTimeout = 5 * time.Second

// LeaseOptions let several engines (replicas, each with its own index)
// share one store. The zero value is one engine alone on its store, which
// then always runs the syncs, as with the embedded SQLite file.
type LeaseOptions struct {
	// Shared says that other replicas use the same store (MongoDB). Run
	// then runs the jobs that write (feed syncs, the MISP jobs, the
	// history purge) only while this engine holds the store lease
	// LeaseName, bumps the store's sync generation after it writes, and
	// rebuilds the index whenever the generation moves. A turn running
	// when the lease is lost finishes; the store's Apply semantics make
	// the short overlap with the new holder's writes harmless.
	Shared bool
	// TTL is how long the lease lasts unless renewed; it is renewed every
	// TTL/3, and a replica that stops without releasing it (a crash) is
	// replaced after at most TTL. Default DefaultLeaseTTL.
	TTL time.Duration
	// Holder names this replica in the lease. Default: the host name and a
	// random suffix, so that two processes on one host differ.
	Holder string
	// Poll is how often the generation is read. Default
	// DefaultGenerationPoll.
	Poll time.Duration
}

// lease is the engine's part in the shared store's coordination.
type lease struct {
	shared bool
	ttl    time.Duration
	poll   time.Duration
	holder string

	leader atomic.Bool
	// seen is the store generation that the index reflects.
	seen atomic.Int64
	// gained wakes Run when the lease is taken over after Run's start.
	gained chan struct{}

	mu        sync.Mutex // serialises bumps, guards published and lastOK
	published uint64     // changeSeq covered by the last bump
	lastOK    time.Time  // last successful acquisition or renewal
}

func (l *lease) init(o LeaseOptions) {
	l.shared = o.Shared
	l.ttl, l.poll, l.holder = o.TTL, o.Poll, o.Holder
	if l.ttl <= 0 {
		l.ttl = DefaultLeaseTTL
	}
	if l.poll <= 0 {
		l.poll = DefaultGenerationPoll
	}
	if l.holder == "" {
		l.holder = defaultHolder()
	}
	l.gained = make(chan struct{}, 1)
	l.leader.Store(!l.shared)
}

// defaultHolder returns the host name with a random suffix.
func defaultHolder() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "rampart"
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	return host + "-" + hex.EncodeToString(b[:])
}

// Leader reports whether this engine runs the syncs now: always for an
// engine alone on its store, otherwise while it holds the sync lease.
func (e *Engine) Leader() bool { return e.lease.leader.Load() }

// Holder returns the name under which this engine takes the sync lease.
func (e *Engine) Holder() string { return e.lease.holder }

// noteGeneration records the store's generation before a full load, so
// that any change written after it triggers a rebuild.
func (e *Engine) noteGeneration(ctx context.Context) error {
	if !e.lease.shared {
		return nil
	}
	g, err := e.st.Generation(ctx)
	if err != nil {
		return err
	}
	e.lease.seen.Store(g)
	return nil
}

// publish bumps the store's generation if this engine wrote listings or
// sources since its last bump, so that the other replicas reload. A
// failed bump is logged: the data is written, and the next bump carries
// it.
func (e *Engine) publish(ctx context.Context) {
	l := &e.lease
	if !l.shared || ctx.Err() != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	seq := e.changeSeq.Load()
	if seq <= l.published {
		return
	}
	g, err := e.st.BumpGeneration(ctx)
	if err != nil {
		e.log.Warn("bump sync generation", "err", err)
		return
	}
	l.published = seq
	// The index has our own change; a bump by another writer in between
	// leaves seen behind, and the poll rebuilds for it.
	l.seen.CompareAndSwap(g-1, g)
}

// renew tries to take or keep the lease and reports whether it was gained
// by this call.
func (e *Engine) renew(ctx context.Context) (gained bool) {
	l := &e.lease
	now := e.now()
	held, err := e.st.TryLease(ctx, LeaseName, l.holder, l.ttl, now)
	l.mu.Lock()
	if err != nil {
		// The store cannot say: keep the role while the last renewal
		// surely lasts, with a third of the ttl to spare.
		held = l.leader.Load() && now.Sub(l.lastOK) < l.ttl-l.ttl/3
		if ctx.Err() == nil {
			e.log.Warn("renew sync lease", "err", err, "leader", held)
		}
	} else if held {
		l.lastOK = now
	}
	l.mu.Unlock()
	was := l.leader.Swap(held)
	switch {
	case held && !was:
		e.log.Info("sync lease acquired: this replica runs the syncs", "holder", l.holder)
	case !held && was:
		e.log.Warn("sync lease lost: another replica runs the syncs", "holder", l.holder)
	}
	return held && !was
}

// startLease takes part in the lease (one attempt now) and starts the
// renewal and generation loops. The returned func stops them and releases
// the lease; Run calls it after the scheduler has stopped.
func (e *Engine) startLease(ctx context.Context) (stop func()) {
	if !e.lease.shared {
		return func() {}
	}
	e.renew(ctx)
	if !e.Leader() {
		e.log.Info("standby: another replica holds the sync lease", "holder", e.lease.holder)
	}
	lctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { e.renewLoop(lctx) })
	wg.Go(func() { e.pollLoop(lctx) })
	return func() {
		cancel()
		wg.Wait()
		e.lease.leader.Store(false)
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer rcancel()
		if err := e.st.ReleaseLease(rctx, LeaseName, e.lease.holder); err != nil {
			e.log.Warn("release sync lease", "err", err)
		}
	}
}

func (e *Engine) renewLoop(ctx context.Context) {
	t := time.NewTicker(e.lease.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if e.renew(ctx) {
				select {
				case e.lease.gained <- struct{}{}:
				default:
				}
			}
		}
	}
}

func (e *Engine) pollLoop(ctx context.Context) {
	t := time.NewTicker(e.lease.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.follow(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("follow sync generation", "err", err)
			}
		}
	}
}

// follow rebuilds the index if the store's generation moved: another
// replica (or an explicit sync) wrote. The previous index stays in force
// on failure, and the next poll tries again.
func (e *Engine) follow(ctx context.Context) error {
	g, err := e.st.Generation(ctx)
	if err != nil {
		return err
	}
	if g == e.lease.seen.Load() {
		return nil
	}
	// Feeds reports the sync state that the writer recorded.
	srcs, err := e.st.Sources(ctx)
	if err != nil {
		return err
	}
	e.mu.Lock()
	for _, s := range srcs {
		e.status[s.Name] = s
	}
	e.mu.Unlock()
	if err := e.Rebuild(ctx); err != nil {
		return err
	}
	e.lease.seen.Store(g)
	e.ready.Store(true)
	e.log.Debug("index follows the sync generation", "generation", g)
	return nil
}
