package api

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/rampart-ip/rampart/reputation"
)

// Headers of an /authz answer, for the proxy to pass on or log.
const (
	HeaderScore   = "X-Rampart-Score"
	HeaderVerdict = "X-Rampart-Verdict"
	HeaderAction  = "X-Rampart-Action"
	// HeaderClientIP is the address that was judged.
	HeaderClientIP = "X-Rampart-Ip"
)

// proxyTrust says which peers' forwarding headers are believed.
type proxyTrust struct {
	prefixes []netip.Prefix
}

// newProxyTrust parses http.trusted_proxies: addresses or CIDR ranges.
func newProxyTrust(list []string) (proxyTrust, error) {
	var t proxyTrust
	var errs []error
	for i, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			t.prefixes = append(t.prefixes, p.Masked())
			continue
		}
		a, err := ParseAddr(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("http.trusted_proxies[%d]: %q is not an address or CIDR range", i, s))
			continue
		}
		t.prefixes = append(t.prefixes, netip.PrefixFrom(a, a.BitLen()))
	}
	return t, errors.Join(errs...)
}

func (t proxyTrust) trusted(a netip.Addr) bool {
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr finds the client that a forward-auth request is about. It is
// the TCP peer, unless the peer is a trusted proxy: then it is the
// right-most X-Forwarded-For address that is not itself trusted (every
// trusted proxy appends the address it received from, so everything to
// the right of that entry was written by trusted hops and everything to
// its left may be forged by the client). Without X-Forwarded-For,
// X-Real-IP is used. When every hop is trusted the left-most one is the
// client. Headers from an untrusted peer are ignored entirely.
func (t proxyTrust) clientAddr(r *http.Request) (netip.Addr, error) {
	peer, err := parseHop(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("client address: peer %q: %w", r.RemoteAddr, err)
	}
	if !t.trusted(peer) {
		return peer, nil
	}
	lines := r.Header.Values("X-Forwarded-For")
	if len(lines) == 0 {
		xr := strings.TrimSpace(r.Header.Get("X-Real-IP"))
		if xr == "" {
			return peer, nil
		}
		a, err := parseHop(xr)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("%w: X-Real-IP: %v", ErrBadRequest, err)
		}
		return a, nil
	}
	client := peer
	for i := len(lines) - 1; i >= 0; i-- {
		for line := lines[i]; line != ""; {
			var hop string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				hop, line = line[j+1:], line[:j]
			} else {
				hop, line = line, ""
			}
			hop = strings.TrimSpace(hop)
			if hop == "" {
				continue
			}
			a, err := parseHop(hop)
			if err != nil {
				// Only trusted hops wrote what is to the right, so a
				// malformed entry here means a broken proxy chain.
				return netip.Addr{}, fmt.Errorf("%w: X-Forwarded-For: %v", ErrBadRequest, err)
			}
			if !t.trusted(a) {
				return a, nil
			}
			client = a
		}
	}
	return client, nil
}

// parseHop parses one forwarding hop: an address, optionally with a port
// ("192.0.2.1:443", "[2001:db8::1]:443") or in brackets, as proxies write
// them.
func parseHop(s string) (netip.Addr, error) {
	if a, err := ParseAddr(s); err == nil {
		return a, nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), nil
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		return ParseAddr(s[1 : len(s)-1])
	}
	_, err := ParseAddr(s)
	return netip.Addr{}, err
}

// guardProxy guards /authz. Without open queries the proxy must send a
// query key, and only in X-Api-Key: the Authorization header of a
// forward-auth request is the client's own, copied from the request
// being judged.
func (a *Auth) guardProxy(h echo.HandlerFunc) echo.HandlerFunc {
	if a.OpenQueries() {
		return h
	}
	return func(c echo.Context) error {
		key := strings.TrimSpace(c.Request().Header.Get("X-Api-Key"))
		if key == "" {
			return fmt.Errorf("%w: /authz needs a query key in X-Api-Key", ErrUnauthorized)
		}
		role, ok := a.Role(key)
		if !ok {
			return fmt.Errorf("%w: unknown api key", ErrForbidden)
		}
		if !allows(role, RoleQuery) {
			return fmt.Errorf("%w: a %s key may not do this; it needs query", ErrForbidden, role)
		}
		return h(c)
	}
}

var deniedBody = []byte(`{"error":"access denied by ip reputation"}` + "\n")

// authz answers forward-auth requests (any method): 200 to allow, 403 to
// block, with the judgement in X-Rampart-* headers. A challenge is allowed
// (200, with X-Rampart-Action: challenge for the proxy to act on) unless
// http.authz_challenge is "deny".
func (s *Server) authz(c echo.Context) error {
	addr, err := s.trust.clientAddr(c.Request())
	if err != nil {
		return err
	}
	j := s.svc.Judge(addr)
	s.metrics.verdict(j.Verdict)
	w := c.Response()
	h := w.Header()
	h[HeaderScore] = []string{formatScore(j.Score)}
	h[HeaderVerdict] = headerValue(j.Verdict)
	h[HeaderAction] = headerValue(j.Action)
	h[HeaderClientIP] = []string{addr.String()}
	h["Cache-Control"] = noStore
	if j.Action == reputation.ActionBlock || (j.Action == reputation.ActionChallenge && s.deny) {
		h["Content-Type"] = jsonContentType
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write(deniedBody)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

var noStore = []string{"no-store"}

// fixedValues are the header values of the known verdicts and actions,
// built once: length equals capacity, so they are never written through.
var fixedValues = func() map[string][]string {
	m := map[string][]string{}
	for _, v := range []string{
		reputation.VerdictDangerous, reputation.VerdictSuspicious, reputation.VerdictTriage, reputation.VerdictNone,
		reputation.ActionAllow, reputation.ActionChallenge, reputation.ActionBlock,
	} {
		m[v] = []string{v}
	}
	return m
}()

func headerValue(v string) []string {
	if fv, ok := fixedValues[v]; ok {
		return fv
	}
	return []string{v}
}

// formatScore writes a score with at most two decimals.
func formatScore(v float64) string {
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}
