package rpc

import (
	"net/netip"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rampart-ip/rampart/reputation"
)

// envoyRequest builds what Envoy sends for a request from source with the
// given X-Forwarded-For header (none if empty).
func envoyRequest(source, xff string) *authv3.CheckRequest {
	headers := map[string]string{":method": "GET", ":path": "/", "host": "app.example"}
	if xff != "" {
		headers["x-forwarded-for"] = xff
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: source, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/", Headers: headers}},
	}}
}

func headerMap(hs []*corev3.HeaderValueOption) map[string]string {
	m := map[string]string{}
	for _, h := range hs {
		m[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			m["append:"+h.GetHeader().GetKey()] = "wrong"
		}
	}
	return m
}

func TestExtAuthz(t *testing.T) {
	svc := newService(t, true)
	if j := svc.Judge(mustAddr(challengeHost)); j.Action != reputation.ActionChallenge {
		t.Fatalf("fixture: %s is judged %+v, want a challenge", challengeHost, j)
	}
	tests := []struct {
		name        string
		hops        int
		challenge   string
		source, xff string
		wantDenied  bool
		judged      string
	}{
		{"a listed source is denied with 403", 0, "allow", listedHost, "", true, listedHost},
		{"a source inside a listed range is denied", 0, "allow", rangeInside, "", true, rangeInside},
		{"a listed IPv6 source is denied", 0, "allow", listedV6, "", true, listedV6},
		{"a clean source is allowed", 0, "allow", cleanHost, "", false, cleanHost},
		{"without trusted hops a spoofed X-Forwarded-For changes nothing", 0, "allow", cleanHost, listedHost, false, cleanHost},
		{"without trusted hops a listed source is denied whatever the header says", 0, "allow", listedHost, cleanHost, true, listedHost},
		{"with one trusted hop the right-most entry is judged", 1, "allow", "10.0.0.1", cleanHost + ", " + listedHost, true, listedHost},
		{"with one trusted hop a spoofed left entry changes nothing", 1, "allow", "10.0.0.1", listedHost + ", " + cleanHost, false, cleanHost},
		{"with two trusted hops the second entry from the right is judged", 2, "allow", "10.0.0.1", "8.8.8.8, " + listedHost + ", 10.0.0.2", true, listedHost},
		{"with fewer entries than trusted hops the left-most is judged", 3, "allow", "10.0.0.1", listedHost + ",10.0.0.2", true, listedHost},
		{"with trusted hops and no header the source is judged", 1, "allow", listedHost, "", true, listedHost},
		{"a challenge is allowed when challenge is allow", 0, "allow", challengeHost, "", false, challengeHost},
		{"a challenge is denied when challenge is deny", 0, "deny", challengeHost, "", true, challengeHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := start(t, svc, func(o *Options) {
				o.GRPC.ExtAuthz.TrustedHops = tt.hops
				o.GRPC.ExtAuthz.Challenge = tt.challenge
			})
			resp, err := authv3.NewAuthorizationClient(conn).Check(t.Context(), envoyRequest(tt.source, tt.xff))
			if err != nil {
				t.Fatal(err)
			}
			j := svc.Judge(mustAddr(tt.judged))
			var headers map[string]string
			if tt.wantDenied {
				d := resp.GetDeniedResponse()
				if d == nil || resp.GetStatus().GetCode() != int32(codes.PermissionDenied) {
					t.Fatalf("response %v, want denied", resp)
				}
				if d.GetStatus().GetCode() != typev3.StatusCode_Forbidden {
					t.Errorf("HTTP status %v, want 403", d.GetStatus().GetCode())
				}
				headers = headerMap(d.GetHeaders())
			} else {
				ok := resp.GetOkResponse()
				if ok == nil || resp.GetStatus().GetCode() != int32(codes.OK) {
					t.Fatalf("response %v, want ok", resp)
				}
				headers = headerMap(ok.GetHeaders())
			}
			want := map[string]string{HeaderVerdict: j.Verdict, HeaderScore: formatScore(j.Score), HeaderAction: j.Action}
			if len(headers) != len(want) {
				t.Errorf("headers %v, want %v", headers, want)
			}
			for k, v := range want {
				if headers[k] != v {
					t.Errorf("header %s = %q, want %q", k, headers[k], v)
				}
			}
		})
	}
}

func TestExtAuthzBeforeReady(t *testing.T) {
	tests := []struct {
		name     string
		failOpen bool
		wantCode typev3.StatusCode // 0 for allowed
	}{
		{"fail open allows every request", true, 0},
		{"fail closed denies with 503", false, typev3.StatusCode_ServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := start(t, newService(t, false), func(o *Options) { o.GRPC.ExtAuthz.FailOpen = tt.failOpen })
			resp, err := authv3.NewAuthorizationClient(conn).Check(t.Context(), envoyRequest(listedHost, ""))
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantCode == 0 {
				if resp.GetOkResponse() == nil {
					t.Fatalf("response %v, want ok", resp)
				}
				return
			}
			if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != tt.wantCode {
				t.Fatalf("response %v, want denied %v", resp, tt.wantCode)
			}
		})
	}
}

func TestExtAuthzBadAddresses(t *testing.T) {
	tests := []struct {
		name string
		req  *authv3.CheckRequest
		hops int
	}{
		{"a request without source address", &authv3.CheckRequest{Attributes: &authv3.AttributeContext{}}, 0},
		{"a unix socket peer", &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Source: &authv3.AttributeContext_Peer{
			Address: &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/run/envoy.sock"}}}}}}, 0},
		{"a malformed X-Forwarded-For entry", envoyRequest(cleanHost, "not-an-ip"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is an invalid argument", func(t *testing.T) {
			conn := start(t, newService(t, true), func(o *Options) { o.GRPC.ExtAuthz.TrustedHops = tt.hops })
			_, err := authv3.NewAuthorizationClient(conn).Check(t.Context(), tt.req)
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("err %v, want InvalidArgument", err)
			}
		})
	}
}

func TestForwardedForFromHeaderMap(t *testing.T) {
	h := &authv3.AttributeContext_HttpRequest{HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: "X-Forwarded-For", RawValue: []byte("1.2.3.4")},
		{Key: "x-forwarded-for", Value: "5.6.7.8"},
	}}}
	if got := forwardedFor(h); got != "1.2.3.4,5.6.7.8" {
		t.Fatalf("got %q", got)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
