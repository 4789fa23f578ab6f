package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/ingest"
	"github.com/rampart-ip/rampart/internal/shared"
	"github.com/rampart-ip/rampart/misp"
	"github.com/rampart-ip/rampart/store/sqlite"
)

// API keys of the OpenAPI tests, one per role.
const (
	oaQueryKey   = "openapi-query-key"
	oaBouncerKey = "openapi-bouncer-key"
	oaAdminKey   = "openapi-admin-key"
)

// anyMethodExt marks a path answered alike for every method; its GET
// operation describes them all.
const anyMethodExt = "x-rampart-any-method"

// loadSpec parses and validates the embedded document.
func loadSpec(t testing.TB) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(OpenAPISpec())
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

// oaServers are the servers the OpenAPI tests talk to: open is wired as
// cmd/rampart wires it (a real ingest engine over SQLite, the CrowdSec
// endpoints, the blocklist export, open queries); closed needs a key for
// everything, has no feed backends and is not ready; limited allows a
// client without a key one request.
type oaServers struct {
	open, closed, limited *Server
}

func newOAServers(t *testing.T) oaServers {
	t.Helper()
	svc := newService(t)
	auth := config.Default().Auth
	auth.APIKeys = []config.APIKey{
		{Name: "query", Key: oaQueryKey, Role: RoleQuery},
		{Name: "bouncer", Key: oaBouncerKey, Role: RoleBouncer},
		{Name: "admin", Key: oaAdminKey, Role: RoleAdmin},
	}
	keys, err := NewAuth(auth, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	extras := func() []Registrar {
		now := func() time.Time { return testNow }
		return []Registrar{
			NewCrowdSec(CrowdSecOptions{Service: svc, Role: keys.Role, Now: now, Logger: discard}),
			NewBlocklist(BlocklistOptions{Service: svc, Role: keys.Role, Now: now, Logger: discard}),
		}
	}
	eng := newOAEngine(t)
	open := newServer(t, func(o *Options) {
		o.Keys = keys
		o.HTTP.TrustedProxies = []string{"192.0.2.0/24"} // httptest's peer
		o.HTTP.MaxBatch = 4
		o.Feeds = FeedListerFunc(func() any { return eng.Feeds() })
		o.Jobs = JobListerFunc(func() any { return eng.Jobs() })
		o.Admin = oaEngine{eng}
		o.FeedAdmin = oaEngine{eng}
		o.Extra = extras()
	})
	closedAuth := auth
	closedAuth.OpenQueries = false
	closedKeys, err := NewAuth(closedAuth, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	closed := newServer(t, func(o *Options) {
		o.Keys = closedKeys
		o.Ready = func() bool { return false }
		o.Extra = extras()
	})
	limited := newServer(t, func(o *Options) {
		o.Auth.RateLimit = config.RateLimit{PerPeer: 1e-6, Burst: 1, MaxPeers: 10}
	})
	return oaServers{open: open, closed: closed, limited: limited}
}

// newOAEngine returns a real sync engine over a SQLite store with three
// feeds: one that syncs from shared data, one disabled, one whose file is
// missing; and one job.
func newOAEngine(t *testing.T) *ingest.Engine {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "rampart.db"), discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := config.Default()
	eng := ingest.NewEngine(ingest.EngineOptions{
		Store: st, Sync: cfg.Sync, History: cfg.History, Scoring: cfg.Scoring,
		Now: func() time.Time { return testNow }, Logger: discard,
	})
	eng.SetFeeds("config", []misp.Feed{
		{Name: "blocklist_de", Provider: "blocklist.de", URL: shared.Data(t, "feeds", "firehol", "blocklist_de.ipset"), SourceFormat: misp.FormatFreetext, Enabled: true},
		{Name: "off", Provider: "example", URL: "https://user:secret@feeds.example/off.txt?key=secret", SourceFormat: misp.FormatFreetext},
		{Name: "broken", Provider: "example", URL: filepath.Join(dir, "missing.txt"), SourceFormat: misp.FormatFreetext, Enabled: true},
	})
	eng.AddJob("noop", time.Hour, func(context.Context) error { return nil })
	return eng
}

// oaEngine adapts the engine to the API's error contract, as cmd/rampart
// does: unknown is 404, inactive, existing or not editable 409, invalid
// 400, a failed pull 502.
type oaEngine struct{ eng *ingest.Engine }

var (
	_ FeedSyncer  = oaEngine{}
	_ FeedManager = oaEngine{}
)

func oaMap(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ingest.ErrUnknownFeed):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, ingest.ErrFeedInactive), errors.Is(err, ingest.ErrFeedExists), errors.Is(err, ingest.ErrFeedNotEditable):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	case errors.Is(err, ingest.ErrInvalidFeed):
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return err
}

func (a oaEngine) SyncFeed(ctx context.Context, name string) (any, error) {
	rep, err := a.eng.SyncFeed(ctx, name)
	if err = oaMap(err); err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrConflict) {
		err = fmt.Errorf("%w: %w", ErrUpstream, err)
	}
	return rep, err
}

func (a oaEngine) AddFeed(ctx context.Context, f misp.Feed) (any, error) {
	st, err := a.eng.AddFeed(ctx, f)
	return st, oaMap(err)
}

func (a oaEngine) ReplaceFeed(ctx context.Context, name string, f misp.Feed) (any, error) {
	st, err := a.eng.ReplaceFeed(ctx, name, f)
	return st, oaMap(err)
}

func (a oaEngine) DeleteFeed(ctx context.Context, name string) error {
	return oaMap(a.eng.DeleteFeed(ctx, name))
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc := loadSpec(t)
	roles := []string{"none", RoleQuery, RoleBouncer, RoleAdmin}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			role, _ := op.Extensions["x-rampart-role"].(string)
			if !slices.Contains(roles, role) {
				t.Errorf("%s %s: x-rampart-role %q is not one of %v", method, path, role, roles)
			}
			if op.Security == nil {
				t.Errorf("%s %s: no security requirements", method, path)
			}
		}
	}
}

func TestOpenAPIIsServed(t *testing.T) {
	h := newServer(t, nil).Handler()
	w := do(t, h, http.MethodGet, "/openapi.yaml", "")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("content type %q", ct)
	}
	if !bytes.Equal(w.Body.Bytes(), OpenAPISpec()) {
		t.Error("the body is not the embedded document")
	}
	if _, err := openapi3.NewLoader().LoadFromData(w.Body.Bytes()); err != nil {
		t.Errorf("the served document does not parse: %v", err)
	}
}

// specPath turns an Echo route path (/a/:name) into an OpenAPI one (/a/{name}).
func specPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") {
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

func TestOpenAPICoversEveryRoute(t *testing.T) {
	doc := loadSpec(t)
	s := newOAServers(t).open
	registered := map[string]bool{}
	for _, r := range s.e.Routes() {
		path := specPath(r.Path)
		registered[r.Method+" "+path] = true
		item := doc.Paths.Value(path)
		if item == nil {
			t.Errorf("route %s %s is not in openapi.yaml (as %s)", r.Method, r.Path, path)
			continue
		}
		if item.GetOperation(r.Method) != nil {
			continue
		}
		if anyMethod, _ := item.Extensions[anyMethodExt].(bool); anyMethod && item.Get != nil {
			continue
		}
		t.Errorf("route %s %s has no %s operation in openapi.yaml", r.Method, r.Path, r.Method)
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !registered[method+" "+path] {
				t.Errorf("openapi.yaml describes %s %s, which the server does not route", method, path)
			}
		}
	}
}

// exchange is one request to a test server and the status it must get.
type exchange struct {
	name string
	// on names the server: "" (open), "closed" or "limited".
	on     string
	method string
	target string
	body   string
	header []string
	code   int
	// specRejects says the request breaks the document's own rules
	// (a missing required parameter, a value outside an enum, no key
	// where one is required): request validation must fail.
	specRejects bool
}

// oaAuthenticate checks that a request carries the credential a security
// scheme names; the server decides whether the key is good.
func oaAuthenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	switch in.SecurityScheme.Type {
	case "apiKey":
		if r.Header.Get(in.SecurityScheme.Name) == "" {
			return fmt.Errorf("no %s header", in.SecurityScheme.Name)
		}
	case "http":
		if v := r.Header.Get("Authorization"); !strings.HasPrefix(v, "Bearer ") {
			return errors.New("no bearer token")
		}
	default:
		return fmt.Errorf("unexpected security scheme %q", in.SecurityScheme.Type)
	}
	return nil
}

// findRoute finds the operation of req; a path answered for any method
// uses its GET operation for the methods it does not describe.
func findRoute(doc *openapi3.T, router routers.Router, req *http.Request) (*routers.Route, map[string]string, error) {
	route, params, err := router.FindRoute(req)
	if err == nil {
		return route, params, nil
	}
	item := doc.Paths.Value(req.URL.Path)
	if anyMethod, _ := item.Extensions[anyMethodExt].(bool); item != nil && anyMethod {
		get := req.Clone(req.Context())
		get.Method = http.MethodGet
		if route, params, gerr := router.FindRoute(get); gerr == nil {
			r := *route
			r.Method = req.Method
			return &r, params, nil
		}
	}
	return nil, nil, err
}

func newRequest(method, target, body string, header []string) *http.Request {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return req
}

// etagOf asks the open server for a blocklist and returns its ETag.
func etagOf(t *testing.T, h http.Handler, target string) string {
	t.Helper()
	w := do(t, h, http.MethodGet, target, "", "X-Api-Key", oaBouncerKey)
	if w.Code != http.StatusOK || w.Header().Get("ETag") == "" {
		t.Fatalf("%s: status %d, ETag %q", target, w.Code, w.Header().Get("ETag"))
	}
	return w.Header().Get("ETag")
}

func TestOpenAPIAnswersValidate(t *testing.T) {
	doc := loadSpec(t)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	srv := newOAServers(t)
	handlers := map[string]http.Handler{"": srv.open.Handler(), "closed": srv.closed.Handler(), "limited": srv.limited.Handler()}
	open := handlers[""]
	etag := etagOf(t, open, "/api/v1/blocklist?format=json")
	exchanges := oaExchanges(etag)

	opts := &openapi3filter.Options{
		IncludeResponseStatus: true,
		MultiError:            true,
		AuthenticationFunc:    oaAuthenticate,
	}
	exercised := map[string]bool{}
	for _, x := range exchanges {
		t.Run(x.name, func(t *testing.T) {
			h := handlers[x.on]
			req := newRequest(x.method, x.target, x.body, x.header)
			route, params, err := findRoute(doc, router, req)
			if err != nil {
				t.Fatalf("%s %s is not in openapi.yaml: %v", x.method, x.target, err)
			}
			exercised[route.Method+" "+route.Path] = true
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
			rerr := openapi3filter.ValidateRequest(context.Background(), in)
			switch {
			case x.specRejects && rerr == nil:
				t.Errorf("the document accepts a request it should reject")
			case !x.specRejects && rerr != nil:
				t.Errorf("the document rejects the request: %v", rerr)
			}

			w := httptest.NewRecorder()
			h.ServeHTTP(w, newRequest(x.method, x.target, x.body, x.header))
			if w.Code != x.code {
				t.Fatalf("status %d, want %d; body %.300s", w.Code, x.code, w.Body.String())
			}
			body := w.Body.Bytes()
			if x.method == http.MethodHead {
				body = nil // net/http drops a HEAD answer's body
			}
			// The request's body was read for validation; the response
			// validation only needs the route and parameters.
			in.Request = newRequest(x.method, x.target, x.body, x.header)
			if err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
				RequestValidationInput: in,
				Status:                 w.Code,
				Header:                 w.Header(),
				Body:                   io.NopCloser(bytes.NewReader(body)),
				Options:                opts,
			}); err != nil {
				t.Errorf("the answer does not validate: %v\nbody: %.500s", err, w.Body.String())
			}
		})
	}
	t.Run("every operation of the document was exercised", func(t *testing.T) {
		for path, item := range doc.Paths.Map() {
			for method := range item.Operations() {
				if !exercised[method+" "+path] {
					t.Errorf("no exchange for %s %s", method, path)
				}
			}
		}
	})
}

// oaExchanges are the requests of TestOpenAPIAnswersValidate, in order
// (the decision stream remembers what it sent). etag is the current
// ETag of the JSON blocklist.
func oaExchanges(etag string) []exchange {
	const (
		get, head, post, put, del = http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete
	)
	bouncer := []string{"X-Api-Key", oaBouncerKey}
	admin := []string{"Authorization", "Bearer " + oaAdminKey}
	query := []string{"X-Api-Key", oaQueryKey}
	past := testNow.Add(-time.Hour).Format(time.RFC3339)
	future := testNow.Add(time.Hour).Format(time.RFC3339)
	return []exchange{
		{name: "healthz answers ok", method: get, target: "/healthz", code: 200},
		{name: "healthz answers HEAD", method: head, target: "/healthz", code: 200},
		{name: "readyz answers ready", method: get, target: "/readyz", code: 200},
		{name: "readyz answers HEAD", method: head, target: "/readyz", code: 200},
		{name: "readyz is 503 before readiness", on: "closed", method: get, target: "/readyz", code: 503},
		{name: "readyz HEAD is 503 before readiness", on: "closed", method: head, target: "/readyz", code: 503},
		{name: "metrics are served", method: get, target: "/metrics", code: 200},
		{name: "the document is served", method: get, target: "/openapi.yaml", code: 200},

		{name: "ip answers a listed host", method: get, target: "/ip?ip=" + listedHost, code: 200},
		{name: "ip answers an address inside a listed range", method: get, target: "/ip?ip=" + rangeInside, code: 200},
		{name: "ip answers a listed IPv6 address", method: get, target: "/ip?ip=" + listedV6, code: 200},
		{name: "ip answers a host listed in the past", method: get, target: "/ip?ip=" + historicHost, code: 200},
		{name: "ip answers a clean IPv6 address", method: get, target: "/ip?ip=" + cleanV6, code: 200},
		{name: "ip answers as of a past time", method: get, target: "/ip?ip=" + historicHost + "&at=" + past, code: 200},
		{name: "ip without an address is 400", method: get, target: "/ip", code: 400, specRejects: true},
		{name: "ip with a malformed address is 400", method: get, target: "/ip?ip=300.1.1.1", code: 400},
		{name: "ip with a malformed time is 400", method: get, target: "/ip?ip=" + cleanHost + "&at=yesterday", code: 400, specRejects: true},
		{name: "ip at a future time is 400", method: get, target: "/ip?ip=" + cleanHost + "&at=" + future, code: 400},
		{name: "ip answers with a query key when queries are closed", on: "closed", method: get, target: "/ip?ip=" + listedHost, header: query, code: 200},
		{name: "ip without a key is 401 when queries are closed", on: "closed", method: get, target: "/ip?ip=" + listedHost, code: 401},
		{name: "ip with an unknown key is 403", on: "closed", method: get, target: "/ip?ip=" + listedHost, header: []string{"Authorization", "Bearer nope"}, code: 403},
		{name: "a batch answers each entry, bad ones in place", method: post, target: "/ip", body: `{"ips":["` + listedHost + `","` + cleanV6 + `","nonsense",7]}`, code: 200},
		{name: "a malformed batch is 400", method: post, target: "/ip", body: `{"ips":`, code: 400, specRejects: true},
		{name: "a batch with another field is 400", method: post, target: "/ip", body: `{"addresses":[]}`, code: 400, specRejects: true},
		{name: "a batch over the limit is 413", method: post, target: "/ip", body: `{"ips":["1.1.1.1","1.1.1.2","1.1.1.3","1.1.1.4","1.1.1.5"]}`, code: 413},

		{name: "authz blocks a listed client", method: get, target: "/authz", header: []string{"X-Forwarded-For", listedHost}, code: 403},
		{name: "authz allows a clean client", method: get, target: "/authz", header: []string{"X-Forwarded-For", cleanHost}, code: 200},
		{name: "authz answers other methods alike", method: post, target: "/authz", header: []string{"X-Real-IP", listedV6}, code: 403},
		{name: "authz answers HEAD", method: head, target: "/authz", header: []string{"X-Forwarded-For", cleanV6}, code: 200},
		{name: "authz with a malformed forwarded address is 400", method: get, target: "/authz", header: []string{"X-Forwarded-For", "not-an-ip"}, code: 400},
		{name: "authz without a key is 401 when queries are closed", on: "closed", method: get, target: "/authz", code: 401},
		{name: "authz with a bouncer key is 403 when queries are closed", on: "closed", method: get, target: "/authz", header: bouncer, code: 403},

		{name: "history lists a current listing", method: get, target: "/api/v1/ip/" + listedHost + "/history", code: 200},
		{name: "history lists an ended episode", method: get, target: "/api/v1/ip/" + historicHost + "/history", code: 200},
		{name: "history of a malformed address is 400", method: get, target: "/api/v1/ip/nonsense/history", code: 400},

		{name: "a feed sync reports", method: post, target: "/api/v1/feeds/blocklist_de/sync", header: admin, code: 200},
		{name: "syncing an unknown feed is 404", method: post, target: "/api/v1/feeds/nope/sync", header: admin, code: 404},
		{name: "syncing a disabled feed is 409", method: post, target: "/api/v1/feeds/off/sync", header: admin, code: 409},
		{name: "a failed sync is 502", method: post, target: "/api/v1/feeds/broken/sync", header: admin, code: 502},
		{name: "syncing needs an admin key", method: post, target: "/api/v1/feeds/blocklist_de/sync", header: query, code: 403},
		{name: "syncing without a key is 401", method: post, target: "/api/v1/feeds/blocklist_de/sync", code: 401, specRejects: true},
		{name: "a feed is added from MISP Feed JSON", method: post, target: "/api/v1/feeds", header: admin, code: 201,
			body: `{"Feed":{"id":"7","name":"api_feed","provider":"example","url":"https://feeds.example/list.txt?token=secret","source_format":"freetext","enabled":"0","distribution":"3"},"Tag":{"name":"tlp:white"}}`},
		{name: "adding a name already used is 409", method: post, target: "/api/v1/feeds", header: admin, code: 409,
			body: `{"name":"api_feed","provider":"example","url":"https://feeds.example/other.txt","source_format":"freetext"}`},
		{name: "an invalid feed is 400", method: post, target: "/api/v1/feeds", header: admin, code: 400,
			body: `{"name":"bad","url":"gopher://x","source_format":"xml"}`, specRejects: true},
		{name: "a feed is replaced", method: put, target: "/api/v1/feeds/api_feed", header: admin, code: 200,
			body: `{"provider":"example","url":"https://feeds.example/list.txt","source_format":"csv","settings":"{\"csv\":{\"value\":\"1\",\"delimiter\":\",\"}}","enabled":false,"weight":0.5,"lifetime":"48h","tags":["spam"]}`},
		{name: "replacing a feed of the config is 409", method: put, target: "/api/v1/feeds/off", header: admin, code: 409,
			body: `{"url":"https://feeds.example/off.txt","source_format":"freetext"}`},
		{name: "replacing an unknown feed is 404", method: put, target: "/api/v1/feeds/nope", header: admin, code: 404,
			body: `{"url":"https://feeds.example/x.txt","source_format":"freetext"}`},
		{name: "a feed is deleted", method: del, target: "/api/v1/feeds/api_feed", header: admin, code: 204},
		{name: "deleting an unknown feed is 404", method: del, target: "/api/v1/feeds/api_feed", header: admin, code: 404},
		{name: "feed management needs an admin key", method: del, target: "/api/v1/feeds/off", header: bouncer, code: 403},
		{name: "feeds are listed, redacted", method: get, target: "/api/v1/feeds", code: 200},
		{name: "jobs are listed", method: get, target: "/api/v1/jobs", code: 200},
		{name: "feeds are 501 without a lister", on: "closed", method: get, target: "/api/v1/feeds", header: query, code: 501},
		{name: "jobs are 501 without a lister", on: "closed", method: get, target: "/api/v1/jobs", header: query, code: 501},
		{name: "sync is 501 without a syncer", on: "closed", method: post, target: "/api/v1/feeds/x/sync", header: admin, code: 501},
		{name: "adding is 501 without a manager", on: "closed", method: post, target: "/api/v1/feeds", header: admin, code: 501,
			body: `{"name":"x","url":"https://feeds.example/x.txt","source_format":"freetext"}`},

		{name: "the blocklist is plain by default", method: get, target: "/api/v1/blocklist", header: bouncer, code: 200},
		{name: "the blocklist as csv", method: get, target: "/api/v1/blocklist?format=csv", header: bouncer, code: 200},
		{name: "the blocklist as json above a risk", method: get, target: "/api/v1/blocklist?format=json&min_risk=50", header: bouncer, code: 200},
		{name: "the blocklist for nftables", method: get, target: "/api/v1/blocklist?format=nftables", header: bouncer, code: 200},
		{name: "the blocklist for ipset", method: get, target: "/api/v1/blocklist?format=ipset", header: []string{"X-Api-Key", oaAdminKey}, code: 200},
		{name: "an unchanged blocklist is 304", method: get, target: "/api/v1/blocklist?format=json", header: append([]string{"If-None-Match", etag}, bouncer...), code: 304},
		{name: "an unknown blocklist format is 400", method: get, target: "/api/v1/blocklist?format=xml", header: bouncer, code: 400, specRejects: true},
		{name: "a risk out of range is 400", method: get, target: "/api/v1/blocklist?min_risk=101", header: bouncer, code: 400, specRejects: true},
		{name: "the blocklist needs a bouncer key", method: get, target: "/api/v1/blocklist", header: query, code: 403},

		{name: "decisions for a listed host", method: get, target: "/v1/decisions?ip=" + listedHost, header: bouncer, code: 200},
		{name: "no decision for a clean host is null", method: get, target: "/v1/decisions?ip=" + cleanHost, header: bouncer, code: 200},
		{name: "decisions containing a range", method: get, target: "/v1/decisions?range=1.10.16.0/24", header: bouncer, code: 200},
		{name: "decisions inside a range", method: get, target: "/v1/decisions?scope=range&value=1.10.0.0/16&contains=false", header: bouncer, code: 200},
		{name: "decisions of another type are null", method: get, target: "/v1/decisions?type=captcha&ip=" + listedHost, header: bouncer, code: 200},
		{name: "decisions for a malformed address are 400", method: get, target: "/v1/decisions?ip=nonsense", header: bouncer, code: 400},
		{name: "decisions without a key are 403", method: get, target: "/v1/decisions?ip=" + listedHost, code: 403, specRejects: true},
		{name: "decisions HEAD checks the key", method: head, target: "/v1/decisions", header: bouncer, code: 200},
		{name: "decisions HEAD refuses a query key", method: head, target: "/v1/decisions", header: query, code: 403},
		{name: "the stream starts with every decision", method: get, target: "/v1/decisions/stream?startup=true", header: bouncer, code: 200},
		{name: "the stream then sends no change", method: get, target: "/v1/decisions/stream", header: bouncer, code: 200},
		{name: "the stream filters by scope, origin and scenario", method: get, header: bouncer, code: 200,
			target: "/v1/decisions/stream?startup=false&scopes=range&origins=rampart&scenarios_containing=spamhaus&scenarios_not_containing=blocklist"},
		{name: "a malformed startup is 400", method: get, target: "/v1/decisions/stream?startup=maybe", header: bouncer, code: 400, specRejects: true},
		{name: "the stream refuses an unknown key", method: get, target: "/v1/decisions/stream", header: []string{"X-Api-Key", "nope"}, code: 403},
		{name: "stream HEAD checks the key", method: head, target: "/v1/decisions/stream?startup=true", header: bouncer, code: 200},
		{name: "usage metrics are accepted", method: post, target: "/v1/usage-metrics", header: bouncer, code: 201, body: `{"remediation_components":[]}`},
		{name: "a client within its budget is answered", on: "limited", method: get, target: "/ip?ip=" + cleanHost, code: 200},
		{name: "a client over its budget is 429", on: "limited", method: get, target: "/ip?ip=" + cleanHost, code: 429},
		{name: "a client over its budget is 429 on HEAD too", on: "limited", method: head, target: "/v1/decisions/stream", code: 429, specRejects: true},
		{name: "usage metrics need a key", method: post, target: "/v1/usage-metrics", code: 403, body: `{}`, specRejects: true},
	}
}

func TestOpenAPIRolesMatchTheServer(t *testing.T) {
	doc := loadSpec(t)
	h := newOAServers(t).closed.Handler()
	keys := map[string]string{"none": "", RoleQuery: oaQueryKey, RoleBouncer: oaBouncerKey, RoleAdmin: oaAdminKey}
	samples := map[string]string{"{name}": "x", "{address}": cleanHost}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			want, _ := op.Extensions["x-rampart-role"].(string)
			target := path
			for k, v := range samples {
				target = strings.ReplaceAll(target, k, v)
			}
			if path == "/ip" {
				target += "?ip=" + cleanHost
			}
			body := ""
			if op.RequestBody != nil {
				body = "{}"
			}
			for _, role := range []string{"none", RoleQuery, RoleBouncer, RoleAdmin} {
				allowed := want == "none" || role == want || role == RoleAdmin
				name := fmt.Sprintf("%s %s documented for %s is %s to a %s key", method, path, want, map[bool]string{true: "open", false: "closed"}[allowed], role)
				t.Run(name, func(t *testing.T) {
					req := newRequest(method, target, body, nil)
					req.RemoteAddr = cleanHost + ":40000"
					if k := keys[role]; k != "" {
						req.Header.Set("X-Api-Key", k)
					}
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					refused := w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden
					if allowed == refused {
						t.Errorf("status %d; body %.200s", w.Code, w.Body.String())
					}
				})
			}
		}
	}
}
