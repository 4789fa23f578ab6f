package alert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/slack-go/slack"

	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/reputation"
)

// Defaults for the alerts.slack settings left at zero.
const (
	DefaultVerdict     = reputation.VerdictDangerous
	DefaultDedup       = time.Hour
	DefaultBatchSize   = 20
	DefaultBatchWindow = 10 * time.Second
	DefaultPerMinute   = 10
	DefaultQueueSize   = 1024
	DefaultDedupSize   = 100_000
	DefaultTimeout     = 10 * time.Second
)

// MaxBatchSize is the most alerts one message may list: Slack allows 50
// blocks per message, and a message spends one on its header.
const MaxBatchSize = 45

const (
	// maxAttempts is how often a batch is tried when Slack cannot be
	// reached or answers 5xx, before its alerts count as failed.
	maxAttempts = 3
	// retryBackoff is the wait after the first such failure; it doubles.
	retryBackoff = 5 * time.Second
	// minRetryAfter is the wait after a 429 without a usable Retry-After.
	minRetryAfter = time.Second
	// maxResponseBytes bounds what is read of one Slack answer.
	maxResponseBytes = 1 << 20
	// pollEvery is how often the sender reads the clock while alerts are
	// pending: a batch goes out at most this late. Idle, it does not wake.
	pollEvery = 50 * time.Millisecond
)

// ErrConfig is wrapped by NewSlack's errors about alerts.slack settings.
var ErrConfig = errors.New("invalid slack alert settings")

// ErrRunning is returned by Run when the notifier is already running.
var ErrRunning = errors.New("slack notifier already running")

// knownVerdicts are the verdicts an answer can carry.
var knownVerdicts = []string{
	reputation.VerdictDangerous, reputation.VerdictSuspicious,
	reputation.VerdictTriage, reputation.VerdictNone,
}

// Stats counts what happened to the alerts a Notifier was given.
type Stats struct {
	// Sent is the number of alerts delivered in a message Slack accepted.
	Sent uint64
	// Messages is the number of messages Slack accepted.
	Messages uint64
	// Dropped is the number of alerts lost without an attempt: the queue
	// was full, or the notifier stopped before sending them.
	Dropped uint64
	// Deduped is the number of alerts skipped because their address was
	// alerted within the dedup window.
	Deduped uint64
	// Failed is the number of alerts in messages that Slack refused or
	// that could not be delivered after retries.
	Failed uint64
	// RateLimited is the number of 429 answers from Slack.
	RateLimited uint64
	// Retried is the number of calls to Slack that failed (unreachable,
	// timed out, 5xx) and were retried later.
	Retried uint64
	// Pending is the number of alerts held by the sender, waiting for the
	// batch window, the rate limit or Slack's Retry-After.
	Pending int
	// Sending is the number of alerts in the call to Slack in flight.
	Sending int
	// Queued is the number of alerts waiting in the queue.
	Queued int
}

// Notifier posts alerts about dangerous answers to one Slack channel. A nil
// *Notifier is valid and does nothing. Observe is safe for concurrent use;
// Run is called once.
type Notifier struct {
	verdicts []string
	queue    chan alert

	api       *slack.Client
	transport *http.Transport
	token     string
	channel   string
	log       *slog.Logger
	now       func() time.Time

	dedup     time.Duration
	dedupSize int
	batchSize int
	window    time.Duration
	perMinute int

	running     atomic.Bool
	sent        atomic.Uint64
	messages    atomic.Uint64
	dropped     atomic.Uint64
	deduped     atomic.Uint64
	failed      atomic.Uint64
	rateLimited atomic.Uint64
	retried     atomic.Uint64
	pending     atomic.Int64
	sending     atomic.Int64
}

// alert is what the sender needs of one answer. It is copied into the
// queue by value, so Observe allocates nothing; its slices are the
// answer's own, which answers never modify once computed.
type alert struct {
	ip         string
	verdict    string
	action     string
	score      float64
	blacklists []string
	types      []string
	reasons    []reputation.Reason
	asn        string
	country    string
	org        string
}

// NewSlack returns a Notifier for cfg, or (nil, nil) when neither a token
// nor a channel is configured: alerts are off, and the nil Notifier does
// nothing. cfg.Token must already hold the token (the config loader
// resolves token_env and RAMPART_SLACK_TOKEN). Zero settings take the
// Default values. now is the clock for every time-based decision; nil
// means time.Now. A nil logger discards.
func NewSlack(cfg config.Slack, logger *slog.Logger, now func() time.Time) (*Notifier, error) {
	if cfg.Token == "" && cfg.Channel == "" {
		return nil, nil
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("alerts.slack.%s: %s: %w", key, fmt.Sprintf(format, args...), ErrConfig))
	}
	if cfg.Token == "" {
		bad("token", "is required when a channel is set")
	}
	if cfg.Channel == "" {
		bad("channel", "is required when a token is set")
	}
	verdicts := slices.Clone(cfg.Verdicts)
	if len(verdicts) == 0 {
		verdicts = []string{DefaultVerdict}
	}
	for i, v := range verdicts {
		if !slices.Contains(knownVerdicts, v) {
			bad(fmt.Sprintf("verdicts[%d]", i), "unknown verdict %q (known: %q)", v, knownVerdicts)
		}
	}
	apiURL := slack.APIURL
	if cfg.APIURL != "" {
		u, err := url.Parse(cfg.APIURL)
		switch {
		case err != nil:
			bad("api_url", "not a URL")
		case u.Scheme != "https" && u.Scheme != "http" || u.Host == "":
			bad("api_url", "must be an http or https URL with a host")
		case u.User != nil:
			bad("api_url", "must not carry credentials")
		default:
			apiURL = strings.TrimSuffix(cfg.APIURL, "/") + "/"
		}
	}
	dedup := orDefault(time.Duration(cfg.Dedup), DefaultDedup)
	window := orDefault(time.Duration(cfg.BatchWindow), DefaultBatchWindow)
	timeout := orDefault(time.Duration(cfg.Timeout), DefaultTimeout)
	batchSize := orDefault(cfg.BatchSize, DefaultBatchSize)
	perMinute := orDefault(cfg.PerMinute, DefaultPerMinute)
	queueSize := orDefault(cfg.QueueSize, DefaultQueueSize)
	dedupSize := orDefault(cfg.DedupSize, DefaultDedupSize)
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"dedup", dedup}, {"batch_window", window}, {"timeout", timeout}} {
		if d.v < 0 {
			bad(d.key, "must not be negative, got %s", d.v)
		}
	}
	if batchSize < 1 || batchSize > MaxBatchSize {
		bad("batch_size", "must be 1 to %d, got %d", MaxBatchSize, batchSize)
	}
	for _, n := range []struct {
		key string
		v   int
	}{{"per_minute", perMinute}, {"queue_size", queueSize}, {"dedup_size", dedupSize}} {
		if n.v < 1 {
			bad(n.key, "must be positive, got %d", n.v)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configure slack alerts: %w", err)
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	client := &http.Client{
		Transport: limitedTransport{tr},
		Timeout:   timeout,
		// A redirect would carry the token (a form field) to another
		// host; answer with the redirect instead, which fails the call.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	n := &Notifier{
		verdicts:  verdicts,
		queue:     make(chan alert, queueSize),
		transport: tr,
		token:     cfg.Token,
		channel:   cfg.Channel,
		log:       logger.With("component", "alert"),
		now:       now,
		dedup:     dedup,
		dedupSize: dedupSize,
		batchSize: batchSize,
		window:    window,
		perMinute: perMinute,
	}
	n.api = slack.New(cfg.Token, slack.OptionAPIURL(apiURL), slack.OptionHTTPClient(client))
	return n, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Observe considers one freshly computed answer for an alert. It never
// blocks and allocates nothing: an answer whose verdict does not alert is
// ignored; otherwise its headline fields are queued for the sender, or
// dropped and counted when the queue is full. Observe keeps a's slices
// (blacklists, types, reasons) without copying them, so the caller must not
// modify them afterwards; answers are never modified once computed.
func (n *Notifier) Observe(a *reputation.Answer) {
	if n == nil || a == nil || !n.alerts(a.Verdict) {
		return
	}
	select {
	case n.queue <- alert{
		ip: a.IP, verdict: a.Verdict, action: a.Action, score: a.Score,
		blacklists: a.Blacklists, types: a.Type, reasons: a.Reasons,
		asn: a.Metadata.ASN, country: a.Metadata.Country, org: a.Metadata.Org,
	}:
	default:
		n.dropped.Add(1)
	}
}

// alerts reports whether verdict is one that alerts. A scan beats a map:
// there are at most four verdicts.
func (n *Notifier) alerts(verdict string) bool {
	for _, v := range n.verdicts {
		if v == verdict {
			return true
		}
	}
	return false
}

// Stats returns the notifier's counters; a nil Notifier has none.
func (n *Notifier) Stats() Stats {
	if n == nil {
		return Stats{}
	}
	return Stats{
		Sent:        n.sent.Load(),
		Messages:    n.messages.Load(),
		Dropped:     n.dropped.Load(),
		Deduped:     n.deduped.Load(),
		Failed:      n.failed.Load(),
		RateLimited: n.rateLimited.Load(),
		Retried:     n.retried.Load(),
		Pending:     int(n.pending.Load()),
		Sending:     int(n.sending.Load()),
		Queued:      len(n.queue),
	}
}

// Run sends the queued alerts until ctx ends, then returns nil; alerts not
// yet sent are counted as dropped. A call in flight to Slack is abandoned
// when ctx ends. Run on a nil Notifier returns nil at once; a second Run
// while one is running returns ErrRunning.
func (n *Notifier) Run(ctx context.Context) error {
	if n == nil {
		return nil
	}
	if !n.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer n.running.Store(false)
	defer n.transport.CloseIdleConnections()

	dedup, err := simplelru.NewLRU[netip.Addr, time.Time](n.dedupSize, nil)
	if err != nil {
		return fmt.Errorf("run slack notifier: %w", err)
	}
	s := &sender{n: n, seen: dedup, rate: newRateWindow(n.perMinute, time.Minute)}
	// The ticker only sets how often the clock is read while alerts are
	// pending; what the clock says decides when a batch goes out.
	tick := time.NewTicker(pollEvery)
	tick.Stop()
	defer tick.Stop()
	ticking := false
	n.log.Info("slack alerts started", "channel", n.channel, "verdicts", n.verdicts)
	for {
		var in <-chan alert
		if len(s.pending) < n.batchSize {
			in = n.queue
		}
		select {
		case <-ctx.Done():
			if len(s.pending) > 0 {
				n.dropped.Add(uint64(len(s.pending)))
				n.log.Warn("slack alerts stopped with alerts unsent", "alerts", len(s.pending))
			}
			n.pending.Store(0)
			return nil
		case a := <-in:
			s.accept(a)
			s.drain()
		case <-tick.C:
		}
		s.flush(ctx)
		n.pending.Store(int64(len(s.pending)))
		switch {
		case len(s.pending) > 0 && !ticking:
			tick.Reset(pollEvery)
			ticking = true
		case len(s.pending) == 0 && ticking:
			tick.Stop()
			ticking = false
		}
	}
}

// sender is the state Run owns: nothing else touches it.
type sender struct {
	n        *Notifier
	seen     *simplelru.LRU[netip.Addr, time.Time]
	rate     *rateWindow
	pending  []alert
	firstAt  time.Time // when the oldest pending alert was accepted
	retryAt  time.Time // no call to Slack before this
	attempts int       // failed attempts of the pending batch
}

// accept adds a to the pending batch unless its address was alerted
// within the dedup window. An address is remembered when it is accepted,
// so that repeats are deduplicated while the batch waits. An address that
// does not parse is sent without deduplication rather than lost.
func (s *sender) accept(a alert) {
	now := s.n.now()
	if addr, err := netip.ParseAddr(a.ip); err == nil {
		addr = addr.Unmap() // one address, however it was written
		if at, ok := s.seen.Peek(addr); ok && now.Sub(at) < s.n.dedup {
			s.n.deduped.Add(1)
			return
		}
		s.seen.Add(addr, now)
	}
	if len(s.pending) == 0 {
		s.firstAt = now
	}
	s.pending = append(s.pending, a)
}

// drain accepts what is already queued, up to a full batch, so that a burst
// goes out in as few messages as possible.
func (s *sender) drain() {
	for len(s.pending) < s.n.batchSize {
		select {
		case a := <-s.n.queue:
			s.accept(a)
		default:
			return
		}
	}
}

// ready reports whether the pending batch may be sent at now.
func (s *sender) ready(now time.Time) bool {
	if len(s.pending) == 0 || now.Before(s.retryAt) {
		return false
	}
	if len(s.pending) < s.n.batchSize && now.Sub(s.firstAt) < s.n.window {
		return false
	}
	return s.rate.allows(now)
}

// flush sends the pending batch if it is due and allowed, and decides its
// fate from Slack's answer.
func (s *sender) flush(ctx context.Context) {
	n := s.n
	now := n.now()
	if !s.ready(now) {
		return
	}
	s.rate.record(now)
	count := uint64(len(s.pending))
	msg := buildMessage(s.pending, n.verdicts)
	n.pending.Store(0)
	n.sending.Store(int64(count))
	_, _, err := n.api.PostMessageContext(ctx, n.channel,
		slack.MsgOptionText(msg.text, false), slack.MsgOptionBlocks(msg.blocks...))
	n.sending.Store(0)
	// Counters move after the state they report on, so that whoever sees
	// a counter change also sees the retry time it led to.
	var limited *slack.RateLimitedError
	var refused slack.SlackErrorResponse
	switch {
	case err == nil:
		n.sent.Add(count)
		n.messages.Add(1)
		s.clear()
	case ctx.Err() != nil:
		// Shutting down: Run counts the batch as dropped.
	case errors.As(err, &limited):
		wait := max(limited.RetryAfter, minRetryAfter)
		s.retryAt = n.now().Add(wait)
		n.rateLimited.Add(1)
		n.log.Warn("slack rate limited the alerts", "retry_after", wait, "alerts", count)
	case errors.As(err, &refused):
		n.failed.Add(count)
		n.log.Warn("slack refused an alert message", "slack_error", n.redact(refused.Err), "alerts", count)
		s.clear()
	default:
		s.attempts++
		if s.attempts >= maxAttempts {
			n.failed.Add(count)
			n.log.Warn("slack alert message failed", "err", n.redact(err.Error()), "attempts", s.attempts, "alerts", count)
			s.clear()
			return
		}
		wait := retryBackoff << (s.attempts - 1)
		s.retryAt = n.now().Add(wait)
		n.retried.Add(1)
		n.log.Warn("slack alert message failed, will retry", "err", n.redact(err.Error()), "retry_in", wait, "alerts", count)
	}
}

// clear empties the pending batch, keeping its memory.
func (s *sender) clear() {
	clear(s.pending) // drop references to the answers' slices
	s.pending = s.pending[:0]
	s.attempts = 0
}

// redact removes the token from text bound for a log line, whatever a
// library or a server put into it, and bounds its length.
func (n *Notifier) redact(text string) string {
	text = strings.ReplaceAll(text, n.token, "[redacted]")
	if len(text) > 300 {
		text = truncate(text, 300)
	}
	return text
}

// limitedTransport bounds what is read of each Slack answer, so a hostile
// or broken endpoint cannot make the sender read without end.
type limitedTransport struct{ rt http.RoundTripper }

func (t limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = limitedBody{io.LimitReader(resp.Body, maxResponseBytes), resp.Body}
	return resp, nil
}

type limitedBody struct {
	io.Reader
	io.Closer
}
