package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	rampartv1 "github.com/rampart-ip/rampart/api/proto/rampart/v1"
	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/reputation"
)

// Errors the handlers return; the interceptor maps them to status codes.
var (
	// ErrInvalidAddress means a request named no valid IPv4 or IPv6 address.
	ErrInvalidAddress = errors.New("invalid address")
	// ErrNotReady means no reputation index is loaded yet.
	ErrNotReady = errors.New("no reputation index loaded yet")
	// ErrBatchTooLarge means a CheckBatch asked about more addresses than allowed.
	ErrBatchTooLarge = errors.New("batch too large")
	// ErrUnauthenticated means a call that needs an API key had none or a bad one.
	ErrUnauthenticated = errors.New("missing or invalid api key")
	// ErrForbidden means the API key's role does not allow the call.
	ErrForbidden = errors.New("api key role not allowed")
)

// Service is what the server needs of the reputation service
// (*reputation.Service implements it). All methods are safe for concurrent
// use and never block on I/O.
type Service interface {
	// Check returns the full answer for addr.
	Check(addr netip.Addr) reputation.Answer
	// Judge returns the part of the answer a proxy acts on, without allocating.
	Judge(addr netip.Addr) reputation.Judgement
	// Ready reports whether an index is loaded.
	Ready() bool
}

var _ Service = (*reputation.Service)(nil)

// Default bounds, used when Options leaves them zero.
const (
	DefaultMaxBatch        = 10000
	DefaultShutdownTimeout = 10 * time.Second
	readyPoll              = 250 * time.Millisecond
	apiKeyHeader           = "x-api-key"
)

// Options configure a Server.
type Options struct {
	// GRPC is the gRPC section of the configuration (listen address and
	// ext_authz behaviour).
	GRPC config.GRPC
	// Service answers the questions.
	Service Service
	// Role resolves an API key to its role ("query", "bouncer", "admin");
	// nil leaves Check and CheckBatch open to anyone.
	Role func(key string) (role string, ok bool)
	// OpenQueries lets Check and CheckBatch be called without a key even
	// when Role is set (auth.open_queries).
	OpenQueries bool
	// MaxBatch bounds the addresses of one CheckBatch (DefaultMaxBatch if 0).
	MaxBatch int
	// Limiter, when set, rate-limits Check and CheckBatch (auth.rate_limit).
	Limiter Limiter
	// ShutdownTimeout bounds the graceful stop (DefaultShutdownTimeout if 0).
	ShutdownTimeout time.Duration
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// Server is the gRPC server. Create it with New and start it with Run.
type Server struct {
	opts   Options
	log    *slog.Logger
	grpc   *grpc.Server
	health *health.Server
}

// New builds the server and registers its services; it does not listen.
func New(opts Options) (*Server, error) {
	if opts.Service == nil {
		return nil, errors.New("new grpc server: no reputation service")
	}
	switch opts.GRPC.ExtAuthz.Challenge {
	case "", "allow", "deny":
	default:
		return nil, fmt.Errorf("new grpc server: grpc.ext_authz.challenge: %q is not \"allow\" or \"deny\"", opts.GRPC.ExtAuthz.Challenge)
	}
	if opts.GRPC.ExtAuthz.TrustedHops < 0 {
		return nil, fmt.Errorf("new grpc server: grpc.ext_authz.trusted_hops: %d is negative", opts.GRPC.ExtAuthz.TrustedHops)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: log.With("component", "grpc"), health: health.NewServer()}
	s.grpc = grpc.NewServer(grpc.UnaryInterceptor(s.intercept))
	rampartv1.RegisterReputationServer(s.grpc, &reputationServer{s: s})
	authv3.RegisterAuthorizationServer(s.grpc, &authzServer{s: s})
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	s.setServing(false)
	return s, nil
}

// serviceNames are the services whose health is reported, beside the
// server as a whole ("").
var serviceNames = []string{"", rampartv1.Reputation_ServiceDesc.ServiceName, authv3.Authorization_ServiceDesc.ServiceName}

func (s *Server) setServing(ok bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	for _, name := range serviceNames {
		s.health.SetServingStatus(name, st)
	}
}

// Run serves on lis until ctx is done, then stops gracefully: in-flight
// calls may finish within the shutdown timeout, after which the rest are
// cut. The health service reports SERVING once the reputation service is
// ready. Run returns nil after a stop caused by ctx.
func (s *Server) Run(ctx context.Context, lis net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(lis) }()
	s.log.Info("grpc listening", "addr", lis.Addr().String())

	ready := s.opts.Service.Ready()
	s.setServing(ready)
	var tick <-chan time.Time
	if !ready {
		t := time.NewTicker(readyPoll)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case err := <-errc:
			return fmt.Errorf("serve grpc: %w", err)
		case <-tick:
			if s.opts.Service.Ready() {
				s.setServing(true)
				tick = nil
			}
		case <-ctx.Done():
			s.health.Shutdown()
			stopped := make(chan struct{})
			go func() { s.grpc.GracefulStop(); close(stopped) }()
			timer := time.NewTimer(s.opts.ShutdownTimeout)
			defer timer.Stop()
			select {
			case <-stopped:
			case <-timer.C:
				s.log.Warn("grpc graceful stop timed out, closing connections", "timeout", s.opts.ShutdownTimeout)
				s.grpc.Stop()
				<-stopped
			}
			if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				return fmt.Errorf("serve grpc: %w", err)
			}
			return nil
		}
	}
}

// intercept authorizes Reputation calls, recovers panics and maps errors to
// status codes: the one place where domain errors meet gRPC codes.
func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("grpc handler panicked", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			resp, err = nil, status.Error(codes.Internal, "internal error")
		}
	}()
	if strings.HasPrefix(info.FullMethod, "/"+rampartv1.Reputation_ServiceDesc.ServiceName+"/") {
		if err := s.limit(ctx); err != nil {
			return nil, err
		}
		if err := s.authorize(ctx); err != nil {
			return nil, toStatus(err)
		}
	}
	resp, err = handler(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// authorize checks the x-api-key metadata when queries are not open.
func (s *Server) authorize(ctx context.Context) error {
	if s.opts.Role == nil || s.opts.OpenQueries {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	keys := md.Get(apiKeyHeader)
	if len(keys) != 1 || keys[0] == "" {
		return ErrUnauthenticated
	}
	role, ok := s.opts.Role(keys[0])
	if !ok {
		return ErrUnauthenticated
	}
	switch role {
	case "query", "bouncer", "admin":
		return nil
	}
	return ErrForbidden
}

func toStatus(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, ErrInvalidAddress), errors.Is(err, ErrBatchTooLarge):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrNotReady):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, ErrUnauthenticated):
		return status.Error(codes.Unauthenticated, err.Error())
	case errors.Is(err, ErrForbidden):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// parseAddr parses a textual address strictly (no zones, bounded length)
// and unmaps IPv4-mapped IPv6 addresses.
func parseAddr(s string) (netip.Addr, error) {
	if len(s) > 64 {
		return netip.Addr{}, fmt.Errorf("%w: too long", ErrInvalidAddress)
	}
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%w: %q", ErrInvalidAddress, s)
	}
	return a.Unmap(), nil
}
