package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nginxConf is the configuration the forward-auth test runs nginx with; the
// server block is the snippet docs/integrations.md shows. Every path is in
// the test's temporary directory, so nothing of the packaged nginx is used.
const nginxConf = `daemon off;
master_process on;
worker_processes 1;
pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log info;
events { worker_connections 64; }
http {
    access_log {{dir}}/access.log;
    client_body_temp_path {{dir}}/client_body;
    proxy_temp_path {{dir}}/proxy;
    fastcgi_temp_path {{dir}}/fastcgi;
    uwsgi_temp_path {{dir}}/uwsgi;
    scgi_temp_path {{dir}}/scgi;

    server {
        listen 127.0.0.1:{{port}};

        location = /_up { return 204; }

        location / {
            auth_request /_rampart;
            auth_request_set $rampart_score   $upstream_http_x_rampart_score;
            auth_request_set $rampart_verdict $upstream_http_x_rampart_verdict;
            auth_request_set $rampart_action  $upstream_http_x_rampart_action;
            auth_request_set $rampart_ip      $upstream_http_x_rampart_ip;
            proxy_set_header X-Rampart-Score   $rampart_score;
            proxy_set_header X-Rampart-Verdict $rampart_verdict;
            proxy_set_header X-Rampart-Action  $rampart_action;
            proxy_set_header X-Rampart-Ip      $rampart_ip;
            proxy_pass http://{{upstream}};
        }

        location = /_rampart {
            internal;
            proxy_pass http://{{rampart}}/authz;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
    }
}
`

// findNginx returns Debian's nginx binary. Without it the test is skipped
// on a developer's machine, but fails in CI, which installs nginx-light.
func findNginx(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("nginx not found at /usr/sbin/nginx or in PATH; CI must install nginx-light (.ci/run does)")
	}
	t.Skip("nginx not found at /usr/sbin/nginx or in PATH: install nginx-light to run the forward-auth test")
	return ""
}

// runningNginx is an nginx process group started by a test.
type runningNginx struct {
	url  string
	cmd  *exec.Cmd
	dir  string
	done chan struct{}
}

// errPortTaken means the port picked for nginx was taken before nginx bound it.
var errPortTaken = errors.New("port taken")

// startNginx runs nginx in front of upstream with auth_request to
// Rampart's /authz at rampartAddr, and stops it (the whole process group)
// when the test ends.
func startNginx(t *testing.T, bin, upstream, rampartAddr string) *runningNginx {
	t.Helper()
	// nginx needs a port number in its config: pick a free one and retry
	// if something else takes it first.
	for attempt := 0; ; attempt++ {
		n, err := tryNginx(t, bin, upstream, rampartAddr)
		if errors.Is(err, errPortTaken) && attempt < 3 {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
}

func tryNginx(t *testing.T, bin, upstream, rampartAddr string) (*runningNginx, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	dir := t.TempDir()
	conf := strings.NewReplacer("{{dir}}", dir, "{{port}}", fmt.Sprint(port),
		"{{upstream}}", upstream, "{{rampart}}", rampartAddr).Replace(nginxConf)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	// -e moves even the log nginx opens before reading its config.
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	n := &runningNginx{url: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, dir: dir, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(n.done) }()

	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(serveTimeout)
	for {
		resp, err := client.Get(n.url + "/_up")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				t.Cleanup(func() { n.stop(t) })
				return n, nil
			}
		}
		select {
		case <-n.done:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			if strings.Contains(string(log), "Address already in use") {
				return nil, errPortTaken
			}
			return nil, fmt.Errorf("nginx exited before serving: %s\n%s\n%s", cmd.ProcessState, out.String(), log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.stop(t)
			return nil, fmt.Errorf("nginx did not answer within %v", serveTimeout)
		}
	}
}

// stop ends nginx's whole process group (master and worker) and checks
// that nothing of it is left.
func (n *runningNginx) stop(t *testing.T) {
	t.Helper()
	pgid := n.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGQUIT) // graceful: finish requests, then exit
	select {
	case <-n.done:
	case <-time.After(serveTimeout / 2):
		t.Errorf("nginx did not stop on SIGQUIT; killing its process group")
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-n.done
	}
	// Workers may outlive the master for a moment; wait for the group to go.
	deadline := time.Now().Add(serveTimeout / 2)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			t.Errorf("nginx process group %d still alive after the master exited", pgid)
			return
		}
		<-time.After(10 * time.Millisecond)
	}
}

// upstreamRecorder is the application behind nginx: it records the
// headers of each request it receives, by path.
type upstreamRecorder struct {
	mu   sync.Mutex
	seen map[string]http.Header
}

func (u *upstreamRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.seen[r.URL.Path] = r.Header.Clone()
	u.mu.Unlock()
	_, _ = io.WriteString(w, "upstream ok\n")
}

func (u *upstreamRecorder) headers(path string) (http.Header, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	h, ok := u.seen[path]
	return h, ok
}

// clientFrom returns an HTTP client whose connections leave from the
// given loopback address, so nginx sees that address as $remote_addr.
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
			DisableKeepAlives: true,
		},
	}
}

func TestNginxAuthRequest(t *testing.T) {
	bin := findNginx(t)
	verifyNoLeaks(t)
	ts := startServe(t, "http: {trusted_proxies: [127.0.0.1/32]}\n")
	up := &upstreamRecorder{seen: map[string]http.Header{}}
	upstream := httptest.NewServer(up)
	defer upstream.Close()
	ngx := startNginx(t, bin, strings.TrimPrefix(upstream.URL, "http://"), strings.TrimPrefix(ts.httpURL, "http://"))

	// The test client talks to nginx from 127.0.0.1, which Rampart trusts,
	// so it plays a trusted front proxy (a load balancer) that appended the
	// real client itself; nginx appends 127.0.0.1 after it. A client from
	// 127.0.0.2 is an untrusted peer of nginx: nginx appends 127.0.0.2,
	// the right-most untrusted entry, and whatever it wrote to the left is
	// never believed.
	tests := []struct {
		name       string
		from       string // source address of the connection to nginx
		xff        string // X-Forwarded-For the client sends
		wantStatus int
		wantJudged string // X-Rampart-Ip the upstream sees (allowed requests)
	}{
		{"blocks a listed client named by a trusted front proxy", "127.0.0.1", listedV4, 403, ""},
		{"blocks a listed IPv6 client named by a trusted front proxy", "127.0.0.1", listedV6, 403, ""},
		{"blocks an address inside a listed range", "127.0.0.1", ts.spamhausInside.String(), 403, ""},
		{"allows an unlisted client and passes the judgement upstream", "127.0.0.1", unlistedV4, 200, unlistedV4},
		{"still blocks a listed client that prepended a clean address", "127.0.0.1", unlistedV4 + ", " + listedV4, 403, ""},
		{"judges the right-most entry, not a forged left-most one", "127.0.0.1", listedV4 + ", " + unlistedV4, 200, unlistedV4},
		{"judges the trusted front itself when it names no client", "127.0.0.1", "", 200, "127.0.0.1"},
		{"ignores a listed address spoofed by an untrusted client", "127.0.0.2", listedV4, 200, "127.0.0.2"},
		{"ignores a clean address spoofed by an untrusted client", "127.0.0.2", unlistedV4, 200, "127.0.0.2"},
		{"ignores a spoofed chain that ends in a trusted address", "127.0.0.2", listedV4 + ", 127.0.0.1", 200, "127.0.0.2"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := fmt.Sprintf("/case/%d", i)
			req, err := http.NewRequest(http.MethodGet, ngx.url+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.xff != "" {
				req.Header.Set("X-Forwarded-For", tt.xff)
			}
			// A client's own judgement headers must never reach the upstream.
			req.Header.Set("X-Rampart-Action", "forged")
			req.Header.Set("X-Rampart-Ip", "forged")
			resp, err := clientFrom(tt.from).Do(req)
			if err != nil {
				t.Fatalf("request through nginx from %s: %v", tt.from, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %.200s", resp.StatusCode, tt.wantStatus, body)
			}
			h, reached := up.headers(path)
			if tt.wantStatus == 403 {
				if reached {
					t.Errorf("blocked request reached the upstream")
				}
				return
			}
			if !reached || string(body) != "upstream ok\n" {
				t.Fatalf("allowed request did not reach the upstream (body %q)", body)
			}
			if got := h.Get("X-Rampart-Ip"); got != tt.wantJudged {
				t.Errorf("judged %q, want %q", got, tt.wantJudged)
			}
			if h.Get("X-Rampart-Action") != "allow" || h.Get("X-Rampart-Verdict") == "" || h.Get("X-Rampart-Score") == "" {
				t.Errorf("upstream got action %q verdict %q score %q, want allow and both set",
					h.Get("X-Rampart-Action"), h.Get("X-Rampart-Verdict"), h.Get("X-Rampart-Score"))
			}
		})
	}
}
