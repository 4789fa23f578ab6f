// Package api is Rampart's HTTP transport: the Echo router that answers
// reverse proxies, WAFs, scripts and analysts.
//
// It parses and validates every request into domain types (netip.Addr,
// time.Time) and calls small interfaces that the domain packages satisfy
// (Checker is reputation.Service); echo.Context and wire structs never leave
// this package. Errors are mapped to HTTP status codes in one place, the
// Echo HTTPErrorHandler in errors.go, and every error answer is JSON
// {"error": "..."} with a 4xx or 5xx status, never 200.
//
// Routes:
//
//	GET  /ip?ip=ADDRESS[&at=RFC3339]    one answer (the /ip contract in ARCHITECTURE.md)
//	POST /ip {"ips": [...]}             many answers, in order, per-entry errors
//	ANY  /authz                         forward-auth for nginx auth_request, Traefik ForwardAuth, Caddy forward_auth
//	GET  /healthz, GET /readyz          liveness and readiness
//	GET  /metrics                       Prometheus metrics
//	GET  /api/v1/feeds                  feed status, credentials redacted
//	POST /api/v1/feeds/:name/sync       sync one feed now (admin)
//	GET  /api/v1/jobs                   scheduled jobs
//	GET  /api/v1/ip/:address/history    every listing and ended episode containing the address
//
// Access: with auth.open_queries (the default) /ip, /authz and the
// read-only /api/v1 endpoints need no key; otherwise they need a query or
// admin key, as "Authorization: Bearer KEY" or "X-Api-Key: KEY" (for
// /authz only X-Api-Key, because a forward-auth request carries the
// client's own Authorization header). Feed sync always needs an admin key.
// /healthz, /readyz and /metrics are open.
//
// Forward-auth judges the TCP peer, or, when the peer is in
// http.trusted_proxies, the right-most X-Forwarded-For (else X-Real-IP)
// address that is not itself trusted. It answers 200 to allow and 403 to
// block; a challenge is answered 200 with X-Rampart-Action: challenge
// (the proxy decides) unless http.authz_challenge is "deny".
//
// Other transports on the same router (CrowdSec-compatible endpoints,
// blocklist export) mount themselves through Options.Extra and check API
// keys with Auth.Role.
//
// Use:
//
//	srv, err := api.New(api.Options{HTTP: cfg.HTTP, Auth: cfg.Auth, Service: svc, Logger: logger})
//	if err != nil { ... }
//	ln, _ := net.Listen("tcp", cfg.HTTP.Listen)
//	err = srv.Run(ctx, ln) // returns after a graceful, bounded shutdown once ctx is done
package api
