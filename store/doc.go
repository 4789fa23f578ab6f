// Package store is Rampart's persistence: feed and MISP-event sources with
// their sync state, current listings (open episodes) and history (ended
// episodes), a small key/value space for cursors, and the lease and sync
// generation through which several replicas on one database agree which of
// them runs the syncs and when the others reload.
//
// The Store interface is implemented by store/sqlite (the embedded default,
// one file in data_dir) and store/mongo (MongoDB, for several replicas).
// Both pass the conformance suite in store/storetest. Nothing on the query
// hot path reads the store: the reputation index is built from it at
// startup and after each sync.
package store
