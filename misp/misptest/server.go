package misptest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Failure is a fault the server can be switched into.
type Failure int

// Failures that Fail switches on.
const (
	// OK serves normally.
	OK Failure = iota
	// Internal answers HTTP 500 with MISP's error body.
	Internal
	// Slow answers only when the request's context ends or Close is called.
	Slow
	// InvalidJSON answers 200 with a truncated JSON body.
	InvalidJSON
	// HTML answers 200 with an HTML login page, as MISP does for a session
	// request without Accept: application/json.
	HTML
	// EndlessPages makes restSearch ignore page: every page is the first,
	// full page, so paging never reaches a short page.
	EndlessPages
	// EndlessBody streams a JSON body that never ends.
	EndlessBody
)

// Feed is a feed definition in the stand-in.
type Feed struct {
	Name         string
	Provider     string
	URL          string
	SourceFormat string
	Enabled      bool
	InputSource  string // "network" (default) or "local"
	Settings     string // MISP's settings JSON string
	Headers      string
}

// Event is an event in the stand-in.
type Event struct {
	UUID        string
	Info        string
	ThreatLevel int // 1..4; 0 means 4
	Tags        []string
	Published   bool
}

// Attribute is an attribute in the stand-in.
type Attribute struct {
	UUID     string
	Type     string
	Value    string
	Category string
	ToIDs    bool
	Deleted  bool
	Tags     []string
	// Timestamp is set by the server (its clock) on every change.
	Timestamp int64
}

type event struct {
	Event
	id        int
	timestamp int64
}

type attribute struct {
	Attribute
	id, eventID int
}

// Server is a running MISP stand-in. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	// Key is the API key the server accepts.
	Key string

	mu       sync.Mutex
	now      func() time.Time
	nextID   int
	feeds    map[int]*Feed
	feedIDs  []int
	events   map[int]*event
	attrs    []*attribute // by id
	failure  Failure
	failLeft int // failures left; 0 means until Fail(OK)
	requests map[string]int
	closing  chan struct{}
	once     sync.Once
}

// New starts a stand-in on an ephemeral local port with a random 40-character key.
func New() *Server {
	s := &Server{
		Key:      randomKey(),
		now:      time.Now,
		feeds:    map[int]*Feed{},
		events:   map[int]*event{},
		requests: map[string]int{},
		closing:  make(chan struct{}),
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close releases slow requests and stops the server.
func (s *Server) Close() {
	s.once.Do(func() { close(s.closing) })
	s.Server.Close()
}

// SetClock sets the clock that stamps changes (unix seconds, as MISP).
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// Fail switches a failure on for the next times requests (0: until Fail(OK)).
func (s *Server) Fail(f Failure, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failure, s.failLeft = f, times
}

// Requests returns how many requests reached path (failed ones included).
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

func randomKey() string {
	const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 40)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return string(b)
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func (s *Server) idLocked() int {
	s.nextID++
	return s.nextID
}

func (s *Server) stampLocked() int64 { return s.now().Unix() }

// AddFeed adds a feed and returns its id.
func (s *Server) AddFeed(f Feed) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.idLocked()
	if f.InputSource == "" {
		f.InputSource = "network"
	}
	s.feeds[id] = &f
	s.feedIDs = append(s.feedIDs, id)
	return strconv.Itoa(id)
}

// EditFeed changes a feed; it reports false for an unknown id.
func (s *Server) EditFeed(id string, fn func(*Feed)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.feeds[atoi(id)]
	if ok {
		fn(f)
	}
	return ok
}

// DeleteFeed deletes a feed.
func (s *Server) DeleteFeed(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := atoi(id)
	delete(s.feeds, n)
	s.feedIDs = slices.DeleteFunc(s.feedIDs, func(x int) bool { return x == n })
}

// AddEvent adds an event and returns its id.
func (s *Server) AddEvent(e Event) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.idLocked()
	if e.UUID == "" {
		e.UUID = newUUID()
	}
	s.events[id] = &event{Event: e, id: id, timestamp: s.stampLocked()}
	return strconv.Itoa(id)
}

// EditEvent changes an event's metadata (its attributes keep their
// timestamps, as in MISP); it reports false for an unknown id.
func (s *Server) EditEvent(id string, fn func(*Event)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.events[atoi(id)]
	if ok {
		fn(&e.Event)
		e.timestamp = s.stampLocked()
	}
	return ok
}

// DeleteEvent deletes an event and its attributes for good (MISP deletes
// events hard, so incremental pulls do not see it).
func (s *Server) DeleteEvent(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := atoi(id)
	delete(s.events, n)
	s.attrs = slices.DeleteFunc(s.attrs, func(a *attribute) bool { return a.eventID == n })
}

// AddAttribute adds an attribute to an event and returns its id, or ""
// for an unknown event.
func (s *Server) AddAttribute(eventID string, a Attribute) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := atoi(eventID)
	if _, ok := s.events[ev]; !ok {
		return ""
	}
	id := s.idLocked()
	if a.UUID == "" {
		a.UUID = newUUID()
	}
	if a.Category == "" {
		a.Category = "Network activity"
	}
	a.Timestamp = s.stampLocked()
	s.attrs = append(s.attrs, &attribute{Attribute: a, id: id, eventID: ev})
	return strconv.Itoa(id)
}

// AddAttributes adds many attributes to one event at once (for large
// tests and benchmarks) and returns how many were added.
func (s *Server) AddAttributes(eventID string, as []Attribute) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := atoi(eventID)
	if _, ok := s.events[ev]; !ok {
		return 0
	}
	ts := s.stampLocked()
	for _, a := range as {
		if a.UUID == "" {
			a.UUID = newUUID()
		}
		if a.Category == "" {
			a.Category = "Network activity"
		}
		a.Timestamp = ts
		s.attrs = append(s.attrs, &attribute{Attribute: a, id: s.idLocked(), eventID: ev})
	}
	return len(as)
}

// EditAttribute changes an attribute and bumps its timestamp; it reports
// false for an unknown id.
func (s *Server) EditAttribute(id string, fn func(*Attribute)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.attrLocked(atoi(id))
	if a == nil {
		return false
	}
	fn(&a.Attribute)
	a.Timestamp = s.stampLocked()
	return true
}

// DeleteAttribute soft-deletes an attribute (deleted: true, timestamp
// bumped), as MISP's /attributes/delete does.
func (s *Server) DeleteAttribute(id string) bool {
	return s.EditAttribute(id, func(a *Attribute) { a.Deleted = true })
}

// PurgeAttribute deletes an attribute for good (MISP's hard delete).
func (s *Server) PurgeAttribute(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := atoi(id)
	s.attrs = slices.DeleteFunc(s.attrs, func(a *attribute) bool { return a.id == n })
}

func (s *Server) attrLocked(id int) *attribute {
	i, ok := slices.BinarySearchFunc(s.attrs, id, func(a *attribute, id int) int { return a.id - id })
	if !ok {
		return nil
	}
	return s.attrs[i]
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

// serve is the HTTP entry point: counting, failures, auth, routing.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, ".json")
	s.mu.Lock()
	s.requests[path]++
	fail := s.failure
	if fail != OK && s.failLeft > 0 {
		s.failLeft--
		if s.failLeft == 0 {
			s.failure = OK
		}
	}
	s.mu.Unlock()

	switch fail {
	case Internal:
		writeError(w, http.StatusInternalServerError, "An Internal Error Has Occurred.", r.URL.Path)
		return
	case Slow:
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		return
	case InvalidJSON:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"response": {"Attribute": [{"id": "1", "value": `))
		return
	case HTML:
		writeHTML(w)
		return
	case EndlessBody:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"response": {"Attribute": [`))
		chunk := []byte(strings.Repeat(`{"id": "1", "type": "ip-dst", "value": "192.0.2.1"},`, 100))
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-s.closing:
				return
			default:
			}
		}
	}

	// MISP checks the key before anything else.
	if r.Header.Get("Authorization") != s.Key {
		writeError(w, http.StatusForbidden, "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.", r.URL.Path)
		return
	}
	if !strings.Contains(r.Header.Get("Accept"), "application/json") && !strings.HasSuffix(r.URL.Path, ".json") {
		writeHTML(w)
		return
	}
	switch {
	case path == "/feeds" || path == "/feeds/index":
		if r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed", r.URL.Path)
			return
		}
		s.serveFeeds(w)
	case path == "/attributes/restSearch":
		if r.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed", r.URL.Path)
			return
		}
		s.serveRestSearch(w, r, fail == EndlessPages)
	case strings.HasPrefix(path, "/events/view/"):
		if r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed", r.URL.Path)
			return
		}
		s.serveEvent(w, r, strings.TrimPrefix(path, "/events/view/"))
	default:
		writeError(w, http.StatusNotFound, "Not Found", r.URL.Path)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes MISP's error body.
func writeError(w http.ResponseWriter, status int, msg, url string) {
	writeJSON(w, status, map[string]string{"name": msg, "message": msg, "url": url})
}

func writeHTML(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	_, _ = w.Write([]byte("<!DOCTYPE html>\n<html><head><title>Users - MISP</title></head><body><form action=\"/users/login\"></form></body></html>\n"))
}
