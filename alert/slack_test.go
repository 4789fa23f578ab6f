package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/reputation"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a log destination that tests read while the sender writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// cfgFor is a configuration pointing at the fake.
func cfgFor(f *fakeSlack) config.Slack {
	return config.Slack{Token: testToken, Channel: testChannel, APIURL: f.url(), BatchWindow: config.Duration(10 * time.Second)}
}

// start builds a notifier and runs it until the test ends, checking that
// Run stops cleanly.
func start(t *testing.T, cfg config.Slack, clock *fakeClock, logger *slog.Logger) *Notifier {
	t.Helper()
	n, err := NewSlack(cfg, logger, clock.Now)
	if err != nil {
		t.Fatalf("NewSlack: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
	})
	return n
}

// dangerous is an answer with an alerting verdict and one feed.
func dangerous(ip string) *reputation.Answer {
	return &reputation.Answer{
		IP: ip, IsIoC: true, IsActive: true, Score: 10, Verdict: reputation.VerdictDangerous,
		Action: reputation.ActionBlock, Blacklists: []string{"blocklist_de"}, Type: []string{},
		Reasons: []reputation.Reason{{Factor: "feed", Detail: "blocklist_de", Weight: 0.1}},
	}
}

// section10 is how dangerous(ip) is rendered.
func section10(ip string) string {
	return "section: *" + ip + "*: dangerous, score 10.0, action block\nBlacklists: blocklist_de\nReasons: feed blocklist_de (0.10)"
}

// batchOf is the message dangerous(ips...) make together.
func batchOf(at time.Time, ips ...string) posted {
	p := posted{Channel: testChannel, At: at,
		Text:   fmt.Sprintf("Rampart: %d dangerous: %s", len(ips), strings.Join(ips, ", ")),
		Blocks: []string{fmt.Sprintf("header: Rampart: %d dangerous", len(ips))}}
	for _, ip := range ips {
		p.Blocks = append(p.Blocks, section10(ip))
	}
	return p
}

func wantMessages(t *testing.T, f *fakeSlack, want ...posted) {
	t.Helper()
	if got := f.messages(); !reflect.DeepEqual(got, want) {
		t.Errorf("Slack received:\n%#v\nwant:\n%#v", got, want)
	}
}

func TestNewSlack(t *testing.T) {
	tests := []struct {
		name    string
		cfg     config.Slack
		wantNil bool
		wantErr []string
	}{
		{name: "no token and no channel turn alerts off", cfg: config.Slack{Verdicts: []string{"dangerous"}}, wantNil: true},
		{name: "a token and a channel make a notifier", cfg: config.Slack{Token: testToken, Channel: "#alerts"}},
		{name: "a token without a channel is an error", cfg: config.Slack{Token: testToken},
			wantErr: []string{"alerts.slack.channel: is required"}},
		{name: "a channel without a token is an error", cfg: config.Slack{Channel: "#alerts"},
			wantErr: []string{"alerts.slack.token: is required"}},
		{name: "an unknown verdict is an error naming the known ones",
			cfg:     config.Slack{Token: testToken, Channel: "#a", Verdicts: []string{"dangerous", "evil"}},
			wantErr: []string{`alerts.slack.verdicts[1]: unknown verdict "evil"`, `"Manual triage needed"`}},
		{name: "every bad setting is reported at once",
			cfg: config.Slack{Token: testToken, Channel: "#a", BatchSize: MaxBatchSize + 1, PerMinute: -1,
				QueueSize: -2, DedupSize: -3, Dedup: config.Duration(-time.Second), BatchWindow: config.Duration(-time.Second),
				Timeout: config.Duration(-time.Second)},
			wantErr: []string{"alerts.slack.batch_size: must be 1 to 45, got 46", "alerts.slack.per_minute", "alerts.slack.queue_size",
				"alerts.slack.dedup_size", "alerts.slack.dedup:", "alerts.slack.batch_window", "alerts.slack.timeout"}},
		{name: "an API URL that is not http is an error", cfg: config.Slack{Token: testToken, Channel: "#a", APIURL: "ftp://slack.example/api/"},
			wantErr: []string{"alerts.slack.api_url: must be an http or https URL"}},
		{name: "an API URL with credentials is an error", cfg: config.Slack{Token: testToken, Channel: "#a", APIURL: "https://u:p@slack.example/api/"},
			wantErr: []string{"alerts.slack.api_url: must not carry credentials"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := NewSlack(tt.cfg, discard(), nil)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatal("NewSlack succeeded, want an error")
				}
				if !errors.Is(err, ErrConfig) {
					t.Errorf("error %v does not wrap ErrConfig", err)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				if strings.Contains(err.Error(), testToken) {
					t.Errorf("error %q contains the token", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewSlack: %v", err)
			}
			if (n == nil) != tt.wantNil {
				t.Errorf("notifier is %v, want nil: %v", n, tt.wantNil)
			}
		})
	}
}

func TestNilNotifierDoesNothing(t *testing.T) {
	var n *Notifier
	n.Observe(dangerous("203.0.113.7"))
	if s := n.Stats(); s != (Stats{}) {
		t.Errorf("Stats of a nil notifier = %+v, want zero", s)
	}
	if err := n.Run(context.Background()); err != nil {
		t.Errorf("Run of a nil notifier = %v, want nil", err)
	}
}

func TestObserveQueuesOnlyAlertingVerdicts(t *testing.T) {
	tests := []struct {
		name     string
		verdicts []string
		answer   *reputation.Answer
		queued   int
	}{
		{name: "a dangerous answer alerts by default", answer: dangerous("203.0.113.7"), queued: 1},
		{name: "a suspicious answer does not alert by default",
			answer: &reputation.Answer{IP: "203.0.113.8", Verdict: reputation.VerdictSuspicious}},
		{name: "a suspicious answer alerts when configured", verdicts: []string{"dangerous", "suspicious"},
			answer: &reputation.Answer{IP: "203.0.113.8", Verdict: reputation.VerdictSuspicious}, queued: 1},
		{name: "a clean answer never alerts with the default verdicts",
			answer: &reputation.Answer{IP: "192.0.2.1", Verdict: reputation.VerdictNone}},
		{name: "a nil answer is ignored", answer: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := NewSlack(config.Slack{Token: testToken, Channel: "#a", Verdicts: tt.verdicts}, discard(), nil)
			if err != nil {
				t.Fatal(err)
			}
			n.Observe(tt.answer)
			if got := n.Stats().Queued; got != tt.queued {
				t.Errorf("queued %d alerts, want %d", got, tt.queued)
			}
		})
	}
}

func TestSlackReceivesTheExactMessage(t *testing.T) {
	clock := newFakeClock()
	f := newFakeSlack(t, clock)
	cfg := cfgFor(f)
	cfg.Verdicts = []string{"dangerous", "suspicious"}
	cfg.BatchSize = 2
	n := start(t, cfg, clock, discard())

	first, last := clock.Now(), clock.Now()
	n.Observe(&reputation.Answer{
		IP: "203.0.113.7", IsIoC: true, IsActive: true, Score: 12.5, Verdict: "dangerous", Action: "block",
		Blacklists: []string{"blocklist_de", "ipsum"}, Type: []string{"bruteforce"},
		Metadata:  reputation.Metadata{ASN: "AS64500", Country: "DE", Org: "Example Hosting"},
		FirstSeen: &first, LastSeen: &last,
		Reasons: []reputation.Reason{{Factor: "feed", Detail: "blocklist_de", Weight: 0.8}, {Factor: "feed", Detail: "ipsum", Weight: 0.9}},
	})
	n.Observe(&reputation.Answer{
		IP: "2001:db8::66", Score: 45, Verdict: "suspicious", Action: "challenge",
		Blacklists: []string{"evil <!channel> & co\nline"}, Type: []string{},
		Reasons: []reputation.Reason{{Factor: "feed", Detail: "evil <!channel> & co\nline", Weight: 0.5}},
	})
	eventually(t, "Slack has the message", func() bool { return n.Stats().Messages == 1 })

	wantMessages(t, f, posted{
		Channel: testChannel, At: clock.Now(),
		Text: "Rampart: 1 dangerous, 1 suspicious: 203.0.113.7, 2001:db8::66",
		Blocks: []string{
			"header: Rampart: 1 dangerous, 1 suspicious",
			"section: *203.0.113.7*: dangerous, score 12.5, action block\nBlacklists: blocklist_de, ipsum\nType: bruteforce\n" +
				"Network: AS64500, DE, Example Hosting\nReasons: feed blocklist_de (0.80); feed ipsum (0.90)",
			"section: *2001:db8::66*: suspicious, score 45.0, action challenge\nBlacklists: evil &lt;!channel&gt; &amp; co line\n" +
				"Reasons: feed evil &lt;!channel&gt; &amp; co line (0.50)",
		},
	})
	if s := n.Stats(); s.Sent != 2 || s.Failed != 0 || s.Dropped != 0 {
		t.Errorf("stats %+v, want 2 sent and nothing failed or dropped", s)
	}
}

func TestDedup(t *testing.T) {
	t.Run("an address is alerted once per window and again after it", func(t *testing.T) {
		clock := newFakeClock()
		f := newFakeSlack(t, clock)
		cfg := cfgFor(f)
		cfg.BatchSize = 1
		cfg.Dedup = config.Duration(time.Hour)
		n := start(t, cfg, clock, discard())
		t0 := clock.Now()

		n.Observe(dangerous("203.0.113.7"))
		eventually(t, "the first alert is sent", func() bool { return n.Stats().Messages == 1 })
		clock.Advance(59 * time.Minute)
		n.Observe(dangerous("203.0.113.7"))
		eventually(t, "the repeat is deduplicated", func() bool { return n.Stats().Deduped == 1 })
		n.Observe(dangerous("198.51.100.1"))
		eventually(t, "another address is sent", func() bool { return n.Stats().Messages == 2 })
		clock.Advance(time.Minute)
		n.Observe(dangerous("203.0.113.7"))
		eventually(t, "the address is sent again after the window", func() bool { return n.Stats().Messages == 3 })

		wantMessages(t, f, batchOf(t0, "203.0.113.7"), batchOf(t0.Add(59*time.Minute), "198.51.100.1"),
			batchOf(t0.Add(time.Hour), "203.0.113.7"))
	})
	t.Run("repeats inside one batch are listed once", func(t *testing.T) {
		clock := newFakeClock()
		f := newFakeSlack(t, clock)
		cfg := cfgFor(f)
		cfg.BatchSize = 2
		n := start(t, cfg, clock, discard())
		for _, ip := range []string{"203.0.113.7", "203.0.113.7", "203.0.113.9", "203.0.113.7", "203.0.113.8"} {
			n.Observe(dangerous(ip))
		}
		eventually(t, "one message is sent, the repeats are counted and the last alert waits", func() bool {
			s := n.Stats()
			return s.Messages == 1 && s.Deduped == 2 && s.Pending == 1
		})
		wantMessages(t, f, batchOf(clock.Now(), "203.0.113.7", "203.0.113.9"))
	})
	t.Run("the dedup memory is bounded and forgets the least recent address", func(t *testing.T) {
		clock := newFakeClock()
		f := newFakeSlack(t, clock)
		cfg := cfgFor(f)
		cfg.BatchSize = 1
		cfg.DedupSize = 2
		n := start(t, cfg, clock, discard())
		for i, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.1"} {
			n.Observe(dangerous(ip))
			eventually(t, "the alert is sent", func() bool { return n.Stats().Messages == uint64(i+1) })
		}
		if got := n.Stats().Deduped; got != 0 {
			t.Errorf("deduped %d, want 0: the first address was forgotten", got)
		}
	})
}

func TestBatching(t *testing.T) {
	clock := newFakeClock()
	f := newFakeSlack(t, clock)
	cfg := cfgFor(f)
	cfg.BatchSize = 3
	cfg.BatchWindow = config.Duration(10 * time.Second)
	n := start(t, cfg, clock, discard())
	t0 := clock.Now()

	ips := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.6", "192.0.2.7"}
	for _, ip := range ips {
		n.Observe(dangerous(ip))
	}
	eventually(t, "two full batches are sent and one alert waits", func() bool {
		s := n.Stats()
		return s.Messages == 2 && s.Pending == 1
	})
	clock.Advance(10 * time.Second)
	eventually(t, "the last alert is sent when its window ends", func() bool { return n.Stats().Messages == 3 })

	wantMessages(t, f, batchOf(t0, ips[0:3]...), batchOf(t0, ips[3:6]...), batchOf(t0.Add(10*time.Second), ips[6]))
}

func TestRateLimit(t *testing.T) {
	clock := newFakeClock()
	f := newFakeSlack(t, clock)
	cfg := cfgFor(f)
	cfg.BatchSize = 1
	cfg.PerMinute = 2
	n := start(t, cfg, clock, discard())
	t0 := clock.Now()

	n.Observe(dangerous("192.0.2.1"))
	eventually(t, "the first message is sent", func() bool { return n.Stats().Messages == 1 })
	clock.Advance(30 * time.Second)
	n.Observe(dangerous("192.0.2.2"))
	n.Observe(dangerous("192.0.2.3"))
	eventually(t, "the third message waits for the rate limit", func() bool {
		s := n.Stats()
		return s.Messages == 2 && s.Pending == 1
	})
	clock.Advance(30 * time.Second)
	eventually(t, "the third message is sent a minute after the first", func() bool { return n.Stats().Messages == 3 })

	wantMessages(t, f, batchOf(t0, "192.0.2.1"), batchOf(t0.Add(30*time.Second), "192.0.2.2"),
		batchOf(t0.Add(time.Minute), "192.0.2.3"))
}

func TestSlackRateLimitHonoursRetryAfter(t *testing.T) {
	clock := newFakeClock()
	f := newFakeSlack(t, clock)
	f.set(func(f *fakeSlack) { f.limitNext, f.retryAfter = 1, "30" })
	cfg := cfgFor(f)
	cfg.BatchSize = 4
	n := start(t, cfg, clock, discard())
	t0 := clock.Now()

	n.Observe(dangerous("192.0.2.1"))
	n.Observe(dangerous("192.0.2.2"))
	eventually(t, "both alerts wait for the window", func() bool { return n.Stats().Pending == 2 })
	clock.Advance(10 * time.Second)
	eventually(t, "Slack answers 429 and the batch is kept", func() bool {
		s := n.Stats()
		return s.RateLimited == 1 && s.Pending == 2
	})
	// Each new alert makes the sender decide again; a due batch would go
	// out at once, were it not for Retry-After.
	n.Observe(dangerous("192.0.2.3"))
	eventually(t, "the batch is held", func() bool { return n.Stats().Pending == 3 })
	clock.Advance(29 * time.Second)
	n.Observe(dangerous("192.0.2.4"))
	eventually(t, "the batch is held a second before Retry-After ends", func() bool { return n.Stats().Pending == 4 })
	clock.Advance(time.Second)
	eventually(t, "the batch is sent after Retry-After", func() bool { return n.Stats().Messages == 1 })

	retry := t0.Add(40 * time.Second)
	wantMessages(t, f, batchOf(retry, "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"))
	if calls := f.callTimes(); !reflect.DeepEqual(calls, []time.Time{t0.Add(10 * time.Second), retry}) {
		t.Errorf("calls at %v, want one at %v and the retry at %v", calls, t0.Add(10*time.Second), retry)
	}
	if s := n.Stats(); s.Failed != 0 || s.Dropped != 0 {
		t.Errorf("stats %+v, want nothing failed or dropped", s)
	}
}

func TestSlackFailures(t *testing.T) {
	t.Run("a channel Slack does not know fails the batch and the next is tried", func(t *testing.T) {
		clock := newFakeClock()
		f := newFakeSlack(t, clock)
		logs := &syncBuffer{}
		cfg := cfgFor(f)
		cfg.Channel = "C0MISSING"
		cfg.BatchSize = 2
		n := start(t, cfg, clock, slog.New(slog.NewTextHandler(logs, nil)))
		for _, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"} {
			n.Observe(dangerous(ip))
		}
		eventually(t, "both batches fail", func() bool { return n.Stats().Failed == 4 })
		if len(f.callTimes()) != 2 || len(f.messages()) != 0 {
			t.Errorf("%d calls and %d messages, want 2 calls and no message", len(f.callTimes()), len(f.messages()))
		}
		if !strings.Contains(logs.String(), "slack_error=channel_not_found") {
			t.Errorf("log does not name Slack's error:\n%s", logs)
		}
	})
	t.Run("server errors are retried with backoff, then the batch is sent", func(t *testing.T) {
		clock := newFakeClock()
		f := newFakeSlack(t, clock)
		f.set(func(f *fakeSlack) { f.failNext = 2 })
		cfg := cfgFor(f)
		cfg.BatchSize = 3
		n := start(t, cfg, clock, discard())
		t0 := clock.Now()
		n.Observe(dangerous("192.0.2.1"))
		n.Observe(dangerous("192.0.2.2"))
		eventually(t, "both alerts wait for the window", func() bool { return n.Stats().Pending == 2 })
		clock.Advance(10 * time.Second)
		eventually(t, "the first attempt fails", func() bool { return n.Stats().Retried == 1 })
		// A full batch would go out at once, were it not for the backoff.
		n.Observe(dangerous("192.0.2.3"))
		eventually(t, "the full batch is held", func() bool {
			s := n.Stats()
			return s.Pending == 3 && s.Retried == 1
		})
		first := t0.Add(10 * time.Second)
		clock.Advance(retryBackoff)
		eventually(t, "the second attempt fails", func() bool { return n.Stats().Retried == 2 })
		clock.Advance(2 * retryBackoff)
		eventually(t, "the third attempt succeeds", func() bool { return n.Stats().Messages == 1 })
		third := first.Add(3 * retryBackoff)
		wantMessages(t, f, batchOf(third, "192.0.2.1", "192.0.2.2", "192.0.2.3"))
		if calls := f.callTimes(); !reflect.DeepEqual(calls, []time.Time{first, first.Add(retryBackoff), third}) {
			t.Errorf("calls at %v, want at %v, %v and %v", calls, first, first.Add(retryBackoff), third)
		}
	})
	t.Run("a batch that keeps failing is counted as failed", func(t *testing.T) {
		clock := newFakeClock()
		f := newFakeSlack(t, clock)
		f.set(func(f *fakeSlack) { f.failNext = maxAttempts })
		cfg := cfgFor(f)
		cfg.BatchSize = 1
		n := start(t, cfg, clock, discard())
		n.Observe(dangerous("192.0.2.1"))
		for i := 1; i < maxAttempts; i++ {
			eventually(t, "an attempt fails", func() bool { return n.Stats().Retried == uint64(i) })
			clock.Advance(time.Hour)
		}
		eventually(t, "the batch fails", func() bool { return n.Stats().Failed == 1 })
		n.Observe(dangerous("192.0.2.2"))
		eventually(t, "the next alert is sent", func() bool { return n.Stats().Messages == 1 })
		wantMessages(t, f, batchOf(clock.Now(), "192.0.2.2"))
	})
}

func TestHungSlackNeverBlocksObserve(t *testing.T) {
	clock := newFakeClock()
	f := newFakeSlack(t, clock)
	f.set(func(f *fakeSlack) { f.hang = true })
	cfg := cfgFor(f)
	cfg.BatchSize = 5
	cfg.QueueSize = 64
	cfg.Timeout = config.Duration(time.Hour)
	n, err := NewSlack(cfg, discard(), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()

	for i := range cfg.BatchSize {
		n.Observe(dangerous(fmt.Sprintf("198.51.100.%d", i+1)))
	}
	eventually(t, "the sender is stuck in a call to Slack", func() bool { return len(f.callTimes()) == 1 })

	const calls, workers = 10_000, 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < calls; i += workers {
				n.Observe(dangerous(fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&0xff, i&0xff)))
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
		t.Fatal("Observe blocked while Slack hangs")
	}

	s := n.Stats()
	if s.Queued != cfg.QueueSize || s.Dropped != calls-uint64(cfg.QueueSize) || s.Sending != cfg.BatchSize || s.Pending != 0 {
		t.Errorf("stats %+v, want %d queued, %d dropped, %d sending", s, cfg.QueueSize, calls-cfg.QueueSize, cfg.BatchSize)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if s := n.Stats(); s.Dropped != calls-uint64(cfg.QueueSize)+uint64(cfg.BatchSize) || s.Sent != 0 {
		t.Errorf("after stop, stats %+v: the abandoned batch should count as dropped", s)
	}
}

func TestRunTwiceIsAnError(t *testing.T) {
	clock := newFakeClock()
	f := newFakeSlack(t, clock)
	n := start(t, cfgFor(f), clock, discard())
	n.Observe(dangerous("192.0.2.1"))
	eventually(t, "the first Run is receiving", func() bool { return n.Stats().Pending == 1 })
	if err := n.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
}

func TestTokenNeverLeaks(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, f *fakeSlack, cfg *config.Slack)
	}{
		{name: "Slack's error text echoes the token", setup: func(t *testing.T, f *fakeSlack, cfg *config.Slack) {
			f.set(func(f *fakeSlack) { f.errorNext = "invalid_auth: " + testToken })
		}},
		{name: "Slack cannot be reached", setup: func(t *testing.T, f *fakeSlack, cfg *config.Slack) {
			dead := httptest.NewServer(http.NotFoundHandler())
			dead.Close()
			cfg.APIURL = dead.URL + "/api/"
		}},
		{name: "Slack answers with a server error", setup: func(t *testing.T, f *fakeSlack, cfg *config.Slack) {
			f.set(func(f *fakeSlack) { f.failNext = maxAttempts })
		}},
		{name: "the API URL redirects elsewhere", setup: func(t *testing.T, f *fakeSlack, cfg *config.Slack) {
			cfg.APIURL = redirector(t, f.srv.URL).URL + "/api/"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			f := newFakeSlack(t, clock)
			cfg := cfgFor(f)
			cfg.BatchSize = 1
			tt.setup(t, f, &cfg)
			logs := &syncBuffer{}
			n := start(t, cfg, clock, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			n.Observe(dangerous("192.0.2.1"))
			eventually(t, "the message fails", func() bool {
				clock.Advance(time.Minute) // past any retry backoff
				return n.Stats().Failed == 1
			})
			if strings.Contains(logs.String(), testToken) {
				t.Errorf("log contains the token:\n%s", logs)
			}
			if !strings.Contains(logs.String(), "component=alert") {
				t.Errorf("log has no component field or no failure line:\n%s", logs)
			}
			if len(f.messages()) != 0 {
				t.Errorf("Slack accepted %d messages, want none", len(f.messages()))
			}
		})
	}
}
