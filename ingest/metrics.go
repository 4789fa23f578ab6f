package ingest

import (
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// syncStats counts what the store does not keep about feed syncs: how
// often each feed failed and how long pulls take. Everything else the
// metrics show is read from Feeds and Jobs at scrape time.
type syncStats struct {
	mu       sync.Mutex
	failures map[string]uint64
	lastDur  map[string]time.Duration
	duration prometheus.Histogram
}

func (s *syncStats) init() {
	s.failures = map[string]uint64{}
	s.lastDur = map[string]time.Duration{}
	s.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "rampart_feed_sync_duration_seconds",
		Help: "Time to pull one feed (fetch, parse, diff, write; not the index rebuild), successful or not.",
		// 10ms (a 304, a local file) to ~2.7 minutes (a large list over a slow link).
		Buckets: prometheus.ExponentialBuckets(0.01, 4, 8),
	})
}

// observe records one pull of feed that took d and ended with err.
func (s *syncStats) observe(feed string, d time.Duration, err error) {
	s.duration.Observe(d.Seconds())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastDur[feed] = d
	if err != nil {
		s.failures[feed]++
	}
}

// feed returns feed's failure count and last pull duration.
func (s *syncStats) feed(name string) (failures uint64, last time.Duration, pulled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last, pulled = s.lastDur[name]
	return s.failures[name], last, pulled
}

// collector exports an Engine's feed and job state.
type collector struct {
	e *Engine

	feeds                                       *prometheus.Desc
	entries, lastSuccess, lastAttempt, up       *prometheus.Desc
	failures, lastSyncDur                       *prometheus.Desc
	jobRuns, jobLastDur, jobLastErr, jobLastRun *prometheus.Desc
	jobRunning                                  *prometheus.Desc
}

var _ prometheus.Collector = (*collector)(nil)

// NewCollector returns a Prometheus collector of e's feeds (entries, last
// attempt and success, up, failures, pull durations) and periodic jobs
// (runs, last duration, last error), the MISP poller's jobs included. It
// reads Feeds and Jobs at scrape time. Only enabled feeds have per-feed
// series; rampart_feeds counts the others. Register it once per registry.
func NewCollector(e *Engine) prometheus.Collector {
	feed := []string{"feed"}
	job := []string{"job"}
	return &collector{
		e:           e,
		feeds:       prometheus.NewDesc("rampart_feeds", "Defined feeds by state: enabled (synced), disabled, or skipped (unsupported or duplicate definition).", []string{"state"}, nil),
		entries:     prometheus.NewDesc("rampart_feed_entries", "Prefixes listed by the feed's last good pull.", feed, nil),
		lastSuccess: prometheus.NewDesc("rampart_feed_last_success_timestamp_seconds", "When the feed was last pulled successfully (unchanged included), in seconds since the Unix epoch; absent if never.", feed, nil),
		lastAttempt: prometheus.NewDesc("rampart_feed_last_attempt_timestamp_seconds", "When the feed was last pulled, successfully or not, in seconds since the Unix epoch; absent if never.", feed, nil),
		up:          prometheus.NewDesc("rampart_feed_up", "1 if the feed's last pull succeeded, 0 if it failed (the previous listings stay in force); absent before the first pull.", feed, nil),
		failures:    prometheus.NewDesc("rampart_feed_sync_failures_total", "Failed pulls of the feed since the process started.", feed, nil),
		lastSyncDur: prometheus.NewDesc("rampart_feed_last_sync_duration_seconds", "Duration of the feed's last pull in this process.", feed, nil),
		jobRuns:     prometheus.NewDesc("rampart_job_runs_total", "Completed runs of the periodic job since it was scheduled.", job, nil),
		jobLastDur:  prometheus.NewDesc("rampart_job_last_duration_seconds", "Duration of the job's last run; absent before the first run.", job, nil),
		jobLastErr:  prometheus.NewDesc("rampart_job_last_error", "1 if the job's last run (or its scheduling) failed, else 0.", job, nil),
		jobLastRun:  prometheus.NewDesc("rampart_job_last_run_timestamp_seconds", "When the job's last run started, in seconds since the Unix epoch; absent before the first run.", job, nil),
		jobRunning:  prometheus.NewDesc("rampart_job_running", "1 while the job runs.", job, nil),
	}
}

// Describe sends the descriptors of every metric Collect sends.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.feeds, c.entries, c.lastSuccess, c.lastAttempt, c.up, c.failures, c.lastSyncDur,
		c.jobRuns, c.jobLastDur, c.jobLastErr, c.jobLastRun, c.jobRunning,
	} {
		ch <- d
	}
	c.e.stats.duration.Describe(ch)
}

// Collect reads the engine's state.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	send := func(d *prometheus.Desc, t prometheus.ValueType, v float64, label string) {
		m, err := prometheus.NewConstMetric(d, t, v, label)
		if err != nil {
			m = prometheus.NewInvalidMetric(d, err)
		}
		ch <- m
	}
	states := map[string]int{"enabled": 0, "disabled": 0, "skipped": 0}
	seen := map[string]bool{}
	for _, f := range c.e.Feeds() {
		switch {
		case f.Enabled:
			states["enabled"]++
		case strings.HasPrefix(f.Note, "skipped"):
			states["skipped"]++
		default:
			states["disabled"]++
		}
		name := labelValue(f.Name)
		if !f.Enabled || seen[name] {
			continue
		}
		seen[name] = true
		send(c.entries, prometheus.GaugeValue, float64(f.Entries), name)
		if !f.LastAttempt.IsZero() {
			send(c.lastAttempt, prometheus.GaugeValue, seconds(f.LastAttempt), name)
			up := 0.0
			if f.LastError == "" {
				up = 1
			}
			send(c.up, prometheus.GaugeValue, up, name)
		}
		if !f.LastSuccess.IsZero() {
			send(c.lastSuccess, prometheus.GaugeValue, seconds(f.LastSuccess), name)
		}
		fails, last, pulled := c.e.stats.feed(f.Name)
		send(c.failures, prometheus.CounterValue, float64(fails), name)
		if pulled {
			send(c.lastSyncDur, prometheus.GaugeValue, last.Seconds(), name)
		}
	}
	for state, n := range states {
		send(c.feeds, prometheus.GaugeValue, float64(n), state)
	}
	c.e.stats.duration.Collect(ch)

	clear(seen)
	for _, j := range c.e.Jobs() {
		name := labelValue(j.Name)
		if seen[name] {
			continue
		}
		seen[name] = true
		send(c.jobRuns, prometheus.CounterValue, float64(j.Runs), name)
		failed := 0.0
		if j.LastError != "" {
			failed = 1
		}
		send(c.jobLastErr, prometheus.GaugeValue, failed, name)
		running := 0.0
		if j.Running {
			running = 1
		}
		send(c.jobRunning, prometheus.GaugeValue, running, name)
		if j.Runs > 0 {
			send(c.jobLastDur, prometheus.GaugeValue, j.LastDuration.Std().Seconds(), name)
			send(c.jobLastRun, prometheus.GaugeValue, seconds(j.LastRun), name)
		}
	}
}

// labelValue makes a name from a feed list (MISP's included) a valid
// label value: invalid UTF-8 would fail the whole metric.
func labelValue(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func seconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
