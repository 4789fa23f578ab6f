package rpc

import (
	"bufio"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	rampartv1 "github.com/rampart-ip/rampart/api/proto/rampart/v1"
	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/internal/shared"
	"github.com/rampart-ip/rampart/reputation"
	"github.com/rampart-ip/rampart/store"
)

// benchService loads a real FireHOL list and returns the service and its
// listed addresses.
func benchService(b *testing.B) (*reputation.Service, []string) {
	f, err := os.Open(shared.Data(b, "feeds", "firehol", "blocklist_de.ipset"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var listings []store.Listing
	var addrs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		a, err := netip.ParseAddr(line)
		if err != nil {
			continue
		}
		addrs = append(addrs, line)
		listings = append(listings, store.Listing{Source: "blocklist_de", Prefix: netip.PrefixFrom(a, a.BitLen()), Since: testNow.Add(-time.Hour)})
	}
	svc := reputation.NewService(reputation.ServiceOptions{Model: reputation.NewModel(config.Default().Scoring), Now: func() time.Time { return testNow }, Logger: slog.New(slog.DiscardHandler)})
	svc.Swap(reputation.Build(reputation.Data{
		Sources:  []reputation.SourceInfo{{Name: "blocklist_de", Kind: store.KindFeed, ConfirmedAt: testNow}},
		Listings: listings,
	}, reputation.BuildOptions{Now: func() time.Time { return testNow }}))
	return svc, addrs
}

// BenchmarkCheckRoundTrip measures one gRPC Check over loopback TCP.
func BenchmarkCheckRoundTrip(b *testing.B) {
	svc, addrs := benchService(b)
	client := rampartv1.NewReputationClient(start(b, svc, nil))
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := client.Check(ctx, &rampartv1.CheckRequest{Ip: addrs[i%len(addrs)]}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkExtAuthzRoundTrip measures one Envoy ext_authz Check over
// loopback TCP.
func BenchmarkExtAuthzRoundTrip(b *testing.B) {
	svc, addrs := benchService(b)
	client := authv3.NewAuthorizationClient(start(b, svc, nil))
	reqs := make([]*authv3.CheckRequest, 1024)
	for i := range reqs {
		reqs[i] = envoyRequest(addrs[i%len(addrs)], "")
	}
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := client.Check(ctx, reqs[i%len(reqs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
