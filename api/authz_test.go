package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/rampart-ip/rampart/reputation"
)

func TestClientAddr(t *testing.T) {
	trust, err := newProxyTrust([]string{"10.0.0.0/8", "192.168.1.1", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		peer   string
		xff    []string // header lines, in order
		realIP string
		want   string
		err    bool
	}{
		{"an untrusted peer is the client", "203.0.113.9:5000", nil, "", "203.0.113.9", false},
		{"an untrusted peer's X-Forwarded-For is ignored", "203.0.113.9:5000", []string{"9.9.9.9"}, "", "203.0.113.9", false},
		{"an untrusted peer's X-Real-IP is ignored", "203.0.113.9:5000", nil, "9.9.9.9", "203.0.113.9", false},
		{"an untrusted peer's malformed header is ignored", "203.0.113.9:5000", []string{"garbage"}, "", "203.0.113.9", false},
		{"a trusted peer without headers is the client", "10.1.2.3:5000", nil, "", "10.1.2.3", false},
		{"a trusted peer's single X-Forwarded-For entry is the client", "10.1.2.3:5000", []string{"198.51.100.4"}, "", "198.51.100.4", false},
		{"the right-most untrusted entry wins over forged ones to its left", "10.1.2.3:5000", []string{"1.1.1.1, 2.2.2.2, 198.51.100.4"}, "", "198.51.100.4", false},
		{"trusted hops on the right are skipped", "10.1.2.3:5000", []string{"1.1.1.1, 198.51.100.4, 10.9.9.9, 192.168.1.1"}, "", "198.51.100.4", false},
		{"several header lines read as one list", "10.1.2.3:5000", []string{"1.1.1.1, 198.51.100.4", "10.9.9.9"}, "", "198.51.100.4", false},
		{"when every hop is trusted the left-most is the client", "10.1.2.3:5000", []string{"10.5.5.5, 10.6.6.6"}, "", "10.5.5.5", false},
		{"entries with ports are understood", "10.1.2.3:5000", []string{"198.51.100.4:4431"}, "", "198.51.100.4", false},
		{"bracketed IPv6 entries with ports are understood", "10.1.2.3:5000", []string{"[2001:db8::7]:443"}, "", "2001:db8::7", false},
		{"X-Real-IP is used without X-Forwarded-For", "10.1.2.3:5000", nil, "198.51.100.4", "198.51.100.4", false},
		{"X-Forwarded-For is preferred to X-Real-IP", "10.1.2.3:5000", []string{"198.51.100.4"}, "9.9.9.9", "198.51.100.4", false},
		{"an IPv6 trusted peer is believed", "[fd00::1]:5000", []string{"2001:db8::9"}, "", "2001:db8::9", false},
		{"an IPv4-mapped peer is unmapped before the trust check", "[::ffff:10.1.2.3]:5000", []string{"198.51.100.4"}, "", "198.51.100.4", false},
		{"a malformed entry reached through trusted hops is an error", "10.1.2.3:5000", []string{"garbage, 10.9.9.9"}, "", "", true},
		{"a malformed entry left of the client is never read", "10.1.2.3:5000", []string{"garbage, 198.51.100.4"}, "", "198.51.100.4", false},
		{"a zone in an entry is an error", "10.1.2.3:5000", []string{"fe80::1%eth0"}, "", "", true},
		{"empty list elements are skipped", "10.1.2.3:5000", []string{"198.51.100.4, ,"}, "", "198.51.100.4", false},
		{"a malformed X-Real-IP from a trusted peer is an error", "10.1.2.3:5000", nil, "nope", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/authz", nil)
			r.RemoteAddr = tc.peer
			for _, l := range tc.xff {
				r.Header.Add("X-Forwarded-For", l)
			}
			if tc.realIP != "" {
				r.Header.Set("X-Real-IP", tc.realIP)
			}
			got, err := trust.clientAddr(r)
			if tc.err {
				if err == nil {
					t.Fatalf("client %s, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want {
				t.Errorf("client %s, want %s", got, tc.want)
			}
		})
	}
}

func TestNewProxyTrustReportsEveryBadEntry(t *testing.T) {
	_, err := newProxyTrust([]string{"10.0.0.0/8", "nope", "1.2.3.4/33"})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"trusted_proxies[1]", "trusted_proxies[2]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// challenger is the real service with every judgement turned into a
// challenge, so that the challenge rule is tested whatever the model says.
type challenger struct{ *reputation.Service }

func (c challenger) Judge(a netip.Addr) reputation.Judgement {
	j := c.Service.Judge(a)
	j.Action = reputation.ActionChallenge
	return j
}

func TestAuthz(t *testing.T) {
	allow := newServer(t, func(o *Options) { o.HTTP.TrustedProxies = []string{"127.0.0.0/8"} }).Handler()
	challengeAllow := newServer(t, func(o *Options) {
		o.HTTP.TrustedProxies = []string{"127.0.0.0/8"}
		o.Service = challenger{newService(t)}
	}).Handler()
	challengeDeny := newServer(t, func(o *Options) {
		o.HTTP.TrustedProxies = []string{"127.0.0.0/8"}
		o.HTTP.AuthzChallenge = "deny"
		o.Service = challenger{newService(t)}
	}).Handler()
	cases := []struct {
		name       string
		h          http.Handler
		method     string
		peer, xff  string
		wantCode   int
		wantAction string
		wantIP     string
	}{
		{"a listed client behind a trusted proxy is blocked", allow, http.MethodGet, "127.0.0.1:40000", listedHost, http.StatusForbidden, "block", listedHost},
		{"a clean client behind a trusted proxy is allowed", allow, http.MethodGet, "127.0.0.1:40000", cleanHost, http.StatusOK, "allow", cleanHost},
		{"a listed IPv6 client inside a range is blocked", allow, http.MethodGet, "127.0.0.1:40000", listedV6, http.StatusForbidden, "block", listedV6},
		{"a listed peer cannot spoof a clean address", allow, http.MethodGet, listedHost + ":40000", cleanHost, http.StatusForbidden, "block", listedHost},
		{"any method is judged", allow, http.MethodPost, "127.0.0.1:40000", rangeInside, http.StatusForbidden, "block", rangeInside},
		{"a challenge is allowed by default", challengeAllow, http.MethodGet, "127.0.0.1:40000", listedHost, http.StatusOK, "challenge", listedHost},
		{"a challenge is denied when configured so", challengeDeny, http.MethodGet, "127.0.0.1:40000", listedHost, http.StatusForbidden, "challenge", listedHost},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/authz", nil)
			r.RemoteAddr = tc.peer
			r.Header.Set("X-Forwarded-For", tc.xff)
			w := httptest.NewRecorder()
			tc.h.ServeHTTP(w, r)
			if w.Code != tc.wantCode {
				t.Errorf("status %d, want %d", w.Code, tc.wantCode)
			}
			if got := w.Header().Get(HeaderAction); got != tc.wantAction {
				t.Errorf("%s = %q, want %q", HeaderAction, got, tc.wantAction)
			}
			if got := w.Header().Get(HeaderClientIP); got != tc.wantIP {
				t.Errorf("%s = %q, want %q", HeaderClientIP, got, tc.wantIP)
			}
			if w.Header().Get(HeaderScore) == "" || w.Header().Get(HeaderVerdict) == "" {
				t.Errorf("score or verdict header missing: %v", w.Header())
			}
		})
	}
}

// TestAuthzOverTCP checks the peer address as a real listener reports it.
func TestAuthzOverTCP(t *testing.T) {
	ts := httptest.NewServer(newServer(t, nil).Handler())
	defer ts.Close()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, ts.URL+"/authz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", listedHost) // no trusted proxies: ignored
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderClientIP) != "127.0.0.1" {
		t.Errorf("status %d, judged %q; want 200 for the loopback peer", resp.StatusCode, resp.Header.Get(HeaderClientIP))
	}
}
