package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// nullWriter is a ResponseWriter that keeps nothing, so that benchmarks
// count the handler's allocations and not a recorder's.
type nullWriter struct {
	h    http.Header
	code int
}

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) WriteHeader(code int)        { w.code = code }
func (w *nullWriter) Write(b []byte) (int, error) { return len(b), nil }

func benchServe(b *testing.B, h http.Handler, r *http.Request, want int) {
	w := &nullWriter{h: http.Header{}}
	h.ServeHTTP(w, r) // warm the answer cache
	if w.code != want {
		b.Fatalf("status %d, want %d", w.code, want)
	}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

// BenchmarkGetIP is the hot path on a cache hit: routing, metrics, query
// parsing, the cached body written directly.
func BenchmarkGetIP(b *testing.B) {
	h := newServer(b, nil).Handler()
	for _, addr := range []string{listedHost, cleanV6} {
		b.Run(addr, func(b *testing.B) {
			benchServe(b, h, httptest.NewRequest(http.MethodGet, "/ip?ip="+addr, nil), http.StatusOK)
		})
	}
}

// BenchmarkHealthz is the floor that /ip is compared with.
func BenchmarkHealthz(b *testing.B) {
	h := newServer(b, nil).Handler()
	benchServe(b, h, httptest.NewRequest(http.MethodGet, "/healthz", nil), http.StatusOK)
}

// BenchmarkAuthz judges a client behind a trusted proxy.
func BenchmarkAuthz(b *testing.B) {
	h := newServer(b, func(o *Options) { o.HTTP.TrustedProxies = []string{"10.0.0.0/8"} }).Handler()
	r := httptest.NewRequest(http.MethodGet, "/authz", nil)
	r.RemoteAddr = "10.0.0.1:50000"
	r.Header.Set("X-Forwarded-For", "1.1.1.1, "+listedHost)
	benchServe(b, h, r, http.StatusForbidden)
}

// BenchmarkPostIP answers a batch of 100 cached addresses.
func BenchmarkPostIP(b *testing.B) {
	h := newServer(b, nil).Handler()
	var sb strings.Builder
	sb.WriteString(`{"ips":[`)
	for i := range 100 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `"1.1.%d.%d"`, i/10, i%10)
	}
	sb.WriteString(`]}`)
	body := sb.String()
	w := &nullWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/ip", strings.NewReader(body)))
	}
}

// BenchmarkMetricsOverhead measures what the metrics middleware adds to a
// request: the same trivial route on a bare router and on one with it.
func BenchmarkMetricsOverhead(b *testing.B) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	bare := echo.New()
	bare.GET("/healthz", healthz)
	measured := echo.New()
	measured.Use(m.middleware(discard))
	measured.GET("/healthz", healthz)
	m.setRoutes([]string{"/healthz"})
	for _, tc := range []struct {
		name string
		e    *echo.Echo
	}{{"bare", bare}, {"with metrics", measured}} {
		b.Run(tc.name, func(b *testing.B) {
			benchServe(b, tc.e, httptest.NewRequest(http.MethodGet, "/healthz", nil), http.StatusOK)
		})
	}
}
