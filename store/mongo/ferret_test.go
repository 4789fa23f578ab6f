package mongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// ferret is an embedded FerretDB server for one test, with its SQLite
// files in the test's temporary directory.
type ferret struct {
	uri string
	dbs atomic.Int64
}

// startFerret starts FerretDB on an ephemeral port and stops it, waiting
// for it to finish, when the test ends.
func startFerret(t *testing.T) *ferret {
	t.Helper()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Logger:    discard(),
		Handler:   "sqlite",
		SQLiteURL: "file:" + t.TempDir() + "/",
	})
	if err != nil {
		t.Fatalf("start ferretdb: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("ferretdb: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("ferretdb did not stop within 30s")
		}
	})
	// MongoDBURI waits for the listener that Run opens.
	return &ferret{uri: f.MongoDBURI()}
}

// database returns a new database name, so that tests sharing a server do
// not see each other's data.
func (f *ferret) database() string {
	return fmt.Sprintf("rampart%d", f.dbs.Add(1))
}

// open opens a store on database and closes it when the test ends.
func (f *ferret) open(t *testing.T, database string) *Store {
	t.Helper()
	s, err := Open(t.Context(), f.uri, database, discard())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
