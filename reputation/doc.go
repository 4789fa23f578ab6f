// Package reputation is Rampart's hot path: it answers "how dangerous is
// this address, and why" from memory, in well under a microsecond on a
// cached answer.
//
// The pieces, in the order a query meets them:
//
//   - Index (Build) is an immutable snapshot of every current listing and
//     every ended episode within retention, IPv4 and IPv6, host addresses
//     and ranges. An address inside a listed range is listed: a lookup
//     returns the matches of the most specific listed prefix containing
//     the address and of every listed supernet. The index also holds the
//     neighbourhood (Context) features: open listings in the same /24 and
//     /16 (IPv6 /64 and /48), the nearest listed IPv4 host in the /16, and
//     listed addresses per ASN.
//   - Model (model.go) turns Evidence into a score, verdict and reasons.
//   - Service holds the current Index behind an atomic pointer. Swap puts
//     a new one in whole; readers never wait. Check builds the evidence
//     for an address and scores it; AppendJSON and Judge serve the same
//     answer from a sharded LRU of rendered JSON, tagged with the index
//     generation (so Swap invalidates it without a purge) and re-rendered
//     after a TTL (so decay shows). CheckAt answers as of a past moment,
//     History lists every match, Blocked iterates the prefixes that block.
//   - AppendAnswerJSON renders an Answer byte for byte as encoding/json
//     would, without reflection.
//
// Addresses are canonical before lookup: IPv4-mapped IPv6 addresses are
// answered as IPv4 and zones are dropped.
//
// Reserved addresses (private, loopback, link-local, CGNAT, documentation,
// benchmarking, multicast, unspecified, IPv6 ULA and the like) answer with
// score 100, "No action needed" and allow, with a description that names
// the block, unless a source lists them more specifically than the
// reserved block itself. The rule keeps both cases right: bogon lists
// (FireHOL level 1 lists all of 10.0.0.0/8 and 192.168.0.0/16) must never
// make an inline proxy block its own network, while a MISP event about a
// compromised internal host (10.1.2.3/32), or a feed that lists a
// documentation address, is deliberate evidence and is scored by the
// model. Blocked applies the same rule to the prefixes it yields.
package reputation
