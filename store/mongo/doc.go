// Package mongo is Rampart's MongoDB store, for deployments where several
// replicas share one database. It uses the official driver
// (go.mongodb.org/mongo-driver/v2) and these collections:
//
//   - feeds: the state of every source, feeds and MISP events alike (its
//     kind field tells them apart), keyed by name;
//   - indicators: current listings, _id "source|prefix";
//   - history: ended episodes, _id "source|prefix|started" (Unix ms);
//   - kv: small values such as MISP pull cursors.
//
// MongoDB-compatible servers without multi-document transactions (FerretDB,
// which the tests run against) must work too, so Apply uses none. It writes
// in an order that a repeat of the same change repairs: history records
// for the removed prefixes first (with deterministic ids, so a repeat adds
// no duplicates), then their deletion from indicators, then the inserts of
// the added prefixes, whose duplicates are ignored. Writes go out in small
// batches and history is expired by PurgeEpisodes, not by TTL indexes,
// because FerretDB supports neither large update batches nor TTL indexes.
//
//	s, err := mongo.Open(ctx, "mongodb://db:27017", "rampart", logger)
//	if err != nil { ... }
//	defer s.Close()
package mongo
