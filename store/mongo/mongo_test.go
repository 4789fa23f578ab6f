package mongo

import (
	"context"
	"testing"

	"github.com/rampart-ip/rampart/store"
	"github.com/rampart-ip/rampart/store/storetest"
)

func TestConformance(t *testing.T) {
	f := startFerret(t)
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		database := f.database()
		return func(ctx context.Context) (store.Store, error) {
			return Open(ctx, f.uri, database, discard())
		}
	})
}
