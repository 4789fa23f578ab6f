package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/rampart-ip/rampart/misp"
)

// feedMetrics are the per-feed metrics whose values a test can know.
var feedMetrics = []string{
	"rampart_feed_entries",
	"rampart_feed_last_attempt_timestamp_seconds",
	"rampart_feed_last_success_timestamp_seconds",
	"rampart_feed_sync_failures_total",
	"rampart_feed_up",
	"rampart_feeds",
}

func TestFeedMetrics(t *testing.T) {
	body := sample(t, "feeds", "firehol", "et_compromised.ipset")
	n := len(parsed(t, body))
	if n == 0 {
		t.Fatal("sample has no prefixes")
	}
	hour := t0.Add(time.Hour)
	tests := []struct {
		name  string
		feeds func(h *harness, good string) []misp.Feed
		act   func(t *testing.T, h *harness, srv *feedServer)
		want  string
		syncs uint64 // pulls the duration histogram counts
	}{
		{
			name:  "a synced feed is up with its entries and times",
			feeds: func(h *harness, good string) []misp.Feed { return []misp.Feed{feed("et", good)} },
			act:   func(t *testing.T, h *harness, _ *feedServer) { syncOK(t, h, "et") },
			want: fmt.Sprintf(`
rampart_feed_entries{feed="et"} %d
rampart_feed_last_attempt_timestamp_seconds{feed="et"} %s
rampart_feed_last_success_timestamp_seconds{feed="et"} %s
rampart_feed_sync_failures_total{feed="et"} 0
rampart_feed_up{feed="et"} 1
rampart_feeds{state="disabled"} 0
rampart_feeds{state="enabled"} 1
rampart_feeds{state="skipped"} 0
`, n, ts(t0), ts(t0)),
			syncs: 1,
		},
		{
			name:  "a feed on a closed port is down with one failure and no success",
			feeds: func(h *harness, _ string) []misp.Feed { return []misp.Feed{feed("down", closedURL(t))} },
			act:   func(t *testing.T, h *harness, _ *feedServer) { syncFail(t, h, "down") },
			want: fmt.Sprintf(`
rampart_feed_entries{feed="down"} 0
rampart_feed_last_attempt_timestamp_seconds{feed="down"} %s
rampart_feed_sync_failures_total{feed="down"} 1
rampart_feed_up{feed="down"} 0
rampart_feeds{state="disabled"} 0
rampart_feeds{state="enabled"} 1
rampart_feeds{state="skipped"} 0
`, ts(t0)),
			syncs: 1,
		},
		{
			name:  "a feed that fails after a good pull keeps its entries and last success",
			feeds: func(h *harness, good string) []misp.Feed { return []misp.Feed{feed("et", good)} },
			act: func(t *testing.T, h *harness, srv *feedServer) {
				syncOK(t, h, "et")
				h.clock.advance(time.Hour)
				srv.fail(500)
				syncFail(t, h, "et")
			},
			want: fmt.Sprintf(`
rampart_feed_entries{feed="et"} %d
rampart_feed_last_attempt_timestamp_seconds{feed="et"} %s
rampart_feed_last_success_timestamp_seconds{feed="et"} %s
rampart_feed_sync_failures_total{feed="et"} 1
rampart_feed_up{feed="et"} 0
rampart_feeds{state="disabled"} 0
rampart_feeds{state="enabled"} 1
rampart_feeds{state="skipped"} 0
`, n, ts(hour), ts(t0)),
			syncs: 2,
		},
		{
			name:  "a feed that recovers is up again and its failures stay counted",
			feeds: func(h *harness, good string) []misp.Feed { return []misp.Feed{feed("et", good)} },
			act: func(t *testing.T, h *harness, srv *feedServer) {
				srv.fail(503)
				syncFail(t, h, "et")
				h.clock.advance(time.Hour)
				srv.fail(0)
				syncOK(t, h, "et")
				syncOK(t, h, "et") // unchanged (304): a success too
			},
			want: fmt.Sprintf(`
rampart_feed_entries{feed="et"} %d
rampart_feed_last_attempt_timestamp_seconds{feed="et"} %s
rampart_feed_last_success_timestamp_seconds{feed="et"} %s
rampart_feed_sync_failures_total{feed="et"} 1
rampart_feed_up{feed="et"} 1
rampart_feeds{state="disabled"} 0
rampart_feeds{state="enabled"} 1
rampart_feeds{state="skipped"} 0
`, n, ts(hour), ts(hour)),
			syncs: 3,
		},
		{
			name: "disabled, skipped and not yet pulled feeds have no up or times",
			feeds: func(h *harness, good string) []misp.Feed {
				off := feed("off", good)
				off.Enabled = false
				odd := feed("odd", good)
				odd.SourceFormat = "yaml"
				return []misp.Feed{feed("new", good), off, odd, feed("new", good)}
			},
			act: func(*testing.T, *harness, *feedServer) {},
			want: `
rampart_feed_entries{feed="new"} 0
rampart_feed_sync_failures_total{feed="new"} 0
rampart_feeds{state="disabled"} 1
rampart_feeds{state="enabled"} 1
rampart_feeds{state="skipped"} 2
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			srv := newFeedServer(t)
			srv.set("/et.ipset", body)
			h.eng.SetFeeds(OriginConfig, tt.feeds(h, srv.URL+"/et.ipset"))
			tt.act(t, h, srv)
			c := NewCollector(h.eng)
			compare(t, c, tt.want, feedMetrics...)
			if got := histogramCount(t, c, "rampart_feed_sync_duration_seconds"); got != tt.syncs {
				t.Errorf("sync duration histogram counts %d pulls, want %d", got, tt.syncs)
			}
		})
	}
}

func TestCancelledSyncIsNoFailure(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The server cancels the sync while it is being fetched, as a shutdown would.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel()
		<-r.Context().Done()
	}))
	defer srv.Close()
	h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("cut", srv.URL+"/feed.txt")})
	if _, err := h.eng.SyncFeed(ctx, "cut"); !errors.Is(err, context.Canceled) {
		t.Fatalf("sync error = %v, want a cancellation", err)
	}
	c := NewCollector(h.eng)
	compare(t, c, `
rampart_feed_sync_failures_total{feed="cut"} 0
`, "rampart_feed_sync_failures_total")
	if got := histogramCount(t, c, "rampart_feed_sync_duration_seconds"); got != 0 {
		t.Errorf("sync duration histogram counts %d pulls, want 0", got)
	}
}

func TestJobMetrics(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.eng.AddJob("test:fail", time.Hour, func(context.Context) error { return errors.New("boom") })
	h.eng.AddJob("test:ok", time.Hour, func(context.Context) error { return nil })
	ctx := context.Background()
	h.eng.jobs.run(ctx, "test:fail")
	h.eng.jobs.run(ctx, "test:ok")
	h.eng.jobs.run(ctx, "test:ok")

	c := NewCollector(h.eng)
	compare(t, c, `
rampart_job_last_error{job="history:purge"} 0
rampart_job_last_error{job="history:rescore"} 0
rampart_job_last_error{job="test:fail"} 1
rampart_job_last_error{job="test:ok"} 0
rampart_job_runs_total{job="history:purge"} 0
rampart_job_runs_total{job="history:rescore"} 0
rampart_job_runs_total{job="test:fail"} 1
rampart_job_runs_total{job="test:ok"} 2
rampart_job_running{job="history:purge"} 0
rampart_job_running{job="history:rescore"} 0
rampart_job_running{job="test:fail"} 0
rampart_job_running{job="test:ok"} 0
`, "rampart_job_last_error", "rampart_job_runs_total", "rampart_job_running")

	// Durations and start times are not asserted (timing); that they
	// exist for the jobs that ran, and only for those, is.
	for _, name := range []string{"rampart_job_last_duration_seconds", "rampart_job_last_run_timestamp_seconds"} {
		got := map[string]bool{}
		for _, m := range family(t, c, name).GetMetric() {
			got[m.GetLabel()[0].GetValue()] = true
		}
		if len(got) != 2 || !got["test:fail"] || !got["test:ok"] {
			t.Errorf("%s has series for %v, want test:fail and test:ok", name, got)
		}
	}
}

func TestCollectorLint(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	srv := newFeedServer(t)
	srv.set("/et.ipset", sample(t, "feeds", "firehol", "et_compromised.ipset"))
	h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("et", srv.URL+"/et.ipset"), feed("down", closedURL(t))})
	syncOK(t, h, "et")
	syncFail(t, h, "down")
	h.eng.jobs.run(context.Background(), JobRescore)
	c := NewCollector(h.eng)
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	// A pedantic registry checks every metric against Describe.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if _, err := reg.Gather(); err != nil {
		t.Error(err)
	}
}

func TestLabelValueRepairsInvalidUTF8(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"caf\xe9", "caf\uFFFD"},
	} {
		t.Run(strconv.Quote(tc.in)+" becomes "+strconv.Quote(tc.want), func(t *testing.T) {
			if got := labelValue(tc.in); got != tc.want {
				t.Errorf("labelValue(%q) = %q", tc.in, got)
			}
		})
	}
}

func syncOK(t *testing.T, h *harness, name string) {
	t.Helper()
	if _, err := h.eng.SyncFeed(context.Background(), name); err != nil {
		t.Fatalf("sync %s: %v", name, err)
	}
}

func syncFail(t *testing.T, h *harness, name string) {
	t.Helper()
	if _, err := h.eng.SyncFeed(context.Background(), name); err == nil {
		t.Fatalf("sync %s succeeded, want a failure", name)
	}
}

// ts renders a time as the metrics do.
func ts(t time.Time) string { return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'g', -1, 64) }

// compare checks the named metric families of c against samples (one
// "name{labels} value" per line), with the help and type lines taken from
// c itself so that the test states only values.
func compare(t *testing.T, c prometheus.Collector, samples string, names ...string) {
	t.Helper()
	var b strings.Builder
	for _, name := range names {
		mf := family(t, c, name)
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, mf.GetHelp(), name, strings.ToLower(mf.GetType().String()))
		for _, l := range strings.Split(samples, "\n") {
			if strings.HasPrefix(l, name+"{") || strings.HasPrefix(l, name+" ") {
				b.WriteString(l + "\n")
			}
		}
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(b.String()), names...); err != nil {
		t.Error(err)
	}
}

// family gathers c and returns the named family; its help and type are
// needed even when a test expects it to have no samples.
func family(t *testing.T, c prometheus.Collector, name string) *dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	// A family without samples is not gathered. A test that expects none
	// of it gets a stand-in: help and type of an empty family are not
	// compared.
	return &dto.MetricFamily{Name: &name, Help: new(string), Type: dto.MetricType_GAUGE.Enum()}
}

func histogramCount(t *testing.T, c prometheus.Collector, name string) uint64 {
	t.Helper()
	ms := family(t, c, name).GetMetric()
	if len(ms) != 1 {
		t.Fatalf("%s has %d series, want 1", name, len(ms))
	}
	return ms[0].GetHistogram().GetSampleCount()
}
