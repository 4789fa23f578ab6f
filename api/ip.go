package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-ip/rampart/reputation"
)

// maxPooledBuf is the largest rendering buffer returned to the pool, so
// that one huge answer does not pin memory.
const maxPooledBuf = 64 << 10

// getIP answers GET /ip?ip=ADDRESS[&at=RFC3339]. On the hot path (no at)
// the query string is scanned in place, the cached rendered answer is
// appended to a pooled buffer and written directly: no map, no JSON
// encoder, no allocation of its own.
func (s *Server) getIP(c echo.Context) error {
	r := c.Request()
	raw, err := queryValue(r.URL.RawQuery, "ip")
	if err != nil {
		return err
	}
	if raw == "" {
		return fmt.Errorf("%w: missing address: ask GET /ip?ip=ADDRESS", ErrBadRequest)
	}
	addr, err := ParseAddr(raw)
	if err != nil {
		return err
	}
	at, err := queryValue(r.URL.RawQuery, "at")
	if err != nil {
		return err
	}

	bp := s.bufs.Get().(*[]byte)
	b := (*bp)[:0]
	if at == "" {
		b = s.svc.AppendJSON(b, addr)
		// The verdict is read back from the rendered body: a second
		// cache lookup (Judge) would cost more than this scan.
		s.metrics.verdict(verdictOf(b))
	} else {
		t, err := s.parseAt(at)
		if err != nil {
			s.bufs.Put(bp)
			return err
		}
		ans, err := s.svc.CheckAt(addr, t)
		if err != nil {
			s.bufs.Put(bp)
			return fmt.Errorf("at: %w", err)
		}
		s.metrics.verdict(ans.Verdict)
		b = reputation.AppendAnswerJSON(b, &ans)
	}
	w := c.Response()
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b) // a write error means the client left; nothing to answer
	if cap(b) <= maxPooledBuf {
		*bp = b
		s.bufs.Put(bp)
	}
	return nil
}

// parseAt parses the at parameter: an RFC 3339 time, not in the future.
func (s *Server) parseAt(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: at: %q is not an RFC 3339 time such as 2026-11-20T10:00:00Z", ErrBadRequest, v)
	}
	if t.After(s.now()) {
		return time.Time{}, fmt.Errorf("%w: at: %s is in the future", ErrBadRequest, v)
	}
	return t, nil
}

// queryValue returns the value of key in a raw query string, unescaped,
// or "" when it is absent. It scans in place and allocates only to
// unescape. A key given twice is an error: which one a cache or a proxy
// in between looked at cannot be known.
func queryValue(rawQuery, key string) (string, error) {
	var found bool
	var val string
	for q := rawQuery; q != ""; {
		var part string
		part, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(part, "=")
		if strings.ContainsAny(k, "%+") {
			uk, err := url.QueryUnescape(k)
			if err != nil {
				continue // not our key; other parameters are not checked
			}
			k = uk
		}
		if k != key {
			continue
		}
		if found {
			return "", fmt.Errorf("%w: parameter %s given more than once", ErrBadRequest, key)
		}
		found = true
		val = v
	}
	if strings.ContainsAny(val, "%+") {
		uv, err := url.QueryUnescape(val)
		if err != nil {
			return "", fmt.Errorf("%w: parameter %s is not valid URL encoding", ErrBadRequest, key)
		}
		val = uv
	}
	return val, nil
}

// batchEntryError is a per-address error in a batch answer.
type batchEntryError struct {
	IP    string `json:"ip"`
	Error string `json:"error"`
}

// postIP answers POST /ip {"ips": [...]}: {"results": [...]}, one answer
// per entry in the order given; a bad entry gets {"ip": "<as given>",
// "error": "..."} in its place. The body is read as a stream so that a
// batch over the limit is refused as soon as it is counted.
func (s *Server) postIP(c echo.Context) error {
	r := c.Request()
	body := http.MaxBytesReader(c.Response(), r.Body, s.maxBody)
	entries, err := decodeBatch(body, s.maxBatch)
	if err != nil {
		return err
	}
	out := make([]byte, 0, 16+len(entries)*320)
	out = append(out, `{"results":[`...)
	for i, raw := range entries {
		if i > 0 {
			out = append(out, ',')
		}
		out = s.appendEntry(out, raw)
	}
	out = append(out, "]}\n"...)
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, out)
}

// appendEntry appends the answer for one batch entry, or its error.
func (s *Server) appendEntry(out []byte, raw json.RawMessage) []byte {
	var given string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &given) != nil {
		return appendJSONValue(out, batchEntryError{IP: string(raw), Error: "entry is not a string"})
	}
	addr, err := ParseAddr(given)
	if err != nil {
		return appendJSONValue(out, batchEntryError{IP: given, Error: err.Error()})
	}
	n := len(out)
	out = s.svc.AppendJSON(out, addr)
	s.metrics.verdict(verdictOf(out[n:]))
	return out
}

func appendJSONValue(out []byte, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil { // only plain strings are marshalled here
		return append(out, `{"error":"internal error"}`...)
	}
	return append(out, b...)
}

// decodeBatch reads {"ips": [...]} strictly: one object, the one key
// "ips" holding an array, nothing after it. It stops reading once the
// array holds more than max entries.
func decodeBatch(r io.Reader, max int) ([]json.RawMessage, error) {
	dec := json.NewDecoder(r)
	bad := func(err error) error {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("%w: malformed JSON: %v", ErrBadRequest, err)
	}
	const shape = `the body must be {"ips": ["ADDRESS", ...]}`
	if tok, err := dec.Token(); err != nil {
		return nil, bad(err)
	} else if tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: %s", ErrBadRequest, shape)
	}
	var entries []json.RawMessage
	seen := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad(err)
		}
		if tok != "ips" {
			return nil, fmt.Errorf("%w: unknown field %q: %s", ErrBadRequest, tok, shape)
		}
		if seen {
			return nil, fmt.Errorf("%w: field \"ips\" given more than once", ErrBadRequest)
		}
		seen = true
		if tok, err := dec.Token(); err != nil {
			return nil, bad(err)
		} else if tok != json.Delim('[') {
			return nil, fmt.Errorf("%w: \"ips\" must be an array: %s", ErrBadRequest, shape)
		}
		entries = []json.RawMessage{}
		for dec.More() {
			if len(entries) == max {
				return nil, fmt.Errorf("%w: a batch may hold at most %d addresses; split it", ErrTooLarge, max)
			}
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, bad(err)
			}
			entries = append(entries, raw)
		}
		if _, err := dec.Token(); err != nil { // ]
			return nil, bad(err)
		}
	}
	if _, err := dec.Token(); err != nil { // }
		return nil, bad(err)
	}
	if !seen {
		return nil, fmt.Errorf("%w: missing field \"ips\": %s", ErrBadRequest, shape)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, bad(err)
		}
		return nil, fmt.Errorf("%w: data after the JSON object", ErrBadRequest)
	}
	return entries, nil
}
