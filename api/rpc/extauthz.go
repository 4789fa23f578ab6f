package rpc

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"

	"github.com/rampart-ip/rampart/reputation"
)

// Headers carried on ext_authz answers: to the client on a denial, to the
// upstream on an allowed request.
const (
	HeaderVerdict = "x-rampart-verdict"
	HeaderScore   = "x-rampart-score"
	HeaderAction  = "x-rampart-action"
	maxXFFBytes   = 8 << 10
)

// authzServer implements envoy.service.auth.v3.Authorization.
type authzServer struct {
	authv3.UnimplementedAuthorizationServer
	s *Server
}

var _ authv3.AuthorizationServer = (*authzServer)(nil)

// Check decides one HTTP request from its client address. An address that
// cannot be found is INVALID_ARGUMENT, so that Envoy's failure_mode_allow
// decides, as it does when Rampart is unreachable.
func (z *authzServer) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	cfg := z.s.opts.GRPC.ExtAuthz
	addr, err := clientAddr(req.GetAttributes(), cfg.TrustedHops)
	if err != nil {
		return nil, fmt.Errorf("ext_authz check: %w", err)
	}
	if !z.s.opts.Service.Ready() {
		j := reputation.Judgement{Score: 100, Verdict: "unknown", Action: reputation.ActionAllow}
		if cfg.FailOpen {
			return okResponse(j), nil
		}
		j.Action = reputation.ActionBlock
		return deniedResponse(j, typev3.StatusCode_ServiceUnavailable, "reputation service not ready\n"), nil
	}
	j := z.s.opts.Service.Judge(addr)
	switch j.Action {
	case reputation.ActionBlock:
		return deniedResponse(j, typev3.StatusCode_Forbidden, "access denied\n"), nil
	case reputation.ActionChallenge:
		if cfg.Challenge == "deny" {
			return deniedResponse(j, typev3.StatusCode_Forbidden, "access denied\n"), nil
		}
	}
	return okResponse(j), nil
}

// clientAddr finds the address to judge: the connection's source address,
// or, when trustedHops proxies in front of Envoy are trusted, the
// X-Forwarded-For entry that many hops from the right. With fewer entries
// than trusted hops, every entry was written by a trusted proxy and the
// left-most one is the client they saw.
func clientAddr(attrs *authv3.AttributeContext, trustedHops int) (netip.Addr, error) {
	if trustedHops > 0 {
		xff := forwardedFor(attrs.GetRequest().GetHttp())
		if xff != "" {
			entries := strings.Split(xff, ",")
			i := len(entries) - trustedHops
			if i < 0 {
				i = 0
			}
			a, err := parseAddr(entries[i])
			if err != nil {
				return netip.Addr{}, fmt.Errorf("x-forwarded-for entry %d: %w", i, err)
			}
			return a, nil
		}
	}
	sa := attrs.GetSource().GetAddress().GetSocketAddress()
	if sa == nil {
		return netip.Addr{}, fmt.Errorf("%w: request has no source socket address", ErrInvalidAddress)
	}
	return parseAddr(sa.GetAddress())
}

// forwardedFor returns the X-Forwarded-For header, joining repeated ones.
// Envoy sends headers in Headers, or in HeaderMap when it is configured to
// send raw header values.
func forwardedFor(h *authv3.AttributeContext_HttpRequest) string {
	if v, ok := h.GetHeaders()["x-forwarded-for"]; ok {
		return bound(v)
	}
	var parts []string
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		if strings.EqualFold(hv.GetKey(), "x-forwarded-for") {
			v := hv.GetValue()
			if v == "" {
				v = string(hv.GetRawValue())
			}
			parts = append(parts, v)
		}
	}
	return bound(strings.Join(parts, ","))
}

// bound keeps the right-most part of an over-long header: the entries the
// trusted proxies appended are at its end.
func bound(v string) string {
	if len(v) > maxXFFBytes {
		v = v[len(v)-maxXFFBytes:]
		if i := strings.IndexByte(v, ','); i >= 0 {
			v = v[i+1:]
		}
	}
	return v
}

func judgementHeaders(j reputation.Judgement) []*corev3.HeaderValueOption {
	// Overwrite, so that a client cannot pass its own x-rampart-* headers
	// to the upstream.
	h := func(k, v string) *corev3.HeaderValueOption {
		return &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: k, Value: v},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}
	}
	return []*corev3.HeaderValueOption{
		h(HeaderVerdict, j.Verdict),
		h(HeaderScore, formatScore(j.Score)),
		h(HeaderAction, j.Action),
	}
}

// formatScore renders a score with at most two decimals.
func formatScore(s float64) string {
	return strconv.FormatFloat(math.Round(s*100)/100, 'f', -1, 64)
}

func okResponse(j reputation.Judgement) *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: judgementHeaders(j),
		}},
	}
}

func deniedResponse(j reputation.Judgement, code typev3.StatusCode, body string) *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: code},
			Headers: judgementHeaders(j),
			Body:    body,
		}},
	}
}
