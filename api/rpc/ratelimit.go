package rpc

import (
	"context"
	"math"
	"net"
	"net/netip"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Limiter decides whether a call may go ahead, from the API key it
// carries (may be empty) and its peer's address; when not, it says how
// long until it would. It must be safe for concurrent use and must not
// block. *api.RateLimiter implements it, so that HTTP and gRPC share one
// budget per key.
type Limiter interface {
	Allow(key string, peer netip.Addr, now time.Time) (bool, time.Duration)
}

// limit applies the Limiter to the reputation service's calls. Health
// checks, reflection and ext_authz are not limited: probes must see the
// server as it is, and ext_authz comes from the proxy, which speaks for
// all its clients. A refused call is RESOURCE_EXHAUSTED with a
// retry-after header in whole seconds.
func (s *Server) limit(ctx context.Context) error {
	if s.opts.Limiter == nil {
		return nil
	}
	var key string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(apiKeyHeader); len(v) == 1 {
			key = v[0]
		}
	}
	var addr netip.Addr
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if tcp, ok := p.Addr.(*net.TCPAddr); ok {
			addr = tcp.AddrPort().Addr().Unmap()
		} else if ap, err := netip.ParseAddrPort(p.Addr.String()); err == nil {
			addr = ap.Addr().Unmap()
		}
	}
	ok, wait := s.opts.Limiter.Allow(key, addr, time.Now())
	if ok {
		return nil
	}
	secs := strconv.FormatInt(max(int64(math.Ceil(wait.Seconds())), 1), 10)
	_ = grpc.SetHeader(ctx, metadata.Pairs("retry-after", secs))
	return status.Errorf(codes.ResourceExhausted, "rate limit exceeded: retry in %ss", secs)
}
