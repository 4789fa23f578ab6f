package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/reputation"
)

// Checker answers questions about addresses from memory. It is implemented
// by *reputation.Service; every method is safe for concurrent use and must
// not block on I/O.
type Checker interface {
	// AppendJSON appends the rendered /ip answer for addr to dst.
	AppendJSON(dst []byte, addr netip.Addr) []byte
	// CheckAt answers as of time at; it returns an error wrapping
	// reputation.ErrOutsideRetention when at is older than the history kept.
	CheckAt(addr netip.Addr, at time.Time) (reputation.Answer, error)
	// Judge returns the part of the answer a proxy acts on, cheaply.
	Judge(addr netip.Addr) reputation.Judgement
	// History returns every listing and ended episode containing addr.
	History(addr netip.Addr) []reputation.Match
}

var _ Checker = (*reputation.Service)(nil)

// FeedLister reports the state of every feed for GET /api/v1/feeds. The
// value must marshal to a JSON array of objects; the server redacts URL
// credentials, headers and secret-looking fields before answering, so the
// lister need not.
type FeedLister interface {
	Feeds() any
}

// FeedListerFunc adapts a function to FeedLister.
type FeedListerFunc func() any

// Feeds calls f.
func (f FeedListerFunc) Feeds() any { return f() }

// JobLister reports the scheduled jobs for GET /api/v1/jobs. The value must
// marshal to JSON.
type JobLister interface {
	Jobs() any
}

// JobListerFunc adapts a function to JobLister.
type JobListerFunc func() any

// Jobs calls f.
func (f JobListerFunc) Jobs() any { return f() }

// FeedSyncer syncs one feed now, for POST /api/v1/feeds/:name/sync. It
// runs within the request: it must stop when ctx is cancelled, and it
// returns a JSON-able report of the sync. An unknown name is an error
// wrapping ErrNotFound or store.ErrNotFound (answered 404), a disabled
// feed one wrapping ErrConflict (409), a failed fetch or parse one
// wrapping ErrUpstream (502, with its message, URLs redacted); any other
// error is answered 500 and logged. Errors name the feed. A failed sync keeps the feed's last
// good data (the engine's contract, not this package's).
type FeedSyncer interface {
	SyncFeed(ctx context.Context, name string) (any, error)
}

// FeedSyncerFunc adapts a function to FeedSyncer.
type FeedSyncerFunc func(ctx context.Context, name string) (any, error)

// SyncFeed calls f.
func (f FeedSyncerFunc) SyncFeed(ctx context.Context, name string) (any, error) { return f(ctx, name) }

// Registrar mounts more routes on the server's router. Its routes get the
// server's error handler, metrics and panic recovery; they check API keys
// themselves (Auth.Role).
type Registrar interface {
	Register(e *echo.Echo)
}

// Options configure a Server. Service is required; everything else is
// optional.
type Options struct {
	HTTP config.HTTP
	Auth config.Auth
	// Keys, when set, is used instead of building an Auth from Auth, so
	// that other transports can share one key set.
	Keys *Auth
	// Service answers the queries.
	Service Checker
	// Ready reports readiness for /readyz; nil means the Service's own
	// Ready method when it has one, else always ready.
	Ready func() bool
	// Feeds, Jobs and Admin back the /api/v1 endpoints; a nil one makes
	// its endpoint answer 501.
	Feeds FeedLister
	Jobs  JobLister
	Admin FeedSyncer
	// FeedAdmin backs POST /api/v1/feeds and PUT and DELETE
	// /api/v1/feeds/:name (admin keys only); nil makes them answer 501.
	FeedAdmin FeedManager
	// Limiter, when set, is used instead of building one from
	// Auth.RateLimit, so that the gRPC server can share its buckets.
	Limiter *RateLimiter
	// Extra mounts other transports' routes (CrowdSec endpoints,
	// blocklist export) on the same router.
	Extra []Registrar
	// Metrics is the registry /metrics serves and the server registers its
	// collectors on; nil means a new registry with the Go and process
	// collectors.
	Metrics *prometheus.Registry
	// ShutdownTimeout bounds the graceful shutdown in Run (default 10s).
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Getenv reads key_env variables (default os.Getenv).
	Getenv func(string) string
}

// Defaults for zero HTTP settings, the same as config.Default's.
const (
	defaultMaxBatch        = 10000
	defaultMaxBodyBytes    = 4 << 20
	defaultReadTimeout     = 10 * time.Second
	defaultWriteTimeout    = 60 * time.Second
	defaultIdleTimeout     = 120 * time.Second
	defaultShutdownTimeout = 10 * time.Second
	maxHeaderBytes         = 64 << 10
)

// Server is Rampart's HTTP server: the Echo router and its handlers.
type Server struct {
	e       *echo.Echo
	svc     Checker
	ready   func() bool
	auth    *Auth
	trust   proxyTrust
	deny    bool // /authz answers 403 to challenge as well as block
	feeds   FeedLister
	jobs    JobLister
	admin   FeedSyncer
	metrics *metrics
	logger  *slog.Logger
	now     func() time.Time

	maxBatch     int
	maxBody      int64
	readTimeout  time.Duration
	writeTimeout time.Duration
	shutdown     time.Duration

	bufs sync.Pool // *[]byte for rendering /ip answers

	// feedAdmin manages API-defined feeds; limiter is nil when rate
	// limits are off.
	feedAdmin FeedManager
	limiter   *RateLimiter
}

// New builds the server and its routes. It fails on invalid settings
// (trusted proxies, API keys, authz_challenge), reporting every problem.
func New(o Options) (*Server, error) {
	if o.Service == nil {
		return nil, errors.New("new http server: a Service is required")
	}
	s := &Server{
		svc:          o.Service,
		ready:        o.Ready,
		feeds:        o.Feeds,
		jobs:         o.Jobs,
		admin:        o.Admin,
		feedAdmin:    o.FeedAdmin,
		limiter:      o.Limiter,
		logger:       o.Logger,
		now:          o.Now,
		maxBatch:     o.HTTP.MaxBatch,
		maxBody:      o.HTTP.MaxBodyBytes,
		readTimeout:  time.Duration(o.HTTP.ReadTimeout),
		writeTimeout: time.Duration(o.HTTP.WriteTimeout),
		shutdown:     o.ShutdownTimeout,
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.logger = s.logger.With("component", "api")
	if s.now == nil {
		s.now = time.Now
	}
	if s.ready == nil {
		s.ready = func() bool { return true }
		if r, ok := o.Service.(interface{ Ready() bool }); ok {
			s.ready = r.Ready
		}
	}
	if s.maxBatch <= 0 {
		s.maxBatch = defaultMaxBatch
	}
	if s.maxBody <= 0 {
		s.maxBody = defaultMaxBodyBytes
	}
	if s.readTimeout <= 0 {
		s.readTimeout = defaultReadTimeout
	}
	if s.writeTimeout <= 0 {
		s.writeTimeout = defaultWriteTimeout
	}
	if s.shutdown <= 0 {
		s.shutdown = defaultShutdownTimeout
	}
	s.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }

	var errs []error
	var err error
	if s.trust, err = newProxyTrust(o.HTTP.TrustedProxies); err != nil {
		errs = append(errs, err)
	}
	switch o.HTTP.AuthzChallenge {
	case "", "allow":
	case "deny":
		s.deny = true
	default:
		errs = append(errs, fmt.Errorf("http.authz_challenge: %q is not allow or deny", o.HTTP.AuthzChallenge))
	}
	s.auth = o.Keys
	if s.auth == nil {
		getenv := o.Getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		if s.auth, err = NewAuth(o.Auth, getenv); err != nil {
			errs = append(errs, err)
		}
	}
	reg := o.Metrics
	if reg == nil {
		reg = defaultRegistry()
	}
	if s.metrics, err = newMetrics(reg); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("new http server: %w", err)
	}

	if s.limiter == nil {
		if s.limiter, err = NewRateLimiter(o.Auth.RateLimit, s.auth, o.HTTP.TrustedProxies); err != nil {
			return nil, fmt.Errorf("new http server: %w", err)
		}
	}
	s.e = s.routes(reg, o.Extra)
	return s, nil
}

// routes builds the router. Handlers are wrapped (auth guards) when they
// are registered, not per request, so the hot path pays nothing for them.
func (s *Server) routes(reg *prometheus.Registry, extra []Registrar) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard) // Rampart logs through slog only
	e.HTTPErrorHandler = errorHandler(s.logger)
	e.Use(s.metrics.middleware(s.logger))
	if s.limiter != nil { // off by default: nothing on the request path
		e.Use(rateLimit(s.limiter, s.now))
	}

	a := s.auth
	e.GET("/healthz", healthz)
	e.HEAD("/healthz", healthz)
	e.GET("/readyz", s.readyz)
	e.HEAD("/readyz", s.readyz)
	e.GET("/metrics", s.metrics.handler(reg))
	e.GET("/openapi.yaml", openAPI)

	e.GET("/ip", a.guard(RoleQuery, s.getIP))
	e.POST("/ip", a.guard(RoleQuery, s.postIP))
	e.Any("/authz", a.guardProxy(s.authz))

	e.GET("/api/v1/feeds", a.guard(RoleQuery, s.listFeeds))
	e.POST("/api/v1/feeds/:name/sync", a.guard(RoleAdmin, s.syncFeed))
	e.POST("/api/v1/feeds", a.guard(RoleAdmin, s.addFeed))
	e.PUT("/api/v1/feeds/:name", a.guard(RoleAdmin, s.replaceFeed))
	e.DELETE("/api/v1/feeds/:name", a.guard(RoleAdmin, s.deleteFeed))
	e.GET("/api/v1/jobs", a.guard(RoleQuery, s.listJobs))
	e.GET("/api/v1/ip/:address/history", a.guard(RoleQuery, s.history))

	for _, r := range extra {
		r.Register(e)
	}
	routes := make([]string, 0, len(e.Routes()))
	for _, r := range e.Routes() {
		routes = append(routes, r.Path)
	}
	s.metrics.setRoutes(routes)
	return e
}

// Handler returns the server's HTTP handler, for tests and for serving it
// under another server.
func (s *Server) Handler() http.Handler { return s.e }

// Auth returns the key set the server checks, for transports mounted
// beside it.
func (s *Server) Auth() *Auth { return s.auth }

// Run serves HTTP on ln until ctx is done, then shuts down gracefully:
// it stops accepting, lets requests in flight finish for at most the
// shutdown timeout, then closes what is left. It returns nil after a clean
// shutdown. Run closes ln.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.e,
		ReadTimeout:       s.readTimeout,
		ReadHeaderTimeout: s.readTimeout,
		WriteTimeout:      s.writeTimeout,
		IdleTimeout:       defaultIdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.logger.Info("serving http", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdown)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc // Serve returns http.ErrServerClosed as soon as Shutdown starts
	if err != nil {
		cerr := srv.Close()
		return fmt.Errorf("shut down http: %w", errors.Join(err, cerr))
	}
	return nil
}

// healthz is the cheapest handler there is: load benchmarks compare /ip
// with it.
func healthz(c echo.Context) error {
	w := c.Response()
	w.Header()["Content-Type"] = textContentType
	w.WriteHeader(http.StatusOK)
	if c.Request().Method != http.MethodHead {
		_, _ = w.Write(okBody)
	}
	return nil
}

var (
	okBody = []byte("ok\n")
	// Header values assigned directly (no Header.Set) so that the hot
	// path allocates nothing for them. Length equals capacity, so an
	// Add elsewhere copies instead of writing into the shared array.
	textContentType = []string{"text/plain; charset=utf-8"}
	jsonContentType = []string{"application/json"}
)

type readiness struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// readyz is 200 once an index is loaded or every enabled feed's first sync
// attempt has finished (whatever Ready reports), 503 before.
func (s *Server) readyz(c echo.Context) error {
	if s.ready() {
		return c.JSON(http.StatusOK, readiness{Status: "ready"})
	}
	return c.JSON(http.StatusServiceUnavailable, readiness{
		Status: "not ready",
		Reason: "no index loaded yet: waiting for the store or the first sync attempt of every enabled feed",
	})
}
