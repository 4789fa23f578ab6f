package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-ip/rampart/internal/shared"
	"github.com/rampart-ip/rampart/reputation"
)

// offlineApp syncs examples/offline.yaml (the eight real feed samples,
// the real ASN and country databases, every MISP warninglist) into a
// temporary data dir and loads it, as `rampart check` would.
func offlineApp(b *testing.B) *app {
	b.Helper()
	example, err := os.ReadFile(filepath.Join("..", "..", "examples", "offline.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	sharedDir := filepath.Dir(shared.Data(b))
	dir := b.TempDir()
	var cfg strings.Builder
	for _, line := range strings.Split(string(example), "\n") {
		if strings.HasPrefix(line, "data_dir:") {
			line = "data_dir: " + filepath.Join(dir, "data")
		}
		cfg.WriteString(strings.ReplaceAll(line, "../shared", sharedDir) + "\n")
	}
	cfg.WriteString("log: {level: error}\n")
	path := filepath.Join(dir, "rampart.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"sync", "--quiet", "--config", path}, &out, &errb); code != 0 {
		b.Fatalf("sync exited %d: %s %s", code, out.String(), errb.String())
	}
	a, err := loadApp(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.close)
	return a
}

// BenchmarkCheckOffline scores addresses afresh (Service.Check, no
// cache) on the offline example's data: listed addresses (the source
// path) and unlisted announced addresses (the learned context path).
func BenchmarkCheckOffline(b *testing.B) {
	a := offlineApp(b)
	rng := rand.New(rand.NewPCG(1, 2))
	var listed, unlisted []netip.Addr
	for len(listed) < 4096 || len(unlisted) < 4096 {
		addr := netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
		if _, ok := a.enricher.ASN(addr); !ok || !addr.IsGlobalUnicast() || addr.IsPrivate() {
			continue
		}
		if ans := a.service.Check(addr); ans.IsIoC {
			if len(listed) < 4096 {
				listed = append(listed, addr)
			}
		} else if len(unlisted) < 4096 {
			unlisted = append(unlisted, addr)
		}
		if len(unlisted) == 4096 && len(listed) < 4096 {
			// Random draws rarely hit a listing: take neighbours of
			// listed hosts from the index instead.
			listed = append(listed, listedSample(b, a, 4096-len(listed))...)
		}
	}
	if a.service.Check(unlisted[0]).Reasons[0].Factor != "context" {
		b.Fatalf("unlisted answers do not use the learned context: %+v", a.service.Check(unlisted[0]).Reasons)
	}
	for _, tc := range []struct {
		name  string
		addrs []netip.Addr
	}{{"listed", listed}, {"unlisted", unlisted}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_ = a.service.Check(tc.addrs[i%len(tc.addrs)])
				i++
			}
		})
	}
}

// listedSample returns up to n addresses that the blocklist_de sample
// lists.
func listedSample(b *testing.B, a *app, n int) []netip.Addr {
	b.Helper()
	data, err := os.ReadFile(shared.Data(b, "feeds", "firehol", "blocklist_de.ipset"))
	if err != nil {
		b.Fatal(err)
	}
	var out []netip.Addr
	for _, line := range strings.Split(string(data), "\n") {
		addr, err := netip.ParseAddr(strings.TrimSpace(line))
		if err != nil || !a.service.Check(addr).IsIoC {
			continue
		}
		if out = append(out, addr); len(out) == n {
			break
		}
	}
	return out
}

// BenchmarkBuildOffline builds the offline example's index from the
// store's data, learning its context model each time.
func BenchmarkBuildOffline(b *testing.B) {
	a := offlineApp(b)
	ctx := context.Background()
	var idx *reputation.Index
	for b.Loop() {
		var err error
		if idx, err = buildWithout(ctx, a, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(idx.Len()), "prefixes")
}
