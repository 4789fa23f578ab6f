package misp

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// Errors of Fetch, for errors.Is.
var (
	// ErrTooLarge means a feed file is larger than FetchOptions.MaxBytes.
	ErrTooLarge = errors.New("feed larger than the size limit")
	// ErrFormat means the feed's source_format is not one Rampart parses.
	ErrFormat = errors.New("unknown source_format")
	// ErrSource means the feed's url cannot be fetched (unknown scheme,
	// or a local path in a definition that came from MISP).
	ErrSource = errors.New("unsupported feed source")
	// ErrTooManyEvents means a misp-format manifest lists more events than
	// FetchOptions.MaxEvents.
	ErrTooManyEvents = errors.New("too many events in the manifest")
)

// StatusError is a non-2xx, non-304 HTTP answer.
type StatusError struct {
	Code   int
	Status string
}

// Error names the status, as in "unexpected HTTP status 503 Service Unavailable".
func (e *StatusError) Error() string { return "unexpected HTTP status " + e.Status }

// Defaults of FetchOptions.
const (
	// DefaultFetchTimeout bounds one request, body included.
	DefaultFetchTimeout = 60 * time.Second
	// DefaultMaxBytes bounds one file: 128 MiB is several times the largest
	// public IP lists (a million addresses is about 15 MB).
	DefaultMaxBytes = 128 << 20
	// DefaultMaxEvents bounds the events of one misp-format feed.
	DefaultMaxEvents = 10_000
	// DefaultConcurrency is how many event files are fetched at once: few,
	// to be polite to the feed's host.
	DefaultConcurrency = 4
)

// FetchOptions configures a Fetcher. Zero fields take the defaults above.
type FetchOptions struct {
	// Client makes the HTTP requests; nil means a client with the default
	// transport (TLS verification on, proxy from the environment).
	Client *http.Client
	// Timeout bounds each request, body included.
	Timeout time.Duration
	// MaxBytes bounds each file after decompression; a larger one is an
	// error (ErrTooLarge), never a truncated list.
	MaxBytes int64
	// MaxEvents bounds the events of a misp-format feed.
	MaxEvents int
	// Concurrency is how many event files of a misp-format feed are fetched
	// at once.
	Concurrency int
}

// FetchState is what a Fetch remembers of the last good pull, to make the
// next one conditional.
type FetchState struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// ContentHash is the hex SHA-256 of the (decompressed) body; for a misp
	// feed, of its manifest.
	ContentHash string `json:"content_hash,omitempty"`
}

// FetchResult is the outcome of a successful Fetch.
type FetchResult struct {
	// NotModified is true when the source is unchanged since the state
	// passed in (HTTP 304 or the same content hash); Result is nil then.
	NotModified bool
	State       FetchState
	Result      *Result
}

// Fetcher downloads and parses feeds. It is safe for concurrent use.
type Fetcher struct {
	opts   FetchOptions
	client *http.Client
	log    *slog.Logger
}

// NewFetcher returns a Fetcher with the options' defaults applied.
func NewFetcher(opts FetchOptions, log *slog.Logger) *Fetcher {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultFetchTimeout
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = DefaultMaxEvents
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	client := opts.Client
	if client == nil {
		client = &http.Client{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fetcher{opts: opts, client: client, log: log.With("component", "misp")}
}

// Fetch downloads the feed and parses it by its source_format. prev is the
// state of the last good pull (zero for the first): an unchanged source
// answers NotModified without being parsed. On any error no Result is
// returned, so a failed fetch never replaces good data with a partial list.
// Cancelling ctx aborts the fetch.
func (f *Fetcher) Fetch(ctx context.Context, feed Feed, prev FetchState) (*FetchResult, error) {
	res, err := f.fetch(ctx, feed, prev)
	if err != nil {
		return nil, fmt.Errorf("fetch feed %q: %w", feed.Name, err)
	}
	return res, nil
}

func (f *Fetcher) fetch(ctx context.Context, feed Feed, prev FetchState) (*FetchResult, error) {
	var exclude *regexp.Regexp
	if feed.Settings.Common.ExcludeRegex != "" {
		re, err := compileMISPRegex(feed.Settings.Common.ExcludeRegex)
		if err != nil {
			return nil, fmt.Errorf("settings.common.excluderegex: %w", err)
		}
		exclude = re
	}
	started := time.Now()
	var res *FetchResult
	var err error
	switch feed.SourceFormat {
	case FormatFreetext, FormatCSV:
		res, err = f.fetchList(ctx, feed, prev)
	case FormatMISP:
		res, err = f.fetchMISP(ctx, feed, prev)
	default:
		return nil, fmt.Errorf("%w %q (known: %s, %s, %s)", ErrFormat, feed.SourceFormat, FormatFreetext, FormatCSV, FormatMISP)
	}
	if err != nil {
		return nil, err
	}
	if res.Result != nil && exclude != nil {
		applyExclude(res.Result, exclude)
	}
	if res.Result != nil {
		f.log.DebugContext(ctx, "fetched feed", "feed", feed.Name, "prefixes", len(res.Result.Prefixes),
			"others", len(res.Result.Others), "malformed", res.Result.Malformed, "took", time.Since(started))
	}
	return res, nil
}

func (f *Fetcher) fetchList(ctx context.Context, feed Feed, prev FetchState) (*FetchResult, error) {
	body, state, notModified, err := f.get(ctx, feed, feed.URL, prev)
	if err != nil {
		return nil, err
	}
	if notModified {
		return &FetchResult{NotModified: true, State: state}, nil
	}
	var r *Result
	if feed.SourceFormat == FormatCSV {
		r, err = ParseCSV(bytes.NewReader(body), feed.Settings.CSV)
	} else {
		r, err = ParseFreetext(bytes.NewReader(body))
	}
	if err != nil {
		return nil, err
	}
	return &FetchResult{State: state, Result: r}, nil
}

func (f *Fetcher) fetchMISP(ctx context.Context, feed Feed, prev FetchState) (*FetchResult, error) {
	base := strings.TrimRight(feed.URL, "/")
	body, state, notModified, err := f.get(ctx, feed, base+"/manifest.json", prev)
	if err != nil {
		return nil, err
	}
	if notModified {
		return &FetchResult{NotModified: true, State: state}, nil
	}
	manifest, err := ParseManifest(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if len(manifest) > f.opts.MaxEvents {
		return nil, fmt.Errorf("%w: %d, limit %d", ErrTooManyEvents, len(manifest), f.opts.MaxEvents)
	}
	ids := make([]string, 0, len(manifest))
	for id := range manifest {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	events := make([]*Event, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(f.opts.Concurrency)
	for i, id := range ids {
		g.Go(func() error {
			b, _, _, err := f.get(gctx, feed, base+"/"+id+".json", FetchState{})
			if err != nil {
				return fmt.Errorf("event %s: %w", id, err)
			}
			ev, err := ParseEvent(bytes.NewReader(b))
			if err != nil {
				return fmt.Errorf("event %s: %w", id, err)
			}
			events[i] = ev
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return &FetchResult{State: state, Result: eventsResult(events)}, nil
}

// get reads one file of a feed. It reports notModified when the server
// answers 304 or the body hashes to prev.ContentHash.
func (f *Fetcher) get(ctx context.Context, feed Feed, location string, prev FetchState) ([]byte, FetchState, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	var body []byte
	var state FetchState
	var err error
	switch scheme := urlScheme(location); scheme {
	case "http", "https":
		var notModified bool
		body, state, notModified, err = f.getHTTP(ctx, feed, location, prev)
		if err != nil || notModified {
			return nil, state, notModified, err
		}
	case "file", "":
		if feed.Origin == "misp" {
			// A definition read from a MISP server must not make Rampart
			// read files of its own host.
			return nil, FetchState{}, false, fmt.Errorf("%w: local source in a feed defined in MISP", ErrSource)
		}
		path := location
		if scheme == "file" {
			u, perr := url.Parse(location)
			if perr != nil {
				return nil, FetchState{}, false, fmt.Errorf("%w: %v", ErrSource, perr)
			}
			path = u.Path
		}
		body, err = f.readFile(ctx, path)
		if err != nil {
			return nil, FetchState{}, false, err
		}
	default:
		return nil, FetchState{}, false, fmt.Errorf("%w: scheme %q (use http, https, file or a path)", ErrSource, scheme)
	}
	sum := sha256.Sum256(body)
	state.ContentHash = hex.EncodeToString(sum[:])
	if prev.ContentHash != "" && prev.ContentHash == state.ContentHash {
		return nil, state, true, nil
	}
	return body, state, false, nil
}

// urlScheme returns the lowercased scheme of an URL, or "" for a path
// (including a Windows path such as C:\feeds\list.txt).
func urlScheme(s string) string {
	i := strings.Index(s, "://")
	if i <= 1 {
		return ""
	}
	return strings.ToLower(s[:i])
}

func (f *Fetcher) getHTTP(ctx context.Context, feed Feed, location string, prev FetchState) ([]byte, FetchState, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, location, nil)
	if err != nil {
		return nil, FetchState{}, false, fmt.Errorf("%w: %v", ErrSource, err)
	}
	hdr, err := ParseHeaders(feed.Headers)
	if err != nil {
		return nil, FetchState{}, false, fmt.Errorf("headers: %w", err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("User-Agent", "rampart")
	// Asking for gzip ourselves keeps the decompression (and its size
	// limit) in our hands; the transport would otherwise do it unbounded.
	req.Header.Set("Accept-Encoding", "gzip")
	if prev.ETag != "" {
		req.Header.Set("If-None-Match", prev.ETag)
	}
	if prev.LastModified != "" {
		req.Header.Set("If-Modified-Since", prev.LastModified)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, FetchState{}, false, err
	}
	defer resp.Body.Close()
	state := FetchState{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	if resp.StatusCode == http.StatusNotModified {
		if state.ETag == "" {
			state.ETag = prev.ETag
		}
		if state.LastModified == "" {
			state.LastModified = prev.LastModified
		}
		state.ContentHash = prev.ContentHash
		return nil, state, true, nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, FetchState{}, false, &StatusError{Code: resp.StatusCode, Status: resp.Status}
	}
	if resp.ContentLength > f.opts.MaxBytes && !strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		return nil, FetchState{}, false, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, resp.ContentLength, f.opts.MaxBytes)
	}
	var r io.Reader = resp.Body
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return nil, FetchState{}, false, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		r = zr
	}
	body, err := f.readAll(r)
	if err != nil {
		return nil, FetchState{}, false, err
	}
	return body, state, false, nil
}

func (f *Fetcher) readFile(ctx context.Context, path string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fh, err := os.Open(filepath.Clean(path))
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return f.readAll(fh)
}

// readAll reads a body within MaxBytes, decompressing a gzip file (a .gz
// list, recognised by its magic number).
func (f *Fetcher) readAll(r io.Reader) ([]byte, error) {
	body, err := readLimited(r, f.opts.MaxBytes)
	if err != nil {
		return nil, err
	}
	if len(body) >= 2 && body[0] == 0x1f && body[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		return readLimited(zr, f.opts.MaxBytes)
	}
	return body, nil
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return body, nil
}

// ParseHeaders parses MISP's feed headers field: one "Name: value" per
// line, blank lines ignored.
func ParseHeaders(s string) (http.Header, error) {
	h := http.Header{}
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t\r") || !validHeaderName(name) {
			// The value may be a secret: never echo the line.
			return nil, fmt.Errorf("line %d: want \"Name: value\"", i+1)
		}
		h.Add(name, strings.TrimSpace(value))
	}
	return h, nil
}

func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// compileMISPRegex compiles a PHP-style "/pattern/flags" regular expression
// as MISP stores excluderegex; a bare pattern is accepted too.
func compileMISPRegex(s string) (*regexp.Regexp, error) {
	pattern, flags := s, ""
	if len(s) >= 2 && s[0] == '/' {
		if end := strings.LastIndexByte(s, '/'); end > 0 {
			pattern, flags = s[1:end], s[end+1:]
		}
	}
	var prefix string
	for _, fl := range flags {
		switch fl {
		case 'i', 'm', 's', 'U':
			prefix += string(fl)
		case 'u', 'D':
			// UTF-8 mode and "$ only at the end" are RE2's behaviour already.
		default:
			return nil, fmt.Errorf("unknown regex flag %q", fl)
		}
	}
	if prefix != "" {
		pattern = "(?" + prefix + ")" + pattern
	}
	return regexp.Compile(pattern)
}

// applyExclude drops the entries whose value matches re, as MISP does with
// settings.common.excluderegex. Addresses are matched in their plain form
// (no /32 or /128).
func applyExclude(r *Result, re *regexp.Regexp) {
	r.Prefixes = slices.DeleteFunc(r.Prefixes, func(p netip.Prefix) bool {
		s := p.String()
		if p.IsSingleIP() {
			s = p.Addr().String()
		}
		return re.MatchString(s)
	})
	r.Others = slices.DeleteFunc(r.Others, func(in Indicator) bool { return re.MatchString(in.Value) })
}
