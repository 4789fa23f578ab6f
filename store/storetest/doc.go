// Package storetest is the conformance suite for store.Store backends.
//
// A backend's test calls Run with a Backend that hands each test a fresh,
// empty database:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Opener {
//			path := filepath.Join(t.TempDir(), "rampart.db")
//			return func(ctx context.Context) (store.Store, error) {
//				return sqlite.Open(ctx, path, slog.New(slog.DiscardHandler))
//			}
//		})
//	}
//
// The suite checks the contract written on store.Store: source state,
// Apply's episode semantics, listing and episode streaming, purging, the
// key/value space, cancellation, durability across Close and reopen, and
// the sync lease and generation shared by several handles on one database.
// Its data sets are small (a few thousand prefixes at most) so that it runs
// quickly against FerretDB as well; throughput belongs in each backend's
// benchmarks.
package storetest
