package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"golang.org/x/sync/errgroup"

	"github.com/rampart-ip/rampart/api"
	"github.com/rampart-ip/rampart/api/rpc"
)

func runServe(ctx context.Context, args []string, _ io.Writer, stderr io.Writer) error {
	fs, configPath := newFlags("serve", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, err := newApp(ctx, *configPath, stderr)
	if err != nil {
		return err
	}
	defer a.close()
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
	if ls == nil {
		ls = &listeners{}
		var err error
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
		return fmt.Errorf("load index: %w", err)
	}
	a.log.Info("rampart serving", "http", ls.http.Addr().String(), "grpc", ls.grpc.Addr().String(),
		"indicators", a.service.Index().Len(), "version", version)

	httpServer, err := a.httpServer()
	if err != nil {
		return err
	}
	grpcServer := rpc.New(rpc.Options{GRPC: a.cfg.GRPC, Service: a.service, Ready: a.engine.Ready, Logger: a.log})

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.engine.Run(ctx) })
	g.Go(func() error { return httpServer.Run(ctx, ls.http) })
	g.Go(func() error { return grpcServer.Run(ctx, ls.grpc) })
	return g.Wait()
}

func (a *app) httpServer() (*api.Server, error) {
	auth, err := api.NewAuth(a.cfg.Auth)
	if err != nil {
		return nil, err
	}
	return api.New(api.Options{
		HTTP:    a.cfg.HTTP,
		Auth:    auth,
		Service: a.service,
		Ready:   a.engine.Ready,
		Feeds:   a.engine,
		Jobs:    a.engine,
		Admin:   a.engine,
		Extra: []api.Registrar{
			api.NewCrowdSec(a.service, auth.Role, a.log),
			api.NewBlocklist(a.service),
		},
		Logger: a.log,
	}), nil
}
