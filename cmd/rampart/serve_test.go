package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	rampartv1 "github.com/rampart-ip/rampart/api/proto/rampart/v1"
	"github.com/rampart-ip/rampart/internal/shared"
)

// Addresses the end-to-end tests ask about. The IPv6 ones are listed by a
// small feed the tests serve themselves (the shared samples are IPv4 only);
// all are public, routed space on no warninglist the tests load.
const (
	listedV4   = "1.14.6.129" // first entry of greensnow.ipset
	unlistedV4 = "9.9.9.9"
	listedV6   = "2a01:4f8:c17:1234::99"
	rangeV6    = "2a0b:4340:99::/48"
	insideV6   = "2a0b:4340:99:7::1"
	unlistedV6 = "2a00:1450:4001:80b::200e"
	bouncerKey = "test-bouncer-key-0123456789abcdef"
	v6Feed     = "# test feed: IPv6 hosts and ranges\n" + listedV6 + "\n" + rangeV6 + "\n"
)

// serveTimeout bounds every wait of these tests (readiness, shutdown): a
// hang detector, far above what a healthy run takes, not a timing check.
const serveTimeout = 20 * time.Second

// testServer is a running `rampart serve` over real feed samples.
type testServer struct {
	httpURL  string
	grpcAddr string
	httpPort int
	client   *http.Client
	// spamhausInside is an address inside the first spamhaus_drop range,
	// and spamhausRange that range.
	spamhausInside netip.Addr
	spamhausRange  netip.Prefix

	cancel context.CancelFunc
	done   chan error
	app    *app
	feeds  *httptest.Server
	logs   *lockedBuffer
}

// lockedBuffer collects the server's log for failure reports.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServe writes a config whose feeds are shared samples served over
// HTTP, builds the app with newApp and runs serve on ephemeral ports until
// the test stops it. extraYAML is appended to the config (top-level keys).
func startServe(t *testing.T, extraYAML string) *testServer {
	t.Helper()
	files := map[string][]byte{"/ipv6.txt": []byte(v6Feed)}
	for _, name := range []string{"greensnow.ipset", "spamhaus_drop.netset"} {
		b, err := os.ReadFile(shared.Data(t, "feeds", "firehol", name))
		if err != nil {
			t.Fatal(err)
		}
		files["/"+name] = b
	}
	ts := &testServer{logs: &lockedBuffer{}}
	ts.spamhausRange = firstRange(t, files["/spamhaus_drop.netset"])
	ts.spamhausInside = ts.spamhausRange.Addr().Next().Next().Next()

	ts.feeds = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(b)
	}))

	dir := t.TempDir()
	cfg := fmt.Sprintf(`data_dir: %s
log: {level: debug}
feeds:
  - {name: greensnow, provider: greensnow.co, url: %[2]s/greensnow.ipset, source_format: freetext, category: bruteforce}
  - {name: spamhaus_drop, provider: spamhaus.org, url: %[2]s/spamhaus_drop.netset, source_format: freetext, category: hijacked}
  - {name: ipv6_abuse, provider: test, url: %[2]s/ipv6.txt, source_format: freetext, category: scanner, weight: 0.9}
auth:
  api_keys:
    - {name: edge-bouncer, key: %[3]s, role: bouncer}
%[4]s`, filepath.Join(dir, "data"), ts.feeds.URL, bouncerKey, extraYAML)
	cfgPath := filepath.Join(dir, "rampart.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	a, err := newApp(ctx, cfgPath, ts.logs)
	if err != nil {
		cancel()
		ts.feeds.Close()
		t.Fatalf("newApp: %v", err)
	}
	ts.app = a
	ls := &listeners{http: listenLocal(t), grpc: listenLocal(t)}
	ts.httpPort = ls.http.Addr().(*net.TCPAddr).Port
	ts.httpURL = "http://" + ls.http.Addr().String()
	ts.grpcAddr = ls.grpc.Addr().String()
	ts.client = &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	ts.done = make(chan error, 1)
	go func() { ts.done <- a.serve(ctx, ls) }()
	t.Cleanup(func() {
		ts.stop(t)
		if t.Failed() {
			t.Logf("server log:\n%s", ts.logs.String())
		}
	})

	ts.waitReady(t)
	return ts
}

// stop cancels serve and waits for it to return, then releases everything
// the test server holds. It may be called more than once.
func (ts *testServer) stop(t *testing.T) {
	t.Helper()
	if ts.cancel == nil {
		return
	}
	ts.cancel()
	ts.cancel = nil
	select {
	case err := <-ts.done:
		if err != nil {
			t.Errorf("serve returned %v after cancellation, want nil", err)
		}
	case <-time.After(serveTimeout):
		t.Errorf("serve did not return within %v of cancellation", serveTimeout)
	}
	ts.app.close()
	ts.client.CloseIdleConnections()
	ts.feeds.Close()
}

func (ts *testServer) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(serveTimeout)
	for {
		resp, err := ts.client.Get(ts.httpURL + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 within %v (last: %v)", serveTimeout, err)
		}
		select {
		case err := <-ts.done:
			t.Fatalf("serve returned before ready: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// verifyNoLeaks checks, after every other cleanup of the test has run,
// that no goroutine the test started is left.
func verifyNoLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		if err := goleak.Find(opt); err != nil {
			t.Error(err)
		}
	})
}

func listenLocal(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// firstRange returns the first CIDR range (not a single host) in a netset.
func firstRange(t *testing.T, netset []byte) netip.Prefix {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(netset))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if p, err := netip.ParsePrefix(line); err == nil && p.Bits() <= 28 {
			return p
		}
	}
	t.Fatal("no CIDR range in spamhaus_drop.netset")
	return netip.Prefix{}
}

// ipAnswer is the part of the /ip answer these tests check.
type ipAnswer struct {
	IP         string         `json:"ip"`
	IsIoC      bool           `json:"is_IoC"`
	IsActive   bool           `json:"is_Active"`
	Score      float64        `json:"score"`
	Verdict    string         `json:"verdict"`
	Action     string         `json:"action"`
	Blacklists []string       `json:"blacklists"`
	Type       []string       `json:"type"`
	Metadata   map[string]any `json:"metadata"`
	Error      string         `json:"error"`
}

func (ts *testServer) get(t *testing.T, path string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.httpURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp, body
}

func TestServeEndToEnd(t *testing.T) {
	verifyNoLeaks(t)
	ts := startServe(t, "")

	t.Run("the /ip answer", func(t *testing.T) {
		tests := []struct {
			name       string
			query      string
			wantStatus int
			wantIoC    bool
			wantFeed   string // a feed that must be in blacklists
		}{
			{"blocks an IPv4 address a feed lists", listedV4, 200, true, "greensnow"},
			{"allows an IPv4 address no feed lists", unlistedV4, 200, false, ""},
			{"lists an address inside a listed CIDR range", ts.spamhausInside.String(), 200, true, "spamhaus_drop"},
			{"blocks an IPv6 address a feed lists", listedV6, 200, true, "ipv6_abuse"},
			{"lists an IPv6 address inside a listed range", insideV6, 200, true, "ipv6_abuse"},
			{"allows an IPv6 address no feed lists", unlistedV6, 200, false, ""},
			{"rejects an out-of-range octet with 400", "1.2.3.256", 400, false, ""},
			{"rejects garbage with 400", "not-an-ip", 400, false, ""},
			{"rejects a missing address with 400", "", 400, false, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, body := ts.get(t, "/ip?ip="+tt.query, nil)
				if resp.StatusCode != tt.wantStatus {
					t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
				}
				var ans ipAnswer
				if err := json.Unmarshal(body, &ans); err != nil {
					t.Fatalf("body is not JSON: %v: %s", err, body)
				}
				if tt.wantStatus != 200 {
					if ans.Error == "" {
						t.Errorf("error answer has no error field: %s", body)
					}
					return
				}
				if ans.IP != tt.query {
					t.Errorf("ip %q, want %q", ans.IP, tt.query)
				}
				if ans.Blacklists == nil || ans.Type == nil || ans.Metadata == nil {
					t.Errorf("blacklists, type and metadata must be present and not null: %s", body)
				}
				if ans.IsIoC != tt.wantIoC {
					t.Fatalf("is_IoC %v, want %v: %s", ans.IsIoC, tt.wantIoC, body)
				}
				if tt.wantIoC {
					if !ans.IsActive || ans.Verdict != "dangerous" || ans.Action != "block" {
						t.Errorf("listed address: is_Active %v verdict %q action %q, want true dangerous block",
							ans.IsActive, ans.Verdict, ans.Action)
					}
					if !slices.Contains(ans.Blacklists, tt.wantFeed) {
						t.Errorf("blacklists %v, want %s among them", ans.Blacklists, tt.wantFeed)
					}
				} else {
					if len(ans.Blacklists) != 0 || ans.Action == "block" {
						t.Errorf("unlisted address: blacklists %v action %q, want none and not block", ans.Blacklists, ans.Action)
					}
				}
			})
		}
	})

	t.Run("healthz answers 200", func(t *testing.T) {
		if resp, body := ts.get(t, "/healthz", nil); resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})

	t.Run("gRPC", func(t *testing.T) { testGRPC(t, ts) })
	t.Run("CrowdSec bouncer protocol", func(t *testing.T) { testCrowdSec(t, ts) })
	t.Run("blocklist export", func(t *testing.T) { testBlocklist(t, ts) })

	t.Run("shuts down gracefully when its context is cancelled", func(t *testing.T) {
		ts.stop(t)
		if _, err := net.DialTimeout("tcp", strings.TrimPrefix(ts.httpURL, "http://"), time.Second); err == nil {
			t.Error("HTTP listener still accepts connections after serve returned")
		}
		if _, err := net.DialTimeout("tcp", ts.grpcAddr, time.Second); err == nil {
			t.Error("gRPC listener still accepts connections after serve returned")
		}
	})
}

func testGRPC(t *testing.T, ts *testServer) {
	conn, err := grpc.NewClient(ts.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), serveTimeout)
	defer cancel()

	t.Run("health reports SERVING for the server and the reputation service", func(t *testing.T) {
		hc := healthpb.NewHealthClient(conn)
		for _, svc := range []string{"", rampartv1.Reputation_ServiceDesc.ServiceName} {
			// The gRPC server notices readiness on its own poll, so wait.
			for {
				resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
				if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("health of %q never SERVING (last: %v, %v)", svc, resp.GetStatus(), err)
				}
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
	})

	rc := rampartv1.NewReputationClient(conn)
	tests := []struct {
		name     string
		ip       string
		wantCode codes.Code
		wantIoC  bool
		action   string
	}{
		{"Check blocks a listed address", listedV4, codes.OK, true, "block"},
		{"Check blocks a listed IPv6 address", listedV6, codes.OK, true, "block"},
		{"Check allows an unlisted address", unlistedV4, codes.OK, false, ""},
		{"Check rejects a malformed address as InvalidArgument", "1.2.3.256", codes.InvalidArgument, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := rc.Check(ctx, &rampartv1.CheckRequest{Ip: tt.ip})
			if status.Code(err) != tt.wantCode {
				t.Fatalf("code %v (%v), want %v", status.Code(err), err, tt.wantCode)
			}
			if err != nil {
				return
			}
			a := resp.GetAnswer()
			if a.GetIp() != tt.ip || a.GetIsIoc() != tt.wantIoC {
				t.Errorf("answer ip %q is_ioc %v, want %q %v", a.GetIp(), a.GetIsIoc(), tt.ip, tt.wantIoC)
			}
			if tt.action != "" && a.GetAction() != tt.action {
				t.Errorf("action %q, want %q", a.GetAction(), tt.action)
			}
			if !tt.wantIoC && a.GetAction() == "block" {
				t.Errorf("unlisted address blocked: %v", a)
			}
		})
	}
}

// csDecision is a decision in CrowdSec's Local API shape.
type csDecision struct {
	Origin   string `json:"origin"`
	Type     string `json:"type"`
	Scope    string `json:"scope"`
	Value    string `json:"value"`
	Duration string `json:"duration"`
	Scenario string `json:"scenario"`
}

func testCrowdSec(t *testing.T, ts *testServer) {
	key := http.Header{"X-Api-Key": {bouncerKey}}

	t.Run("refuses a wrong key with CrowdSec's 403 message", func(t *testing.T) {
		for _, h := range []http.Header{nil, {"X-Api-Key": {"wrong"}}} {
			resp, body := ts.get(t, "/v1/decisions/stream?startup=true", h)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"access forbidden"`) {
				t.Errorf("header %v: status %d body %s, want 403 access forbidden", h, resp.StatusCode, body)
			}
		}
	})

	t.Run("startup stream holds the listed address and range, then no changes", func(t *testing.T) {
		resp, body := ts.get(t, "/v1/decisions/stream?startup=true", key)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %.200s", resp.StatusCode, body)
		}
		var s struct {
			New     []csDecision `json:"new"`
			Deleted []csDecision `json:"deleted"`
		}
		if err := json.Unmarshal(body, &s); err != nil {
			t.Fatalf("stream is not JSON: %v", err)
		}
		found := map[string]csDecision{}
		for _, d := range s.New {
			found[d.Value] = d
		}
		for value, scope := range map[string]string{listedV4: "Ip", listedV6: "Ip", ts.spamhausRange.String(): "Range"} {
			d, ok := found[value]
			if !ok {
				t.Errorf("%s missing from %d new decisions", value, len(s.New))
				continue
			}
			if d.Scope != scope || d.Origin != "rampart" || d.Type != "ban" || d.Duration == "" {
				t.Errorf("decision for %s: %+v, want scope %s, origin rampart, type ban, a duration", value, d, scope)
			}
		}
		if _, ok := found[unlistedV4]; ok {
			t.Errorf("unlisted %s has a decision", unlistedV4)
		}

		resp, body = ts.get(t, "/v1/decisions/stream?startup=false", key)
		if resp.StatusCode != 200 {
			t.Fatalf("second pull: status %d: %s", resp.StatusCode, body)
		}
		s.New, s.Deleted = nil, nil
		if err := json.Unmarshal(body, &s); err != nil {
			t.Fatalf("second pull is not JSON: %v: %s", err, body)
		}
		if len(s.New) != 0 || len(s.Deleted) != 0 {
			t.Errorf("nothing changed, yet second pull has %d new and %d deleted", len(s.New), len(s.Deleted))
		}
	})

	t.Run("decisions for one address", func(t *testing.T) {
		for _, tt := range []struct {
			ip   string
			want int
		}{{listedV4, 1}, {unlistedV4, 0}} {
			resp, body := ts.get(t, "/v1/decisions?ip="+tt.ip, key)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: status %d: %s", tt.ip, resp.StatusCode, body)
			}
			var ds []csDecision // CrowdSec answers null for none
			if err := json.Unmarshal(body, &ds); err != nil {
				t.Fatalf("%s: not JSON: %v: %s", tt.ip, err, body)
			}
			if len(ds) != tt.want {
				t.Errorf("%s: %d decisions, want %d: %s", tt.ip, len(ds), tt.want, body)
			}
		}
	})
}

func testBlocklist(t *testing.T, ts *testServer) {
	key := http.Header{"X-Api-Key": {bouncerKey}}

	t.Run("needs a key once API keys are configured", func(t *testing.T) {
		resp, _ := ts.get(t, "/api/v1/blocklist?format=plain", nil)
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
			t.Errorf("status %d without a key, want 401 or 403", resp.StatusCode)
		}
	})

	resp, body := ts.get(t, "/api/v1/blocklist?format=plain", key)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %.200s", resp.StatusCode, body)
	}
	var list []netip.Prefix
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		p, err := netip.ParsePrefix(line)
		if err != nil {
			a, aerr := netip.ParseAddr(line)
			if aerr != nil {
				t.Fatalf("line %q is neither an address nor a prefix", line)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		list = append(list, p)
	}
	covered := func(s string) bool {
		a := netip.MustParseAddr(s)
		return slices.ContainsFunc(list, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	t.Run("plain list covers listed addresses and ranges only", func(t *testing.T) {
		for _, s := range []string{listedV4, listedV6, insideV6, ts.spamhausInside.String()} {
			if !covered(s) {
				t.Errorf("%s is not covered by the %d exported prefixes", s, len(list))
			}
		}
		for _, s := range []string{unlistedV4, unlistedV6} {
			if covered(s) {
				t.Errorf("unlisted %s is covered by the export", s)
			}
		}
	})
	t.Run("an unchanged list answers 304 to its ETag", func(t *testing.T) {
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Fatal("no ETag")
		}
		again, _ := ts.get(t, "/api/v1/blocklist?format=plain", http.Header{"X-Api-Key": {bouncerKey}, "If-None-Match": {etag}})
		if again.StatusCode != http.StatusNotModified {
			t.Errorf("status %d, want 304", again.StatusCode)
		}
	})
}
