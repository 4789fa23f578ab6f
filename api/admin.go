package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// redacted replaces secrets in answers.
const redacted = "REDACTED"

// listFeeds answers GET /api/v1/feeds with the feed lister's report,
// redacted: URL credentials and secret query parameters, request headers
// (MISP's headers field often carries an API key) and any secret-looking
// field are replaced.
func (s *Server) listFeeds(c echo.Context) error {
	if s.feeds == nil {
		return fmt.Errorf("%w: feed status", ErrUnavailable)
	}
	v, err := redact(s.feeds.Feeds())
	if err != nil {
		return fmt.Errorf("list feeds: %w", err)
	}
	return c.JSON(http.StatusOK, v)
}

// syncFeed answers POST /api/v1/feeds/:name/sync by syncing the feed
// within the request and answering the sync's report.
func (s *Server) syncFeed(c echo.Context) error {
	if s.admin == nil {
		return fmt.Errorf("%w: feed sync", ErrUnavailable)
	}
	name, err := pathParam(c, "name")
	if err != nil {
		return err
	}
	report, err := s.admin.SyncFeed(c.Request().Context(), name)
	if err != nil {
		return err // the syncer's errors name the feed
	}
	s.logger.Info("feed synced on request", "feed", name)
	v, err := redact(report)
	if err != nil {
		return fmt.Errorf("sync feed %q: %w", name, err)
	}
	return c.JSON(http.StatusOK, v)
}

// listJobs answers GET /api/v1/jobs.
func (s *Server) listJobs(c echo.Context) error {
	if s.jobs == nil {
		return fmt.Errorf("%w: job status", ErrUnavailable)
	}
	// A job's last error may quote a feed URL.
	v, err := redact(s.jobs.Jobs())
	if err != nil {
		return fmt.Errorf("list jobs: %w", err)
	}
	return c.JSON(http.StatusOK, v)
}

// episode is one entry of an address's history.
type episode struct {
	Source   string     `json:"source"`
	Prefix   string     `json:"prefix"`
	Started  time.Time  `json:"started"`
	LastSeen time.Time  `json:"last_seen"`
	Ended    *time.Time `json:"ended"` // null while the listing is open
	Active   bool       `json:"active"`
}

type historyAnswer struct {
	IP       string    `json:"ip"`
	Episodes []episode `json:"episodes"`
}

// history answers GET /api/v1/ip/:address/history: every listing and
// ended episode whose prefix contains the address, oldest first.
func (s *Server) history(c echo.Context) error {
	raw, err := pathParam(c, "address")
	if err != nil {
		return err
	}
	addr, err := ParseAddr(raw)
	if err != nil {
		return err
	}
	now := s.now()
	matches := s.svc.History(addr)
	out := historyAnswer{IP: addr.String(), Episodes: make([]episode, 0, len(matches))}
	for i := range matches {
		m := &matches[i]
		ep := episode{
			Prefix:   m.Prefix.String(),
			Started:  m.Since.UTC(),
			LastSeen: m.LastSeen.UTC(),
			Active:   m.Active(now),
		}
		if m.Source != nil {
			ep.Source = m.Source.Name
		}
		if !m.Ended.IsZero() {
			t := m.Ended.UTC()
			ep.Ended = &t
		}
		out.Episodes = append(out.Episodes, ep)
	}
	slices.SortStableFunc(out.Episodes, func(a, b episode) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.Source, b.Source)
	})
	return c.JSON(http.StatusOK, out)
}

// pathParam returns a path parameter, unescaped.
func pathParam(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if strings.Contains(v, "%") {
		u, err := url.PathUnescape(v)
		if err != nil {
			return "", fmt.Errorf("%w: %s: not valid URL encoding", ErrBadRequest, name)
		}
		v = u
	}
	return v, nil
}

// secretFields are object keys whose values never leave the server.
var secretFields = map[string]bool{
	"headers": true, "key": true, "api_key": true, "apikey": true, "token": true,
	"password": true, "secret": true, "authorization": true, "auth": true,
}

// secretParams are URL query parameters that carry credentials.
var secretParams = []string{"key", "api_key", "apikey", "token", "access_token", "password", "pass", "secret", "auth", "sig", "signature"}

// redact returns v as generic JSON with secrets replaced: it works on
// whatever shape the lister reports, so a new field cannot leak by being
// forgotten here, as long as its name or its URL says what it is.
func redact(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("redact: %w", err)
	}
	var g any
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("redact: %w", err)
	}
	return redactValue(g), nil
}

func redactValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			lk := strings.ToLower(k)
			switch {
			case secretFields[lk]:
				if s, ok := x.(string); !ok || s != "" {
					t[k] = redacted
				}
			case lk == "url" || strings.HasSuffix(lk, "_url"):
				if s, ok := x.(string); ok {
					t[k] = RedactURL(s)
				} else {
					t[k] = redactValue(x)
				}
			default:
				t[k] = redactValue(x)
			}
		}
		return t
	case []any:
		for i := range t {
			t[i] = redactValue(t[i])
		}
		return t
	case string:
		// Error messages may quote a URL with credentials or a secret
		// query parameter.
		if strings.Contains(t, "://") {
			return redactURLsIn(t)
		}
		return t
	}
	return v
}

// RedactURL replaces the credentials of a URL (user info and secret query
// parameters) with REDACTED. A string that does not parse as a URL is
// returned as it is when it holds nothing credential-like, else redacted
// whole.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			return redacted
		}
		return s
	}
	if u.User != nil {
		u.User = url.User(redacted)
	}
	if u.RawQuery != "" {
		q := u.Query()
		changed := false
		for k := range q {
			if slices.Contains(secretParams, strings.ToLower(k)) {
				q[k] = []string{redacted}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// redactURLsIn redacts every URL-looking word of a free text. A URL ends
// at a quote or angle bracket, and trailing punctuation is not part of it,
// so that `Get "https://u:p@host/x": EOF` keeps its quotes and colon.
func redactURLsIn(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		if !strings.Contains(w, "://") {
			continue
		}
		u := strings.TrimLeft(w, "\"'(<[`")
		if end := strings.IndexAny(u, "\"'<>`"); end >= 0 {
			u = u[:end]
		}
		u = strings.TrimRight(u, ".,;:)]")
		if u != "" {
			words[i] = strings.Replace(w, u, RedactURL(u), 1)
		}
	}
	return strings.Join(words, " ")
}
