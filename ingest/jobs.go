package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-co-op/gocron/v2"

	"github.com/rampart-ip/rampart/config"
)

// ErrRunning is returned by Run when the engine is already running.
var ErrRunning = errors.New("sync engine already running")

// feedJobPrefix names a feed's refresh job: "feed:<name>".
const feedJobPrefix = "feed:"

// stopTimeout bounds how long Run waits for running jobs at shutdown.
const stopTimeout = 10 * time.Second

// JobStatus is one periodic job's state, as /api/v1/jobs shows it.
type JobStatus struct {
	Name         string          `json:"name"`
	Interval     config.Duration `json:"interval"`
	Running      bool            `json:"running"`
	LastRun      time.Time       `json:"last_run,omitzero"`
	NextRun      time.Time       `json:"next_run,omitzero"`
	LastDuration config.Duration `json:"last_duration"`
	LastError    string          `json:"last_error"`
	Runs         int             `json:"runs"`
	// Standby reports that the job writes to a shared store and so runs
	// only on the replica holding the sync lease, which this one does not
	// hold now (see LeaseOptions).
	Standby bool `json:"standby,omitempty"`
}

// job is one periodic task and its state.
type job struct {
	name  string
	every time.Duration
	fn    func(context.Context) error
	// delayed jobs first run after one interval plus jitter; the others
	// soon after they are scheduled (a small jitter).
	delayed bool
	// quiet jobs log their own failures (feed syncs do).
	quiet bool
	// leader jobs write to the store: they run only while the engine
	// is the leader (Engine.Leader) and publish what they wrote.
	leader bool

	gj       gocron.Job // while scheduled
	running  bool
	lastRun  time.Time
	lastDur  time.Duration
	lastErr  string
	runs     int
	schedErr string
}

// jobTable holds the jobs and, while Run runs, the scheduler.
type jobTable struct {
	mu      sync.Mutex
	jobs    map[string]*job
	sched   gocron.Scheduler
	log     *slog.Logger
	leader  func() bool               // whether leader jobs may run
	publish func(ctx context.Context) // after a leader job ran
}

func (t *jobTable) init(log *slog.Logger, leader func() bool, publish func(context.Context)) {
	t.jobs = map[string]*job{}
	t.log = log
	t.leader, t.publish = leader, publish
}

// AddJob registers fn to run every interval while Run runs, in singleton
// mode (a run still going when the next is due skips that turn), the first
// run soon after the scheduler starts (jittered). fn's context ends when Run
// stops. A job of the same name is replaced. A non-positive interval means
// sync.interval. Jobs added here write to the store (the MISP poller's
// do), so with a shared store (LeaseOptions.Shared) a turn runs only while
// the engine holds the sync lease.
func (e *Engine) AddJob(name string, every time.Duration, fn func(ctx context.Context) error) {
	if every <= 0 {
		every = e.syncCfg.Interval.Std()
	}
	e.jobs.add(&job{name: name, every: every, fn: fn, leader: true})
}

// Jobs returns the state of every job, ordered by name.
func (e *Engine) Jobs() []JobStatus {
	t := &e.jobs
	leader := e.Leader()
	t.mu.Lock()
	out := make([]JobStatus, 0, len(t.jobs))
	gjs := make([]gocron.Job, 0, len(t.jobs))
	for _, j := range t.jobs {
		lastErr := j.lastErr
		if lastErr == "" {
			lastErr = j.schedErr
		}
		out = append(out, JobStatus{
			Name:         j.name,
			Interval:     config.Duration(j.every),
			Running:      j.running,
			LastRun:      j.lastRun,
			LastDuration: config.Duration(j.lastDur),
			LastError:    lastErr,
			Runs:         j.runs,
			Standby:      j.leader && !leader,
		})
		gjs = append(gjs, j.gj)
	}
	t.mu.Unlock()
	for i, gj := range gjs {
		if gj == nil {
			continue
		}
		if next, err := gj.NextRun(); err == nil {
			out[i].NextRun = next
		}
	}
	slices.SortFunc(out, func(a, b JobStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Run loads the index (Start, if not done), starts the scheduler, syncs
// every enabled feed once, then serves schedules, feed-set changes and
// rebuild requests until ctx ends. With a shared store (LeaseOptions) the
// syncs are the lease holder's: a replica that does not hold the lease
// follows the store's generation instead, and syncs every feed once when
// it takes the lease over. It then stops the scheduler, waiting at
// most a bounded time for running jobs (their contexts are cancelled), and
// returns nil.
func (e *Engine) Run(ctx context.Context) error {
	if err := e.Start(ctx); err != nil {
		return err
	}
	// Deferred first, so run last: the lease is released after the
	// scheduler's jobs have stopped writing.
	stopLease := e.startLease(ctx)
	defer stopLease()
	s, err := gocron.NewScheduler(gocron.WithStopTimeout(stopTimeout))
	if err != nil {
		return fmt.Errorf("run sync engine: %w", err)
	}
	if err := e.jobs.start(s); err != nil {
		_ = s.Shutdown()
		return err
	}
	defer func() {
		e.jobs.stop()
		if err := s.Shutdown(); err != nil {
			e.log.Warn("scheduler shutdown", "err", err)
		}
	}()
	initial := func() {
		reports := e.SyncAll(ctx, nil)
		failed := 0
		for _, r := range reports {
			if r.Err != nil {
				failed++
			}
		}
		e.log.Info("initial sync done", "feeds", len(reports), "failed", failed)
	}
	if e.Leader() {
		initial()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.lease.gained:
			initial()
		case <-e.signal:
			if e.Leader() {
				if err := e.retireInactive(ctx); err != nil && ctx.Err() == nil {
					e.log.Error("end listings of removed feeds", "err", err)
				}
			}
			if err := e.rebuildAfterChange(ctx); err != nil && ctx.Err() == nil {
				e.log.Error("rebuild index", "err", err)
			}
			e.publish(ctx)
		}
	}
}

// add registers j, replacing a job of the same name.
func (t *jobTable) add(j *job) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.jobs[j.name]; ok {
		t.unscheduleLocked(old)
	}
	t.jobs[j.name] = j
	if t.sched != nil {
		t.scheduleLocked(j)
	}
}

// setFeeds makes the feed jobs match sched (feed name → interval).
func (t *jobTable) setFeeds(e *Engine, sched map[string]time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for name, j := range t.jobs {
		feed, ok := strings.CutPrefix(name, feedJobPrefix)
		if !ok {
			continue
		}
		if every, keep := sched[feed]; !keep || every != j.every {
			t.unscheduleLocked(j)
			delete(t.jobs, name)
		}
	}
	for feed, every := range sched {
		name := feedJobPrefix + feed
		if _, ok := t.jobs[name]; ok {
			continue
		}
		// Before Run, Run's initial sync covers the feed; while running,
		// a new feed is synced right away.
		j := &job{name: name, every: every, quiet: true, leader: true, delayed: t.sched == nil, fn: func(ctx context.Context) error {
			_, err := e.SyncFeed(ctx, feed)
			return err
		}}
		t.jobs[name] = j
		if t.sched != nil {
			t.scheduleLocked(j)
		}
	}
}

// start schedules every job on s and starts it.
func (t *jobTable) start(s gocron.Scheduler) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sched != nil {
		return ErrRunning
	}
	t.sched = s
	for _, j := range t.jobs {
		t.scheduleLocked(j)
	}
	s.Start()
	return nil
}

// stop forgets the scheduler (its Shutdown follows) and marks jobs added
// from now on as delayed for a later Run.
func (t *jobTable) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sched = nil
	for _, j := range t.jobs {
		j.gj = nil
	}
}

func (t *jobTable) scheduleLocked(j *job) {
	start := time.Now().Add(jitter(j.every, j.delayed))
	name := j.name
	gj, err := t.sched.NewJob(
		gocron.DurationJob(j.every),
		gocron.NewTask(func(ctx context.Context) { t.run(ctx, name) }),
		gocron.WithName(name),
		gocron.WithSingletonMode(gocron.LimitModeReschedule),
		gocron.WithStartAt(gocron.WithStartDateTime(start)),
	)
	if err != nil {
		j.schedErr = fmt.Sprintf("schedule: %v", err)
		t.log.Error("schedule job", "job", name, "err", err)
		return
	}
	j.gj, j.schedErr = gj, ""
}

func (t *jobTable) unscheduleLocked(j *job) {
	if t.sched != nil && j.gj != nil {
		if err := t.sched.RemoveJob(j.gj.ID()); err != nil {
			t.log.Warn("remove job", "job", j.name, "err", err)
		}
	}
	j.gj = nil
}

// run executes one run of the named job and records its outcome.
func (t *jobTable) run(ctx context.Context, name string) {
	t.mu.Lock()
	j, ok := t.jobs[name]
	if !ok || j.running || (j.leader && !t.leader()) {
		t.mu.Unlock()
		return
	}
	j.running = true
	fn, quiet, leader := j.fn, j.quiet, j.leader
	t.mu.Unlock()

	start := time.Now()
	err := safeRun(ctx, fn)
	dur := time.Since(start)
	if leader {
		t.publish(ctx)
	}

	t.mu.Lock()
	j.running = false
	j.lastRun, j.lastDur, j.runs = start, dur, j.runs+1
	j.lastErr = ""
	if err != nil {
		j.lastErr = err.Error()
	}
	log := t.log
	t.mu.Unlock()
	if err != nil && !quiet && ctx.Err() == nil {
		log.Warn("job failed", "job", name, "err", err)
	}
}

// safeRun runs fn, turning a panic into an error so that one bad run does
// not take the process down.
func safeRun(ctx context.Context, fn func(context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return fn(ctx)
}

// jitter returns the delay before a job's first run: for delayed jobs one
// interval plus up to a tenth of it (at most 5 minutes); for the others up
// to a tenth of the interval (at most 5 seconds, so that a feed added in
// MISP is fetched promptly), so that jobs registered together do not all
// fire at once.
func jitter(every time.Duration, delayed bool) time.Duration {
	limit := min(every/10, 5*time.Second)
	base := time.Duration(0)
	if delayed {
		limit = min(every/10, 5*time.Minute)
		base = every
	}
	d := 10 * time.Millisecond // WithStartDateTime must lie in the future
	if limit > 0 {
		d += rand.N(limit)
	}
	return base + d
}
