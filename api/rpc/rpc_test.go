package rpc

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	rampartv1 "github.com/rampart-ip/rampart/api/proto/rampart/v1"
	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/reputation"
	"github.com/rampart-ip/rampart/store"
)

var testNow = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

const (
	listedHost    = "45.142.120.11"
	rangeInside   = "185.220.101.9" // inside the listed 185.220.100.0/22
	listedV6      = "2a10:c700::1"  // inside the listed 2a10:c700::/29
	historicHost  = "151.101.77.3"  // listed until two days ago
	challengeHost = "77.83.36.5"    // listed by a weak source only
	cleanHost     = "9.9.9.9"
)

// newService returns a real reputation service; ready says whether an
// index is swapped in.
func newService(t testing.TB, ready bool) *reputation.Service {
	t.Helper()
	svc := reputation.NewService(reputation.ServiceOptions{
		Model:     reputation.NewModel(config.Default().Scoring),
		CacheSize: 1000,
		Now:       func() time.Time { return testNow },
		Logger:    slog.New(slog.DiscardHandler),
	})
	if ready {
		svc.Swap(testIndex())
	}
	return svc
}

func testIndex() *reputation.Index {
	since := testNow.Add(-72 * time.Hour)
	return reputation.Build(reputation.Data{
		Sources: []reputation.SourceInfo{
			{Name: "blocklist_de", Kind: store.KindFeed, Provider: "blocklist.de", Category: "bruteforce", ConfirmedAt: testNow.Add(-time.Hour)},
			{Name: "spamhaus_drop", Kind: store.KindFeed, Provider: "Spamhaus", Category: "hijacked", ConfirmedAt: testNow.Add(-time.Hour)},
			{Name: "weak_list", Kind: store.KindFeed, Provider: "example", Weight: 0.5, ConfirmedAt: testNow.Add(-time.Hour)},
		},
		Listings: []store.Listing{
			{Source: "blocklist_de", Prefix: netip.MustParsePrefix(listedHost + "/32"), Since: since},
			{Source: "spamhaus_drop", Prefix: netip.MustParsePrefix("185.220.100.0/22"), Since: since},
			{Source: "blocklist_de", Prefix: netip.MustParsePrefix("2a10:c700::/29"), Since: since},
			{Source: "weak_list", Prefix: netip.MustParsePrefix(challengeHost + "/32"), Since: since},
		},
		Episodes: []store.Episode{{
			Source: "blocklist_de", Prefix: netip.MustParsePrefix(historicHost + "/32"),
			Started: testNow.Add(-96 * time.Hour), Ended: testNow.Add(-48 * time.Hour),
		}},
	}, reputation.BuildOptions{Retention: 168 * time.Hour, Now: func() time.Time { return testNow }})
}

// start runs a server on 127.0.0.1:0 and returns a client connection; the
// server stops, and Run's result is checked, when the test ends.
func start(t testing.TB, svc Service, edit func(*Options)) *grpc.ClientConn {
	t.Helper()
	opts := Options{GRPC: config.Default().GRPC, Service: svc, Logger: slog.New(slog.DiscardHandler)}
	if edit != nil {
		edit(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return conn
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCheck(t *testing.T) {
	svc := newService(t, true)
	client := rampartv1.NewReputationClient(start(t, svc, nil))
	ctx := t.Context()
	tests := []struct {
		name, ip   string
		wantAction string
		wantCode   codes.Code
	}{
		{"a listed host is blocked", listedHost, reputation.ActionBlock, codes.OK},
		{"an address inside a listed range is blocked", rangeInside, reputation.ActionBlock, codes.OK},
		{"an IPv6 address inside a listed range is blocked", listedV6, reputation.ActionBlock, codes.OK},
		{"a clean address is allowed", cleanHost, reputation.ActionAllow, codes.OK},
		{"a malformed address is an invalid argument", "1.2.3", "", codes.InvalidArgument},
		{"an empty address is an invalid argument", "", "", codes.InvalidArgument},
		{"an address with a zone is an invalid argument", "fe80::1%eth0", "", codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.Check(ctx, &rampartv1.CheckRequest{Ip: tt.ip})
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code %v, want %v (err %v)", got, tt.wantCode, err)
			}
			if err != nil {
				return
			}
			want := svc.Check(netip.MustParseAddr(tt.ip))
			compareAnswer(t, resp.GetAnswer(), &want)
			if got := resp.GetAnswer().GetAction(); got != tt.wantAction {
				t.Errorf("action %q, want %q", got, tt.wantAction)
			}
		})
	}
}

// compareAnswer checks that the proto answer tells what the /ip answer tells.
func compareAnswer(t *testing.T, p *rampartv1.Answer, a *reputation.Answer) {
	t.Helper()
	if p.GetIp() != a.IP || p.GetIsIoc() != a.IsIoC || p.GetIsActive() != a.IsActive || p.GetHistorical() != a.Historical ||
		p.GetScore() != a.Score || p.GetVerdict() != a.Verdict || p.GetAction() != a.Action || p.GetDescription() != a.Description {
		t.Errorf("answer %v differs from %+v", p, a)
	}
	if strings.Join(p.GetBlacklists(), ",") != strings.Join(a.Blacklists, ",") || strings.Join(p.GetType(), ",") != strings.Join(a.Type, ",") {
		t.Errorf("blacklists/type %v %v, want %v %v", p.GetBlacklists(), p.GetType(), a.Blacklists, a.Type)
	}
	if len(p.GetReasons()) != len(a.Reasons) {
		t.Fatalf("%d reasons, want %d", len(p.GetReasons()), len(a.Reasons))
	}
	for i, r := range a.Reasons {
		if pr := p.GetReasons()[i]; pr.GetFactor() != r.Factor || pr.GetDetail() != r.Detail || pr.GetWeight() != r.Weight {
			t.Errorf("reason %d is %v, want %+v", i, pr, r)
		}
	}
	if (a.FirstSeen == nil) != (p.GetFirstSeen() == nil) || a.FirstSeen != nil && !p.GetFirstSeen().AsTime().Equal(*a.FirstSeen) {
		t.Errorf("first_seen %v, want %v", p.GetFirstSeen(), a.FirstSeen)
	}
	if (a.LastSeen == nil) != (p.GetLastSeen() == nil) || a.LastSeen != nil && !p.GetLastSeen().AsTime().Equal(*a.LastSeen) {
		t.Errorf("last_seen %v, want %v", p.GetLastSeen(), a.LastSeen)
	}
	if m := p.GetMetadata(); m == nil || m.GetAsn() != a.Metadata.ASN || m.GetCountry() != a.Metadata.Country {
		t.Errorf("metadata %v, want %+v", m, a.Metadata)
	}
}

func TestCheckBatch(t *testing.T) {
	svc := newService(t, true)
	client := rampartv1.NewReputationClient(start(t, svc, func(o *Options) { o.MaxBatch = 3 }))
	t.Run("answers every address in order and puts errors in place", func(t *testing.T) {
		resp, err := client.CheckBatch(t.Context(), &rampartv1.CheckBatchRequest{Ips: []string{listedHost, "nope", cleanHost}})
		if err != nil {
			t.Fatal(err)
		}
		rs := resp.GetResults()
		if len(rs) != 3 {
			t.Fatalf("%d results, want 3", len(rs))
		}
		if rs[0].GetIp() != listedHost || rs[0].GetAnswer().GetAction() != reputation.ActionBlock {
			t.Errorf("first result %v", rs[0])
		}
		if rs[1].GetIp() != "nope" || rs[1].GetError() == "" || rs[1].GetAnswer() != nil {
			t.Errorf("second result %v, want an error", rs[1])
		}
		if rs[2].GetAnswer().GetAction() != reputation.ActionAllow {
			t.Errorf("third result %v", rs[2])
		}
	})
	t.Run("a batch over the limit is an invalid argument", func(t *testing.T) {
		_, err := client.CheckBatch(t.Context(), &rampartv1.CheckBatchRequest{Ips: []string{cleanHost, cleanHost, cleanHost, cleanHost}})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("err %v, want InvalidArgument", err)
		}
	})
}

func TestNotReady(t *testing.T) {
	svc := newService(t, false)
	conn := start(t, svc, nil)
	client := rampartv1.NewReputationClient(conn)
	health := healthpb.NewHealthClient(conn)

	t.Run("Check is unavailable before an index is loaded", func(t *testing.T) {
		_, err := client.Check(t.Context(), &rampartv1.CheckRequest{Ip: listedHost})
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("err %v, want Unavailable", err)
		}
	})
	t.Run("health is NOT_SERVING before and SERVING after the first swap", func(t *testing.T) {
		for _, name := range serviceNames {
			resp, err := health.Check(t.Context(), &healthpb.HealthCheckRequest{Service: name})
			if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
				t.Fatalf("service %q: %v %v, want NOT_SERVING", name, resp, err)
			}
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		watch, err := health.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		svc.Swap(testIndex())
		for {
			resp, err := watch.Recv()
			if err != nil {
				t.Fatalf("no SERVING after the swap: %v", err)
			}
			if resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
				break
			}
		}
		if _, err := client.Check(t.Context(), &rampartv1.CheckRequest{Ip: listedHost}); err != nil {
			t.Fatalf("check after swap: %v", err)
		}
	})
}

func TestReflectionListsServices(t *testing.T) {
	conn := start(t, newService(t, true), nil)
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	stream.CloseSend()
	got := map[string]bool{}
	for _, s := range resp.GetListServicesResponse().GetService() {
		got[s.GetName()] = true
	}
	for _, want := range []string{"rampart.v1.Reputation", "envoy.service.auth.v3.Authorization", "grpc.health.v1.Health"} {
		if !got[want] {
			t.Errorf("reflection does not list %s (got %v)", want, got)
		}
	}
}

func TestAPIKeys(t *testing.T) {
	roles := map[string]string{"q-key": "query", "b-key": "bouncer", "x-key": "nobody"}
	role := func(k string) (string, bool) { r, ok := roles[k]; return r, ok }
	tests := []struct {
		name string
		open bool
		key  string
		want codes.Code
	}{
		{"closed queries refuse a call without a key", false, "", codes.Unauthenticated},
		{"closed queries refuse an unknown key", false, "wrong", codes.Unauthenticated},
		{"closed queries refuse a key whose role is not allowed", false, "x-key", codes.PermissionDenied},
		{"closed queries accept a query key", false, "q-key", codes.OK},
		{"closed queries accept a bouncer key", false, "b-key", codes.OK},
		{"open queries need no key", true, "", codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := start(t, newService(t, true), func(o *Options) { o.Role, o.OpenQueries = role, tt.open })
			ctx := t.Context()
			if tt.key != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "x-api-key", tt.key)
			}
			_, err := rampartv1.NewReputationClient(conn).Check(ctx, &rampartv1.CheckRequest{Ip: cleanHost})
			if got := status.Code(err); got != tt.want {
				t.Fatalf("code %v, want %v (%v)", got, tt.want, err)
			}
		})
	}
}

// panicky is the real service, except that judging one address panics.
type panicky struct{ *reputation.Service }

func (p panicky) Check(a netip.Addr) reputation.Answer {
	if a == netip.MustParseAddr(listedHost) {
		panic("boom")
	}
	return p.Service.Check(a)
}

func TestPanicIsInternalAndServerSurvives(t *testing.T) {
	client := rampartv1.NewReputationClient(start(t, panicky{newService(t, true)}, nil))
	_, err := client.Check(t.Context(), &rampartv1.CheckRequest{Ip: listedHost})
	if status.Code(err) != codes.Internal {
		t.Fatalf("err %v, want Internal", err)
	}
	if _, err := client.Check(t.Context(), &rampartv1.CheckRequest{Ip: cleanHost}); err != nil {
		t.Fatalf("next call: %v", err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Options)
	}{
		{"no service", func(o *Options) { o.Service = nil }},
		{"an unknown challenge behaviour", func(o *Options) { o.GRPC.ExtAuthz.Challenge = "maybe" }},
		{"negative trusted hops", func(o *Options) { o.GRPC.ExtAuthz.TrustedHops = -1 }},
	}
	for _, tt := range tests {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			o := Options{GRPC: config.Default().GRPC, Service: newService(t, true)}
			tt.edit(&o)
			if _, err := New(o); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestRunStopsGracefullyOnCancel(t *testing.T) {
	srv, err := New(Options{GRPC: config.Default().GRPC, Service: newService(t, true), ShutdownTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := rampartv1.NewReputationClient(conn).Check(t.Context(), &rampartv1.CheckRequest{Ip: cleanHost}); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run returned %v after cancel", err)
	}
	if _, err := rampartv1.NewReputationClient(conn).Check(t.Context(), &rampartv1.CheckRequest{Ip: cleanHost}); err == nil {
		t.Fatal("server still answers after stop")
	}
}

func TestRunReportsAClosedListener(t *testing.T) {
	srv, err := New(Options{GRPC: config.Default().GRPC, Service: newService(t, true)})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis.Close()
	err = srv.Run(t.Context(), lis)
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("run returned %v, want a serve error", err)
	}
}
