package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/goleak"

	"github.com/rampart-ip/rampart/config"

	"github.com/rampart-ip/rampart/reputation"
)

func TestHealth(t *testing.T) {
	var ready atomic.Bool
	h := newServer(t, func(o *Options) { o.Ready = ready.Load }).Handler()
	t.Run("healthz answers ok", func(t *testing.T) {
		w := do(t, h, http.MethodGet, "/healthz", "")
		if w.Code != http.StatusOK || w.Body.String() != "ok\n" {
			t.Errorf("status %d body %q", w.Code, w.Body.String())
		}
	})
	t.Run("readyz is 503 with a reason before readiness", func(t *testing.T) {
		w := do(t, h, http.MethodGet, "/readyz", "")
		if w.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d", w.Code)
		}
		if v := decode(t, w); v["reason"] == "" || v["status"] != "not ready" {
			t.Errorf("body %s", w.Body.String())
		}
	})
	t.Run("readyz is 200 once ready", func(t *testing.T) {
		ready.Store(true)
		w := do(t, h, http.MethodGet, "/readyz", "")
		if w.Code != http.StatusOK || decode(t, w)["status"] != "ready" {
			t.Errorf("status %d body %s", w.Code, w.Body.String())
		}
	})
}

func TestReadyFallsBackToTheService(t *testing.T) {
	svc := reputation.NewService(reputation.ServiceOptions{Logger: discard})
	s, err := New(Options{Service: svc, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	if w := do(t, s.Handler(), http.MethodGet, "/readyz", ""); w.Code != http.StatusServiceUnavailable {
		t.Errorf("before the first swap: status %d", w.Code)
	}
	svc.Swap(nil)
	if w := do(t, s.Handler(), http.MethodGet, "/readyz", ""); w.Code != http.StatusOK {
		t.Errorf("after the first swap: status %d", w.Code)
	}
}

// registrarFunc mounts routes for a test.
type registrarFunc func(e *echo.Echo)

func (f registrarFunc) Register(e *echo.Echo) { f(e) }

func TestErrors(t *testing.T) {
	h := newServer(t, func(o *Options) {
		o.Extra = []Registrar{registrarFunc(func(e *echo.Echo) {
			e.GET("/test/panic", func(echo.Context) error { panic("boom") })
			e.GET("/test/internal", func(echo.Context) error { return errors.New("secret database detail") })
			e.GET("/test/http-error", func(echo.Context) error { return echo.NewHTTPError(http.StatusTeapot, "short and stout") })
			e.GET("/test/ok", func(c echo.Context) error { return c.String(http.StatusOK, "mounted") })
		})}
	}).Handler()
	cases := []struct {
		name, method, target string
		code                 int
		want                 string
	}{
		{"an unknown route is a JSON 404", http.MethodGet, "/nope", http.StatusNotFound, "no such route"},
		{"a wrong method is a JSON 405", http.MethodDelete, "/ip", http.StatusMethodNotAllowed, "method"},
		{"a panic is a JSON 500", http.MethodGet, "/test/panic", http.StatusInternalServerError, "internal error"},
		{"an internal error does not leak its text", http.MethodGet, "/test/internal", http.StatusInternalServerError, "internal error"},
		{"an echo HTTPError keeps its status and message", http.MethodGet, "/test/http-error", http.StatusTeapot, "short and stout"},
		{"a feature that is not configured is a 501", http.MethodGet, "/api/v1/jobs", http.StatusNotImplemented, "not available"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, h, tc.method, tc.target, "")
			wantError(t, w, tc.code, tc.want)
			if strings.Contains(w.Body.String(), "secret") {
				t.Errorf("body leaks the internal error: %s", w.Body.String())
			}
		})
	}
	t.Run("routes from a registrar are mounted", func(t *testing.T) {
		if w := do(t, h, http.MethodGet, "/test/ok", ""); w.Code != http.StatusOK || w.Body.String() != "mounted" {
			t.Errorf("status %d body %q", w.Code, w.Body.String())
		}
	})
}

func TestNewRejectsBadSettings(t *testing.T) {
	_, err := New(Options{Service: newService(t), Logger: discard, HTTP: func() (h config.HTTP) {
		h.TrustedProxies = []string{"not-a-proxy"}
		h.AuthzChallenge = "maybe"
		return h
	}()})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"http.trusted_proxies[0]", "http.authz_challenge"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if _, err := New(Options{}); err == nil {
		t.Error("a server without a service was built")
	}
}

// blocker is a registrar whose handler waits until released, to hold a
// request in flight across a shutdown.
type blocker struct {
	started chan struct{}
	release chan struct{}
}

func (b *blocker) Register(e *echo.Echo) {
	e.GET("/test/slow", func(c echo.Context) error {
		close(b.started)
		<-b.release
		return c.String(http.StatusOK, "finished")
	})
}

func TestRunShutsDownGracefully(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	b := &blocker{started: make(chan struct{}), release: make(chan struct{})}
	s := newServer(t, func(o *Options) { o.Extra = []Registrar{b} })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	base := "http://" + ln.Addr().String()
	if body, code := get(t, client, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}

	slow := make(chan string, 1)
	go func() {
		body, code := get(t, client, base+"/test/slow")
		slow <- fmt.Sprint(code, " ", body)
	}()
	<-b.started
	cancel()
	// The listener closes at once; the request in flight still finishes.
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(b.release)
	if got := <-slow; got != "200 finished" {
		t.Errorf("request in flight: %s", got)
	}
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestRunBoundsTheShutdown(t *testing.T) {
	b := &blocker{started: make(chan struct{}), release: make(chan struct{})}
	defer close(b.release)
	s := newServer(t, func(o *Options) {
		o.Extra = []Registrar{b}
		o.ShutdownTimeout = 50 * time.Millisecond
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	go func() {
		resp, err := client.Get("http://" + ln.Addr().String() + "/test/slow")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-b.started
	cancel()
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run = %v, want the shutdown deadline", err)
	}
}

func get(t *testing.T, c *http.Client, url string) (string, int) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return "", 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met before the deadline")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
