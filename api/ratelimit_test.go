package api

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/config"
)

// testClock is a clock the test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// limitedServer has 1 request per second per key and per peer, burst 2,
// and trusts 10.0.0.0/8 as proxies.
func limitedServer(t *testing.T, clk *testClock) http.Handler {
	t.Helper()
	return newServer(t, func(o *Options) {
		o.Auth = testKeys(true)
		o.Getenv = getenv
		o.Auth.RateLimit = config.RateLimit{PerKey: 1, PerPeer: 1, Burst: 2, MaxPeers: 100}
		o.HTTP.TrustedProxies = []string{"10.0.0.0/8"}
		o.Now = clk.now
	}).Handler()
}

// from sends GET target from peer with an optional key.
func from(t *testing.T, h http.Handler, peer, target, key string) (int, http.Header, string) {
	t.Helper()
	var hdr []string
	if key != "" {
		hdr = []string{"X-Api-Key", key}
	}
	w := doFrom(t, h, peer, http.MethodGet, target, hdr...)
	return w.Code, w.Header(), w.Body.String()
}

func doFrom(t *testing.T, h http.Handler, peer, method, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	req.RemoteAddr = peer
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestRateLimits(t *testing.T) {
	ipURL := "/ip?ip=" + cleanHost

	t.Run("a peer over its burst gets 429 with Retry-After and a JSON error", func(t *testing.T) {
		clk := &testClock{t: testNow}
		h := limitedServer(t, clk)
		for i := range 2 {
			if code, _, body := from(t, h, "192.0.2.10:1000", ipURL, ""); code != http.StatusOK {
				t.Fatalf("request %d: status %d: %s", i, code, body)
			}
		}
		w := doFrom(t, h, "192.0.2.10:1001", http.MethodGet, ipURL)
		wantError(t, w, http.StatusTooManyRequests, "rate limit exceeded")
		if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("Retry-After = %q, want whole seconds >= 1", w.Header().Get("Retry-After"))
		}
		clk.advance(time.Second)
		if code, _, _ := from(t, h, "192.0.2.10:1002", ipURL, ""); code != http.StatusOK {
			t.Errorf("after a second the peer got %d, want 200", code)
		}
	})

	t.Run("peers and keys have buckets of their own", func(t *testing.T) {
		clk := &testClock{t: testNow}
		h := limitedServer(t, clk)
		for range 3 {
			from(t, h, "192.0.2.20:1", ipURL, "")
			from(t, h, "192.0.2.30:1", ipURL, queryKey)
		}
		cases := []struct {
			name, peer, key string
			want            int
		}{
			{"the exhausted peer is limited", "192.0.2.20:2", "", http.StatusTooManyRequests},
			{"another peer is not", "192.0.2.21:2", "", http.StatusOK},
			{"the exhausted key is limited from any peer", "198.51.100.1:2", queryKey, http.StatusTooManyRequests},
			{"another key is not, even from the exhausted peer", "192.0.2.20:3", adminKey, http.StatusOK},
			{"an unknown key counts as its peer", "192.0.2.20:4", "not-a-key-0123456789", http.StatusTooManyRequests},
			{"the same IPv6 /64 shares one bucket", "[2001:db8:1:2::5]:1", "", http.StatusOK},
		}
		for range 2 {
			from(t, h, "[2001:db8:1:2::1]:1", ipURL, "")
		}
		cases[5].want = http.StatusTooManyRequests
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if code, _, body := from(t, h, tc.peer, ipURL, tc.key); code != tc.want {
					t.Errorf("status %d, want %d: %s", code, tc.want, body)
				}
			})
		}
	})

	t.Run("probes, metrics and trusted proxies are not limited per peer", func(t *testing.T) {
		clk := &testClock{t: testNow}
		h := limitedServer(t, clk)
		for _, target := range []string{"/healthz", "/readyz", "/metrics"} {
			for i := range 5 {
				if code, _, _ := from(t, h, "192.0.2.40:1", target, ""); code != http.StatusOK {
					t.Fatalf("%s request %d: status %d, want 200", target, i, code)
				}
			}
		}
		for i := range 5 {
			if code, _, _ := from(t, h, "10.1.2.3:1", ipURL, ""); code != http.StatusOK {
				t.Fatalf("trusted proxy request %d: status %d, want 200", i, code)
			}
		}
		if code, _, _ := from(t, h, "192.0.2.40:1", ipURL, ""); code != http.StatusOK {
			t.Error("probes used up the peer's /ip budget")
		}
	})

	t.Run("limits are off by default", func(t *testing.T) {
		h := newServer(t, nil).Handler()
		for i := range 20 {
			if code, _, _ := from(t, h, "192.0.2.50:1", ipURL, ""); code != http.StatusOK {
				t.Fatalf("request %d: status %d", i, code)
			}
		}
	})
}

func TestRateLimiterForgetsPeersBeyondItsBound(t *testing.T) {
	l, err := NewRateLimiter(config.RateLimit{PerPeer: 1, Burst: 1, MaxPeers: 2}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("192.0.2.1")
	if ok, _ := l.Allow("", a, testNow); !ok {
		t.Fatal("first request refused")
	}
	if ok, wait := l.Allow("", a, testNow); ok || wait <= 0 {
		t.Fatalf("second request: ok %v, wait %v; want refused with a wait", ok, wait)
	}
	for _, s := range []string{"192.0.2.2", "192.0.2.3"} {
		l.Allow("", netip.MustParseAddr(s), testNow)
	}
	if n := l.peers.Len(); n != 2 {
		t.Errorf("tracking %d peers, want at most 2", n)
	}
	if ok, _ := l.Allow("", a, testNow); !ok {
		t.Error("a forgotten peer should start with a full bucket")
	}
}

func TestRetryAfter(t *testing.T) {
	for wait, want := range map[time.Duration]string{0: "1", time.Millisecond: "1", time.Second: "1", 1500 * time.Millisecond: "2"} {
		if got := RetryAfter(wait); got != want {
			t.Errorf("RetryAfter(%v) = %q, want %q", wait, got, want)
		}
	}
}

// BenchmarkGetIPRateLimited is BenchmarkGetIP with both limits on and a
// budget never used up, to be compared with it: the cost of the buckets on
// the hot path.
func BenchmarkGetIPRateLimited(b *testing.B) {
	for _, tc := range []struct{ name, key string }{{"peer", ""}, {"key", queryKey}} {
		b.Run(tc.name, func(b *testing.B) {
			h := newServer(b, func(o *Options) {
				o.Auth = testKeys(true)
				o.Getenv = getenv
				o.Auth.RateLimit = config.RateLimit{PerKey: 1e9, PerPeer: 1e9, Burst: 1 << 30, MaxPeers: 1000}
			}).Handler()
			r := httptest.NewRequest(http.MethodGet, "/ip?ip="+listedHost, nil)
			if tc.key != "" {
				r.Header.Set("X-Api-Key", tc.key)
			}
			benchServe(b, h, r, http.StatusOK)
		})
	}
}
