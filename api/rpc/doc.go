// Package rpc is Rampart's gRPC transport: the rampart.v1.Reputation service
// (Check and CheckBatch, the same information as GET /ip), Envoy's external
// authorization service (envoy.service.auth.v3.Authorization), the standard
// gRPC health service and server reflection, all on one listener.
//
// The server parses and validates wire input into domain types and asks a
// reputation service; errors are mapped to gRPC status codes once, in a
// unary interceptor that also turns panics into INTERNAL errors.
//
//	srv, err := rpc.New(rpc.Options{GRPC: cfg.GRPC, Service: svc, Logger: logger})
//	...
//	err = srv.Run(ctx, listener) // returns after a graceful, bounded stop
package rpc
