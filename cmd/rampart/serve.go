package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/rampart-ip/rampart/api"
	"github.com/rampart-ip/rampart/api/rpc"
	"github.com/rampart-ip/rampart/ingest"
	"github.com/rampart-ip/rampart/misp"
	"github.com/rampart-ip/rampart/reputation"
)

func runServe(ctx context.Context, args []string, _ io.Writer, stderr io.Writer) error {
	fs, configPath := newFlags("serve", stderr)
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	a, err := newApp(ctx, *configPath, stderr)
	if err != nil {
		return err
	}
	defer a.close()
	applyMemoryLimit(os.Getenv, a.log)
	return a.serve(ctx, nil)
}

// listeners are the sockets serve uses; tests pass ready ones on port 0.
type listeners struct {
	http, grpc net.Listener
}

// serve runs the HTTP and gRPC servers and the sync engine until ctx is
// done, then shuts them down gracefully. When ls is nil it listens on the
// configured addresses.
func (a *app) serve(ctx context.Context, ls *listeners) error {
	httpServer, grpcServer, err := a.servers()
	if err != nil {
		return err
	}
	if ls == nil {
		ls = &listeners{}
		if ls.http, err = net.Listen("tcp", a.cfg.HTTP.Listen); err != nil {
			return fmt.Errorf("listen http: %w", err)
		}
		if ls.grpc, err = net.Listen("tcp", a.cfg.GRPC.Listen); err != nil {
			ls.http.Close()
			return fmt.Errorf("listen grpc: %w", err)
		}
	}
	// The index in the store answers at once; feeds refresh behind it.
	if err := a.engine.Start(ctx); err != nil {
		ls.http.Close()
		ls.grpc.Close()
		return fmt.Errorf("load index: %w", err)
	}
	a.log.Info("rampart serving", "http", ls.http.Addr().String(), "grpc", ls.grpc.Addr().String(),
		"prefixes", a.service.Index().Len(), "version", version)

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.engine.Run(ctx) })
	g.Go(func() error { return httpServer.Run(ctx, ls.http) })
	g.Go(func() error { return grpcServer.Run(ctx, ls.grpc) })
	for _, run := range a.runners {
		g.Go(func() error { return run(ctx) })
	}
	return g.Wait()
}

// servers builds the HTTP and gRPC servers over the app's service.
func (a *app) servers() (*api.Server, *rpc.Server, error) {
	auth, err := api.NewAuth(a.cfg.Auth, os.Getenv)
	if err != nil {
		return nil, nil, err
	}
	// Without any API key the blocklist export is open (zero setup); with
	// keys it needs a bouncer or admin key. CrowdSec bouncers always need one.
	var exportRole func(string) (string, bool)
	if len(a.cfg.Auth.APIKeys) > 0 {
		exportRole = auth.Role
	}
	limiter, err := api.NewRateLimiter(a.cfg.Auth.RateLimit, auth, a.cfg.HTTP.TrustedProxies)
	if err != nil {
		return nil, nil, err
	}
	eng := a.engine
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		reputation.NewCollector(a.service),
		ingest.NewCollector(eng),
	)
	httpServer, err := api.New(api.Options{
		HTTP:    a.cfg.HTTP,
		Auth:    a.cfg.Auth,
		Keys:    auth,
		Service: a.service,
		Ready:   eng.Ready,
		Feeds:   api.FeedListerFunc(func() any { return eng.Feeds() }),
		Jobs:    api.JobListerFunc(func() any { return eng.Jobs() }),
		Admin:   feedSyncer(eng),
		// Shared with the gRPC server: a key's budget covers both.
		Limiter:   limiter,
		FeedAdmin: feedManager{eng},
		Extra: []api.Registrar{
			api.NewCrowdSec(api.CrowdSecOptions{Service: a.service, Role: auth.Role, Logger: a.log}),
			api.NewBlocklist(api.BlocklistOptions{Service: a.service, Role: exportRole, Logger: a.log}),
		},
		Metrics: reg,
		Logger:  a.log,
	})
	if err != nil {
		return nil, nil, err
	}
	var grpcLimiter rpc.Limiter // a nil *RateLimiter must stay a nil interface
	if limiter != nil {
		grpcLimiter = limiter
	}
	grpcServer, err := rpc.New(rpc.Options{
		GRPC:        a.cfg.GRPC,
		Service:     readyService{a.service, eng.Ready},
		Role:        auth.Role,
		OpenQueries: a.cfg.Auth.OpenQueries,
		MaxBatch:    a.cfg.HTTP.MaxBatch,
		Limiter:     grpcLimiter,
		Logger:      a.log,
	})
	if err != nil {
		return nil, nil, err
	}
	return httpServer, grpcServer, nil
}

// readyService reports the engine's readiness (index loaded or first syncs
// done) rather than the service's (any index swapped in).
type readyService struct {
	*reputation.Service
	ready func() bool
}

func (r readyService) Ready() bool { return r.ready() }

// feedSyncer adapts the engine's SyncFeed to the API's error contract: an
// unknown feed is not found, a disabled one a conflict, and a failed pull
// an upstream failure whose (redacted) reason the operator sees.
func feedSyncer(eng *ingest.Engine) api.FeedSyncer {
	return api.FeedSyncerFunc(func(ctx context.Context, name string) (any, error) {
		rep, err := eng.SyncFeed(ctx, name)
		switch {
		case err == nil:
			return rep, nil
		case errors.Is(err, ingest.ErrUnknownFeed):
			return nil, fmt.Errorf("%w: %w", api.ErrNotFound, err)
		case errors.Is(err, ingest.ErrFeedInactive):
			return nil, fmt.Errorf("%w: %w", api.ErrConflict, err)
		case ctx.Err() != nil:
			return nil, err
		default:
			return nil, fmt.Errorf("%w: %w", api.ErrUpstream, err)
		}
	})
}

// feedManager adapts the engine's admin feed methods to the API's error
// contract: an invalid definition is a bad request, a taken name or a feed
// defined elsewhere a conflict, an unknown feed not found.
type feedManager struct{ eng *ingest.Engine }

var _ api.FeedManager = feedManager{}

func (m feedManager) AddFeed(ctx context.Context, f misp.Feed) (any, error) {
	st, err := m.eng.AddFeed(ctx, f)
	return st, feedAdminErr(err)
}

func (m feedManager) ReplaceFeed(ctx context.Context, name string, f misp.Feed) (any, error) {
	st, err := m.eng.ReplaceFeed(ctx, name, f)
	return st, feedAdminErr(err)
}

func (m feedManager) DeleteFeed(ctx context.Context, name string) error {
	return feedAdminErr(m.eng.DeleteFeed(ctx, name))
}

func feedAdminErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ingest.ErrInvalidFeed):
		return fmt.Errorf("%w: %w", api.ErrBadRequest, err)
	case errors.Is(err, ingest.ErrFeedExists), errors.Is(err, ingest.ErrFeedNotEditable):
		return fmt.Errorf("%w: %w", api.ErrConflict, err)
	case errors.Is(err, ingest.ErrUnknownFeed):
		return fmt.Errorf("%w: %w", api.ErrNotFound, err)
	}
	return err
}
