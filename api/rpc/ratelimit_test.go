package rpc

import (
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/rampart-ip/rampart/api"
	rampartv1 "github.com/rampart-ip/rampart/api/proto/rampart/v1"
	"github.com/rampart-ip/rampart/config"
)

func TestRateLimit(t *testing.T) {
	const key = "k-0123456789abcdef"
	auth, err := api.NewAuth(config.Auth{OpenQueries: true, APIKeys: []config.APIKey{{Name: "app", Key: key, Role: "query"}}}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	lim, err := api.NewRateLimiter(config.RateLimit{PerKey: 0.001, PerPeer: 0.001, Burst: 2, MaxPeers: 10}, auth, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn := start(t, newService(t, true), func(o *Options) { o.Limiter = lim })
	client := rampartv1.NewReputationClient(conn)
	ctx := t.Context()
	check := func(md ...string) (metadata.MD, error) {
		var hdr metadata.MD
		c := ctx
		if len(md) > 0 {
			c = metadata.AppendToOutgoingContext(ctx, md...)
		}
		_, err := client.Check(c, &rampartv1.CheckRequest{Ip: listedHost}, grpc.Header(&hdr))
		return hdr, err
	}

	t.Run("the peer's burst passes, then calls are refused with retry-after", func(t *testing.T) {
		for i := range 2 {
			if _, err := check(); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		hdr, err := check()
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("third call: %v, want ResourceExhausted", err)
		}
		if v := hdr.Get("retry-after"); len(v) != 1 || v[0] == "" || v[0] == "0" {
			t.Errorf("retry-after = %v, want whole seconds", v)
		}
	})
	t.Run("a key has a budget of its own", func(t *testing.T) {
		if _, err := check(apiKeyHeader, key); err != nil {
			t.Errorf("keyed call from the exhausted peer: %v", err)
		}
	})
	t.Run("health checks are not limited", func(t *testing.T) {
		for i := range 3 {
			if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatalf("health check %d: %v", i, err)
			}
		}
	})
}
