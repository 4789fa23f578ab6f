package misp

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Errors of the MISP client, for errors.Is.
var (
	// ErrUnauthorized means MISP refused the key (HTTP 401, or 403 without
	// validation errors): a wrong, expired or non-API key.
	ErrUnauthorized = errors.New("misp authentication failed")
	// ErrNotFound means MISP does not know the object (HTTP 404).
	ErrNotFound = errors.New("misp object not found")
	// ErrResponse means MISP answered something that is not the JSON the
	// endpoint documents: HTML (a login page), truncated or invalid JSON, an
	// unexpected shape or a redirect.
	ErrResponse = errors.New("invalid misp response")
	// ErrResponseTooLarge means a response was larger than
	// ClientOptions.MaxBytes.
	ErrResponseTooLarge = errors.New("misp response larger than the size limit")
)

// Defaults of ClientOptions.
const (
	DefaultClientTimeout = 30 * time.Second
	DefaultMaxResponse   = 256 << 20
	DefaultAttempts      = 3
	DefaultRetryBase     = 500 * time.Millisecond
	maxRetryDelay        = 10 * time.Second
	eventCacheSize       = 4096
	eventCacheTTL        = time.Hour
)

// ClientOptions configure a Client. URL and Key are required; zero values
// of the rest take the defaults above. (config.MISP maps onto it: the
// config package imports this one, so the client cannot take config.MISP.)
type ClientOptions struct {
	URL string
	// Key is the MISP automation key, sent as "Authorization: <key>".
	Key string
	// InsecureSkipVerify turns TLS verification off. It is an explicit
	// choice (misp.verify_tls: false) and is logged as a warning.
	InsecureSkipVerify bool
	// CAFile is a PEM file of CA certificates trusted besides the system's.
	CAFile string
	// Timeout bounds each request, body included.
	Timeout time.Duration
	// MaxBytes bounds each response body.
	MaxBytes int64
	// Attempts is how many times a request is tried in all when it times
	// out, cannot connect or gets a 5xx answer.
	Attempts int
	// RetryBase is the first retry delay; each retry doubles it, with
	// jitter, up to 10s.
	RetryBase time.Duration
	// Transport replaces the HTTP transport (tests); TLS options are then
	// the caller's.
	Transport http.RoundTripper
}

// APIError is an error answer of MISP's REST API: its JSON body
// {"name", "message", "url"} and the HTTP status. Validation failures
// (403 with "errors") carry the field messages in Errors.
type APIError struct {
	Status  int
	Name    string
	Message string
	URL     string
	Errors  map[string][]string
}

// Error returns the status and MISP's message.
func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Name
	}
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	s := fmt.Sprintf("misp: HTTP %d: %s", e.Status, msg)
	if len(e.Errors) > 0 {
		s += fmt.Sprintf(" %v", e.Errors)
	}
	return s
}

// Is maps the status to ErrUnauthorized or ErrNotFound.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || (e.Status == http.StatusForbidden && len(e.Errors) == 0)
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	}
	return false
}

// Client talks to one MISP instance's REST API. It is safe for concurrent
// use. Its key never appears in its errors, its log lines or its String.
type Client struct {
	base     *url.URL
	key      string
	http     *http.Client
	maxBytes int64
	attempts int
	retry    time.Duration
	log      *slog.Logger
	// events caches Event answers; the plain LRU starts no goroutine.
	events *lru.Cache[string, cachedEvent]
}

type cachedEvent struct {
	rec EventRecord
	at  time.Time
}

// NewClient returns a client for opts.URL. It reads opts.CAFile; it does
// no network I/O.
func NewClient(opts ClientOptions, log *slog.Logger) (*Client, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "misp")
	u, err := url.Parse(strings.TrimRight(opts.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("new misp client: url must be an http:// or https:// URL")
	}
	if u.User != nil {
		return nil, errors.New("new misp client: url must not carry credentials (use misp.key)")
	}
	if opts.Key == "" {
		return nil, errors.New("new misp client: no key")
	}
	for _, r := range opts.Key {
		if r < 0x21 || r > 0x7e {
			return nil, errors.New("new misp client: key holds spaces or control characters")
		}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultClientTimeout
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxResponse
	}
	if opts.Attempts <= 0 {
		opts.Attempts = DefaultAttempts
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = DefaultRetryBase
	}
	rt := opts.Transport
	if rt == nil {
		tr, err := transport(opts)
		if err != nil {
			return nil, fmt.Errorf("new misp client: %w", err)
		}
		rt = tr
	}
	if opts.InsecureSkipVerify && u.Scheme == "https" {
		log.Warn("TLS certificate verification of MISP is turned off (misp.verify_tls: false)", "url", u.Redacted())
	}
	events, err := lru.New[string, cachedEvent](eventCacheSize)
	if err != nil {
		return nil, fmt.Errorf("new misp client: %w", err)
	}
	return &Client{
		base: u,
		key:  opts.Key,
		http: &http.Client{
			Transport: rt,
			Timeout:   opts.Timeout,
			// A redirect from MISP's API is a login page or a wrong URL;
			// following it could also send the key elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		maxBytes: opts.MaxBytes,
		attempts: opts.Attempts,
		retry:    opts.RetryBase,
		log:      log,
		events:   events,
	}, nil
}

func transport(opts ClientOptions) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 10 * time.Second
	tr.ResponseHeaderTimeout = opts.Timeout
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: opts.InsecureSkipVerify} //nolint:gosec // explicit, logged choice
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate found", opts.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	tr.TLSClientConfig = tlsCfg
	return tr, nil
}

// String describes the client without its key.
func (c *Client) String() string { return "misp.Client(" + c.base.Redacted() + ")" }

// LogValue logs the client as its URL, never its key.
func (c *Client) LogValue() slog.Value { return slog.StringValue(c.base.Redacted()) }

// Feeds returns MISP's feed list (GET /feeds/index), enabled or not.
func (c *Client) Feeds(ctx context.Context) ([]FeedRecord, error) {
	var raw []json.RawMessage
	err := c.do(ctx, http.MethodGet, "/feeds/index", nil, &raw)
	if errors.Is(err, ErrNotFound) {
		// /feeds/index is what MISP's UI uses; its OpenAPI documents /feeds.
		err = c.do(ctx, http.MethodGet, "/feeds", nil, &raw)
	}
	if err != nil {
		return nil, fmt.Errorf("list misp feeds: %w", err)
	}
	out := make([]FeedRecord, 0, len(raw))
	for i, item := range raw {
		var wrap struct {
			Feed *wireFeedRec `json:"Feed"`
		}
		if err := json.Unmarshal(item, &wrap); err != nil {
			return nil, fmt.Errorf("list misp feeds: entry %d: %w: %v", i, ErrResponse, err)
		}
		w := wrap.Feed
		if w == nil { // a bare feed object
			w = new(wireFeedRec)
			if err := json.Unmarshal(item, w); err != nil {
				return nil, fmt.Errorf("list misp feeds: entry %d: %w: %v", i, ErrResponse, err)
			}
		}
		rec := FeedRecord{
			ID: string(w.ID), Name: w.Name, Provider: w.Provider, URL: w.URL, SourceFormat: w.SourceFormat,
			Enabled: bool(w.Enabled), InputSource: w.InputSource, Settings: settingsString(w.Settings),
		}
		if w.Headers != nil {
			rec.Headers = *w.Headers
		}
		out = append(out, rec)
	}
	return out, nil
}

// settingsString returns MISP's settings as the JSON string MISP stores,
// whether the answer held the string or the object.
func settingsString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return ""
	}
	return string(raw)
}

// SearchAttributes returns one page of POST /attributes/restSearch.
func (c *Client) SearchAttributes(ctx context.Context, q AttributeQuery) ([]AttributeRecord, error) {
	body := map[string]any{"returnFormat": "json"}
	if len(q.Types) > 0 {
		body["type"] = q.Types
	}
	if q.Timestamp > 0 {
		body["timestamp"] = q.Timestamp
	}
	if q.Deleted {
		body["deleted"] = []int{0, 1}
	}
	if q.ToIDs {
		body["to_ids"] = 1
	}
	if q.IncludeEventTags {
		body["includeEventTags"] = 1
	}
	if q.EventID != "" {
		body["eventid"] = q.EventID
	}
	if q.Limit > 0 {
		body["limit"] = q.Limit
		body["page"] = max(q.Page, 1)
	}
	var resp struct {
		Response json.RawMessage `json:"response"`
	}
	if err := c.do(ctx, http.MethodPost, "/attributes/restSearch", body, &resp); err != nil {
		return nil, fmt.Errorf("search misp attributes: %w", err)
	}
	var list struct {
		Attribute []wireAttrRec `json:"Attribute"`
	}
	switch r := bytes.TrimSpace(resp.Response); {
	case len(r) == 0 || string(r) == "null":
		return nil, fmt.Errorf("search misp attributes: %w: no response object", ErrResponse)
	case r[0] == '[': // MISP answers an empty match as [] in some versions
		var empty []json.RawMessage
		if err := json.Unmarshal(r, &empty); err != nil || len(empty) != 0 {
			return nil, fmt.Errorf("search misp attributes: %w: response is a non-empty list", ErrResponse)
		}
	default:
		if err := json.Unmarshal(r, &list); err != nil {
			return nil, fmt.Errorf("search misp attributes: %w: %v", ErrResponse, err)
		}
	}
	out := make([]AttributeRecord, len(list.Attribute))
	for i, w := range list.Attribute {
		a := AttributeRecord{
			ID: string(w.ID), EventID: string(w.EventID), UUID: w.UUID, Type: w.Type, Value: w.Value,
			Category: w.Category, ToIDs: bool(w.ToIDs), Deleted: bool(w.Deleted), Timestamp: int64(w.Timestamp),
			Event: w.Event.record(),
		}
		if a.EventID == "" {
			a.EventID = a.Event.ID
		}
		if a.Event.ID == "" {
			a.Event.ID = a.EventID
		}
		for _, t := range w.Tag {
			if t.Name != "" {
				a.Tags = append(a.Tags, TagRecord{Name: t.Name, Inherited: bool(t.Inherited)})
			}
		}
		out[i] = a
	}
	return out, nil
}

// Event returns an event's metadata (GET /events/view/{id}), for what
// restSearch does not embed (threat level, tags). Answers are cached for
// an hour; ForgetEvent drops one.
func (c *Client) Event(ctx context.Context, id string) (EventRecord, error) {
	if _, err := strconv.ParseUint(id, 10, 63); err != nil {
		return EventRecord{}, fmt.Errorf("view misp event %q: invalid id", id)
	}
	if ev, ok := c.events.Get(id); ok && time.Since(ev.at) < eventCacheTTL {
		return ev.rec, nil
	}
	var resp struct {
		Event *wireEventRec `json:"Event"`
	}
	if err := c.do(ctx, http.MethodGet, "/events/view/"+id, nil, &resp); err != nil {
		return EventRecord{}, fmt.Errorf("view misp event %s: %w", id, err)
	}
	if resp.Event == nil {
		return EventRecord{}, fmt.Errorf("view misp event %s: %w: no Event object", id, ErrResponse)
	}
	ev := resp.Event.record()
	if ev.ID == "" {
		ev.ID = id
	}
	c.events.Add(id, cachedEvent{rec: ev, at: time.Now()})
	return ev, nil
}

// ForgetEvent drops an event from the cache of Event.
func (c *Client) ForgetEvent(id string) { c.events.Remove(id) }

// do sends one API request, retrying timeouts, connection errors and 5xx
// answers with jittered exponential backoff, and decodes the JSON answer
// into out.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var payload []byte
	if in != nil {
		var err error
		if payload, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	delay := c.retry
	var err error
	for attempt := 1; ; attempt++ {
		var retry bool
		retry, err = c.once(ctx, method, path, payload, out)
		if err == nil || !retry || attempt >= c.attempts || ctx.Err() != nil {
			break
		}
		wait := delay/2 + rand.N(delay/2+1)
		c.log.Debug("misp request failed, retrying", "path", path, "attempt", attempt, "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (after %d attempts, last: %v)", ctx.Err(), attempt, err)
		case <-t.C:
		}
		delay = min(delay*2, maxRetryDelay)
	}
	return err
}

// once sends one request and reports whether a failure may be retried.
func (c *Client) once(ctx context.Context, method, path string, payload []byte, out any) (bool, error) {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return false, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", c.key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "rampart")
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, c.scrub(err)
		}
		return true, c.scrub(err) // timeouts, refused or reset connections
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBytes+1))
	if err != nil {
		return ctx.Err() == nil, fmt.Errorf("read %s: %w", path, c.scrub(err))
	}
	if int64(len(data)) > c.maxBytes {
		return false, fmt.Errorf("%s: %w (%d bytes)", path, ErrResponseTooLarge, c.maxBytes)
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode >= 500, c.apiError(resp, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return false, fmt.Errorf("%s: %w: %s", path, ErrResponse, describeBody(data, err))
	}
	return false, nil
}

// apiError turns an error answer into an *APIError (MISP's JSON body) or,
// for other bodies, an error naming the status.
func (c *Client) apiError(resp *http.Response, data []byte) error {
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return fmt.Errorf("%w: redirect (HTTP %d) to %q: check misp.url", ErrResponse, resp.StatusCode, c.scrubString(resp.Header.Get("Location")))
	}
	var w struct {
		Name    string              `json:"name"`
		Message string              `json:"message"`
		URL     string              `json:"url"`
		Errors  map[string][]string `json:"errors"`
	}
	e := &APIError{Status: resp.StatusCode}
	if json.Unmarshal(data, &w) == nil && (w.Name != "" || w.Message != "") {
		e.Name, e.Message, e.URL = c.scrubString(w.Name), c.scrubString(w.Message), c.scrubString(w.URL)
		e.Errors = w.Errors
	} else {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// describeBody says what a body that is not the expected JSON looks like,
// without quoting much of it.
func describeBody(data []byte, err error) string {
	t := bytes.TrimSpace(data)
	switch {
	case len(t) == 0:
		return "empty body"
	case t[0] == '<':
		return "HTML instead of JSON (a login page? check misp.url and misp.key)"
	}
	return err.Error()
}

// scrub makes sure the key cannot leak through an error's text. The
// original error stays reachable with errors.Is/As unless it held the key.
func (c *Client) scrub(err error) error {
	if err == nil || !strings.Contains(err.Error(), c.key) {
		return err
	}
	return errors.New(c.scrubString(err.Error()))
}

func (c *Client) scrubString(s string) string { return strings.ReplaceAll(s, c.key, "REDACTED") }
