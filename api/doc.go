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
