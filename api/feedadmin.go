package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/rampart-ip/rampart/misp"
)

// FeedManager defines, replaces and deletes feeds for POST /api/v1/feeds,
// PUT and DELETE /api/v1/feeds/:name. The definitions reach it decoded but
// not validated beyond their JSON shape; it validates, stores them so that
// they survive a restart, and starts or stops their syncing. Add and
// Replace return the feed's status, JSON-able (the server redacts it as
// for GET /api/v1/feeds).
//
// Errors: a definition that does not validate wraps ErrBadRequest (400,
// its message listing every problem); a name already defined wraps
// ErrConflict (409), as does a feed defined elsewhere (the config file),
// which cannot be changed here (the message says where it comes from); an
// unknown name wraps ErrNotFound (404). Errors name the feed. Any other
// error is answered 500 and logged. Calls run within the request and stop
// when ctx is cancelled; a failed call changes nothing.
type FeedManager interface {
	AddFeed(ctx context.Context, f misp.Feed) (any, error)
	ReplaceFeed(ctx context.Context, name string, f misp.Feed) (any, error)
	DeleteFeed(ctx context.Context, name string) error
}

// mispFeedFields are MISP Feed fields that Rampart has no use for: a feed
// exported from MISP carries them and they are ignored. Any other field
// that misp.Feed does not know is an error, so that a misspelt Rampart
// field (weigth) is not silently dropped.
var mispFeedFields = []string{
	"id", "uuid", "rules", "distribution", "sharing_group_id", "tag_id", "default",
	"fixed_event", "delta_merge", "event_id", "publish", "override_ids",
	"delete_local_file", "lookup_visible", "caching_enabled", "force_to_ids",
	"orgc_id", "cache_timestamp", "origin",
}

// feedFields are the fields misp.Feed decodes.
var feedFields = []string{
	"name", "provider", "url", "source_format", "settings", "enabled", "headers",
	"input_source", "weight", "lifetime", "refresh", "category", "tags",
}

// addFeed answers POST /api/v1/feeds: 201 with the new feed's status.
func (s *Server) addFeed(c echo.Context) error {
	if s.feedAdmin == nil {
		return fmt.Errorf("%w: feed management", ErrUnavailable)
	}
	f, err := s.decodeFeed(c)
	if err != nil {
		return err
	}
	st, err := s.feedAdmin.AddFeed(c.Request().Context(), f)
	if err != nil {
		return err
	}
	s.logger.Info("feed added on request", "feed", f.Name)
	return s.feedAnswer(c, http.StatusCreated, f.Name, st)
}

// replaceFeed answers PUT /api/v1/feeds/:name: 200 with the feed's status.
func (s *Server) replaceFeed(c echo.Context) error {
	if s.feedAdmin == nil {
		return fmt.Errorf("%w: feed management", ErrUnavailable)
	}
	name, err := pathParam(c, "name")
	if err != nil {
		return err
	}
	f, err := s.decodeFeed(c)
	if err != nil {
		return err
	}
	st, err := s.feedAdmin.ReplaceFeed(c.Request().Context(), name, f)
	if err != nil {
		return err
	}
	s.logger.Info("feed replaced on request", "feed", name)
	return s.feedAnswer(c, http.StatusOK, name, st)
}

// deleteFeed answers DELETE /api/v1/feeds/:name: 204.
func (s *Server) deleteFeed(c echo.Context) error {
	if s.feedAdmin == nil {
		return fmt.Errorf("%w: feed management", ErrUnavailable)
	}
	name, err := pathParam(c, "name")
	if err != nil {
		return err
	}
	if err := s.feedAdmin.DeleteFeed(c.Request().Context(), name); err != nil {
		return err
	}
	s.logger.Info("feed deleted on request", "feed", name)
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) feedAnswer(c echo.Context, code int, name string, st any) error {
	v, err := redact(st)
	if err != nil {
		return fmt.Errorf("feed %q: %w", name, err)
	}
	return c.JSON(code, v)
}

// decodeFeed reads a feed definition from the request body, bounded by
// http.max_body_bytes.
func (s *Server) decodeFeed(c echo.Context) (misp.Feed, error) {
	r := c.Request()
	b, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, s.maxBody))
	if err != nil {
		return misp.Feed{}, fmt.Errorf("read feed definition: %w", err)
	}
	return DecodeFeed(b)
}

// DecodeFeed decodes one feed definition: a MISP Feed object, bare or
// wrapped as MISP exports it ({"Feed": {...}, "Tag": {...}}), with
// Rampart's own fields (weight, lifetime, refresh, category, tags) beside
// MISP's. MISP's enabled flag may be a boolean, a number or a string
// ("1"); settings may be an object or a JSON string; the MISP fields
// Rampart has no use for are ignored, and origin is set by Rampart, never
// read. The wrapper's Tag name becomes the first tag. Every problem of the
// JSON shape is reported at once, wrapping ErrBadRequest; the definition
// is not validated (Feed.Validate).
func DecodeFeed(b []byte) (misp.Feed, error) {
	var f misp.Feed
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil || top == nil {
		return f, fmt.Errorf("%w: feed definition: not a JSON object: %v", ErrBadRequest, jsonProblem(err))
	}
	obj := top
	var tag string
	if raw, ok := top["Feed"]; ok {
		obj = nil
		if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			return f, fmt.Errorf("%w: feed definition: Feed: not a JSON object: %v", ErrBadRequest, jsonProblem(err))
		}
		if raw, ok := top["Tag"]; ok {
			var t struct {
				Name string `json:"name"`
			}
			if json.Unmarshal(raw, &t) == nil {
				tag = t.Name
			}
		}
	}

	var problems []string
	clean := make(map[string]json.RawMessage, len(obj))
	for k, v := range obj {
		switch {
		case slices.Contains(feedFields, k):
			clean[k] = v
		case slices.Contains(mispFeedFields, k):
		default:
			problems = append(problems, fmt.Sprintf("%s: unknown field", k))
		}
	}
	if raw, ok := clean["enabled"]; ok {
		on, err := flexBool(raw)
		if err != nil {
			problems = append(problems, "enabled: "+err.Error())
		}
		clean["enabled"] = json.RawMessage(fmt.Sprint(on))
	}
	// Each field alone, so that every bad one is named.
	for k, v := range clean {
		var one misp.Feed
		if err := json.Unmarshal(fieldObject(k, v), &one); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", k, jsonProblem(err)))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return misp.Feed{}, fmt.Errorf("%w: feed definition: %s", ErrBadRequest, strings.Join(problems, "; "))
	}
	whole, err := json.Marshal(clean)
	if err != nil {
		return misp.Feed{}, fmt.Errorf("decode feed: %w", err)
	}
	if err := json.Unmarshal(whole, &f); err != nil {
		return misp.Feed{}, fmt.Errorf("%w: feed definition: %v", ErrBadRequest, jsonProblem(err))
	}
	f.Origin = ""
	if tag != "" && !slices.Contains(f.Tags, tag) {
		f.Tags = append([]string{tag}, f.Tags...)
	}
	return f, nil
}

// fieldObject returns {"k": v}.
func fieldObject(k string, v json.RawMessage) []byte {
	var buf bytes.Buffer
	kb, _ := json.Marshal(k)
	buf.WriteByte('{')
	buf.Write(kb)
	buf.WriteByte(':')
	buf.Write(v)
	buf.WriteByte('}')
	return buf.Bytes()
}

// flexBool reads MISP's boolean flags: true/false, 0/1 or "0"/"1".
func flexBool(raw json.RawMessage) (bool, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return false, errors.New("not a boolean")
	}
	switch t := v.(type) {
	case bool:
		return t, nil
	case float64:
		if t == 0 || t == 1 {
			return t == 1, nil
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(t)) {
		case "1", "true":
			return true, nil
		case "0", "false", "":
			return false, nil
		}
	case nil:
		return false, nil
	}
	return false, errors.New("not a boolean (true, false, 0, 1, \"0\" or \"1\")")
}

// jsonProblem describes a JSON decoding error without Go type names.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case err == nil:
		return "null"
	case errors.As(err, &te):
		return fmt.Sprintf("a JSON %s is not accepted here", te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	}
	return err.Error()
}
