// Command grpcload is the gRPC load generator of the load benchmark
// (bench/load.sh): N concurrent callers send Rampart's gRPC Check or
// Envoy's ext_authz Check for a fixed duration, each with a random address,
// 1 in 10 drawn from a sample of listed addresses and the rest random
// public-looking IPv4 addresses, the same mix as bench/load.lua. It prints
// one line in the format of load.lua's RESULT lines, so that load.sh
// summarises both together:
//
//	RESULT mode=grpc_check requests=… duration_us=… rps=… p50_us=… p90_us=… p99_us=… max_us=… non2xx=… socket_errors=…
//
// non2xx counts ext_authz denials (the listed tenth), as /authz's 403s are
// counted; socket_errors counts calls that failed.
//
//	go run ./bench/grpcload -addr 127.0.0.1:18490 -mode extauthz -sample listed-sample.txt -d 10s
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	rampartv1 "github.com/rampart-ip/rampart/api/proto/rampart/v1"
)

// maxSample bounds how many sample lines are read, so that a wrong path
// cannot exhaust memory.
const maxSample = 5_000_000

func main() {
	addr := flag.String("addr", "127.0.0.1:18490", "gRPC listener of rampart serve")
	mode := flag.String("mode", "check", `"check" (rampart.v1 Check) or "extauthz" (Envoy ext_authz Check)`)
	callers := flag.Int("c", 64, "concurrent callers")
	conns := flag.Int("conns", 4, "gRPC client connections the callers share, round robin")
	duration := flag.Duration("d", 10*time.Second, "how long to measure")
	warmup := flag.Duration("warmup", 0, "how long to send load before measuring")
	timeout := flag.Duration("timeout", 5*time.Second, "deadline of one call")
	sample := flag.String("sample", "", "file of listed addresses, one a line (1 in 10 requests ask about one)")
	flag.Parse()
	cfg := config{addr: *addr, mode: *mode, callers: *callers, conns: *conns, duration: *duration, warmup: *warmup, timeout: *timeout}
	if err := run(context.Background(), cfg, *sample); err != nil {
		fmt.Fprintln(os.Stderr, "grpcload:", err)
		os.Exit(1)
	}
}

type config struct {
	addr, mode                string
	callers, conns            int
	duration, warmup, timeout time.Duration
}

// caller sends one request about addr and reports whether it was denied.
type caller func(ctx context.Context, addr string) (denied bool, err error)

func run(ctx context.Context, cfg config, samplePath string) error {
	if cfg.callers < 1 || cfg.conns < 1 || cfg.duration <= 0 {
		return errors.New("need -c >= 1, -conns >= 1 and -d > 0")
	}
	if cfg.mode != "check" && cfg.mode != "extauthz" {
		return fmt.Errorf("unknown mode %q", cfg.mode)
	}
	listed, err := readSample(samplePath)
	if err != nil {
		return err
	}
	callers := make([]caller, cfg.conns)
	for i := range callers {
		cc, err := grpc.NewClient(cfg.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return fmt.Errorf("connect %s: %w", cfg.addr, err)
		}
		defer cc.Close()
		callers[i] = newCaller(cfg.mode, cc)
	}
	if cfg.warmup > 0 {
		load(ctx, cfg, cfg.warmup, callers, listed)
	}
	res := load(ctx, cfg, cfg.duration, callers, listed)
	res.print(os.Stdout, "grpc_"+cfg.mode)
	if res.requests == 0 {
		return fmt.Errorf("no call succeeded: %v", res.firstErr)
	}
	if res.firstErr != nil {
		fmt.Fprintln(os.Stderr, "grpcload: first error:", res.firstErr)
	}
	return nil
}

func newCaller(mode string, cc *grpc.ClientConn) caller {
	if mode == "check" {
		client := rampartv1.NewReputationClient(cc)
		return func(ctx context.Context, addr string) (bool, error) {
			_, err := client.Check(ctx, &rampartv1.CheckRequest{Ip: addr})
			return false, err
		}
	}
	client := authv3.NewAuthorizationClient(cc)
	return func(ctx context.Context, addr string) (bool, error) {
		resp, err := client.Check(ctx, envoyRequest(addr))
		if err != nil {
			return false, err
		}
		return codes.Code(resp.GetStatus().GetCode()) != codes.OK, nil
	}
}

// envoyRequest is what Envoy sends for a plain GET from addr.
func envoyRequest(addr string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/", Host: "app.example", Protocol: "HTTP/1.1",
			Headers: map[string]string{":method": "GET", ":path": "/", ":authority": "app.example", "user-agent": "grpcload"},
		}},
	}}
}

type result struct {
	requests, denied, errs int
	elapsed                time.Duration
	latencies              []time.Duration
	firstErr               error
}

// load runs cfg.callers callers for d and merges what they saw.
func load(ctx context.Context, cfg config, d time.Duration, callers []caller, listed []string) result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	parts := make([]result, cfg.callers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range cfg.callers {
		wg.Go(func() {
			call := callers[w%len(callers)]
			rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(w)))
			p := &parts[w]
			p.latencies = make([]time.Duration, 0, 1<<14)
			for ctx.Err() == nil {
				addr := mixedAddr(rng, listed)
				cctx, ccancel := context.WithTimeout(context.Background(), cfg.timeout)
				t0 := time.Now()
				denied, err := call(cctx, addr)
				lat := time.Since(t0)
				ccancel()
				if err != nil {
					p.errs++
					if p.firstErr == nil {
						p.firstErr = err
					}
					continue
				}
				p.requests++
				if denied {
					p.denied++
				}
				p.latencies = append(p.latencies, lat)
			}
		})
	}
	wg.Wait()
	var r result
	r.elapsed = time.Since(start)
	for _, p := range parts {
		r.requests += p.requests
		r.denied += p.denied
		r.errs += p.errs
		r.latencies = append(r.latencies, p.latencies...)
		if r.firstErr == nil {
			r.firstErr = p.firstErr
		}
	}
	slices.Sort(r.latencies)
	return r
}

func (r result) print(w *os.File, mode string) {
	us := func(d time.Duration) int64 { return d.Microseconds() }
	fmt.Fprintf(w, "RESULT mode=%s requests=%d duration_us=%d rps=%.0f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d socket_errors=%d\n",
		mode, r.requests, us(r.elapsed), float64(r.requests)/r.elapsed.Seconds(),
		us(r.percentile(50)), us(r.percentile(90)), us(r.percentile(99)), us(r.percentile(100)),
		r.denied, r.errs)
}

// percentile is the nearest-rank percentile of the sorted latencies.
func (r result) percentile(p float64) time.Duration {
	n := len(r.latencies)
	if n == 0 {
		return 0
	}
	i := int(float64(n)*p/100+0.5) - 1
	return r.latencies[min(max(i, 0), n-1)]
}

// mixedAddr is load.lua's mix: 1 in 10 from the listed sample, the rest
// random public-looking IPv4 addresses.
func mixedAddr(rng *rand.Rand, listed []string) string {
	if len(listed) > 0 && rng.IntN(10) == 0 {
		return listed[rng.IntN(len(listed))]
	}
	for {
		a := 1 + rng.IntN(223)
		if a != 10 && a != 127 {
			return fmt.Sprintf("%d.%d.%d.%d", a, rng.IntN(256), rng.IntN(256), rng.IntN(256))
		}
	}
}

func readSample(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read sample: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() && len(out) < maxSample {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read sample %s: %w", path, err)
	}
	return out, nil
}
