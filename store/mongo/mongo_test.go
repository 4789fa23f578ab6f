package mongo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

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

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func episodesOf(t *testing.T, s *Store) []store.Episode {
	t.Helper()
	var out []store.Episode
	if err := s.Episodes(t.Context(), time.Time{}, func(e store.Episode) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func listedBy(t *testing.T, s *Store, source string) []netip.Prefix {
	t.Helper()
	ps, err := s.SourceListings(t.Context(), source)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(ps, netip.Prefix.Compare)
	return ps
}

// TestApplyRepairs checks the ordering that stands in for transactions:
// after a failure between Apply's steps, applying the same change again
// reaches the state a complete Apply would have.
func TestApplyRepairs(t *testing.T) {
	f := startFerret(t)
	gone, kept, fresh := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("198.51.100.0/24")
	change := store.Change{Removed: []netip.Prefix{gone}, Added: []netip.Prefix{fresh}}
	tests := []struct {
		name  string
		crash func(t *testing.T, s *Store)
	}{
		{"a failure after recording the episode", func(t *testing.T, s *Store) {
			ep := historyDoc{ID: historyID("feed", gone.String(), t0), Source: "feed", Prefix: gone.String(),
				Started: t0, Ended: t0.Add(time.Hour)}
			if err := insertNew(t.Context(), s.history, []historyDoc{ep}); err != nil {
				t.Fatal(err)
			}
		}},
		{"a failure after deleting the listing", func(t *testing.T, s *Store) {
			if err := s.Apply(t.Context(), "feed", store.Change{Removed: change.Removed}, t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}},
		{"a change that completed", func(t *testing.T, s *Store) {
			if err := s.Apply(t.Context(), "feed", change, t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name+" is completed by applying the change again", func(t *testing.T) {
			s := f.open(t, f.database())
			if err := s.Apply(t.Context(), "feed", store.Change{Added: []netip.Prefix{gone, kept}}, t0); err != nil {
				t.Fatal(err)
			}
			tc.crash(t, s)
			// The repeat runs later than the interrupted attempt.
			if err := s.Apply(t.Context(), "feed", change, t0.Add(2*time.Hour)); err != nil {
				t.Fatal(err)
			}
			if got, want := listedBy(t, s, "feed"), []netip.Prefix{fresh, kept}; !slices.Equal(got, want) {
				t.Fatalf("listings: got %v, want %v", got, want)
			}
			eps := episodesOf(t, s)
			if len(eps) != 1 || eps[0].Prefix != gone || !eps[0].Started.Equal(t0) || !eps[0].Ended.Equal(t0.Add(time.Hour)) {
				t.Fatalf("episodes: got %v, want one for %v from %v to %v", eps, gone, t0, t0.Add(time.Hour))
			}
		})
	}
}

// TestDocuments checks the collection layout that operators and other
// MongoDB clients see.
func TestDocuments(t *testing.T) {
	f := startFerret(t)
	s := f.open(t, f.database())
	src := store.Source{Name: "Phishing 42", Kind: store.KindMISPEvent, Meta: map[string]string{"threat_level": "1"}}
	if err := s.PutSource(t.Context(), src); err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix("2001:db8::1/128")
	if err := s.Apply(t.Context(), src.Name, store.Change{Added: []netip.Prefix{p}}, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(t.Context(), src.Name, store.Change{Removed: []netip.Prefix{p}}, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(t.Context(), src.Name, store.Change{Added: []netip.Prefix{p}}, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		coll *mongo.Collection
		want bson.M
	}{
		{"a source is a feeds document with its kind", s.feeds,
			bson.M{"_id": "Phishing 42", "kind": "misp-event", "meta": bson.M{"threat_level": "1"}}},
		{"a listing is an indicators document keyed by source and prefix", s.indicators,
			bson.M{"_id": "Phishing 42|2001:db8::1/128", "source": "Phishing 42", "prefix": "2001:db8::1/128",
				"since": bson.DateTime(t0.Add(2 * time.Hour).UnixMilli())}},
		{"an episode is a history document keyed by source, prefix and start", s.history,
			bson.M{"_id": "Phishing 42|2001:db8::1/128|" + fmt.Sprint(t0.UnixMilli()), "source": "Phishing 42",
				"prefix": "2001:db8::1/128", "started": bson.DateTime(t0.UnixMilli()),
				"ended": bson.DateTime(t0.Add(time.Hour).UnixMilli())}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var docs []bson.M
			cur, err := tc.coll.Find(t.Context(), bson.D{})
			if err != nil {
				t.Fatal(err)
			}
			if err := cur.All(t.Context(), &docs); err != nil {
				t.Fatal(err)
			}
			if len(docs) != 1 {
				t.Fatalf("documents: got %d, want 1: %v", len(docs), docs)
			}
			for k, want := range tc.want {
				if got := fmt.Sprint(docs[0][k]); got != fmt.Sprint(want) {
					t.Errorf("field %s: got %s, want %s", k, got, fmt.Sprint(want))
				}
			}
		})
	}
}

func TestOpen(t *testing.T) {
	t.Run("an empty database name is refused", func(t *testing.T) {
		if _, err := Open(t.Context(), "mongodb://127.0.0.1:1/", "", discard()); err == nil {
			t.Fatal("open: got no error")
		}
	})
	t.Run("a malformed URI is refused", func(t *testing.T) {
		if _, err := Open(t.Context(), "mongo:/nope", "rampart", discard()); err == nil {
			t.Fatal("open: got no error")
		}
	})
	t.Run("a malformed URI's password stays out of the error", func(t *testing.T) {
		for _, uri := range []string{
			"mongodb://rampart:s3cr3t@db.example:27017:9/",
			"mongodb://rampart:s3cr3t:x@db.example/",
			"mongodb://rampart:s3cr3t@@db.example/",
			"mongodb://rampart:s3cr3t/x@db.example/",
		} {
			_, err := Open(t.Context(), uri, "rampart", discard())
			if err == nil {
				t.Fatalf("open %s: got no error", uri)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("error leaks the password: %v", err)
			}
		}
	})
	t.Run("a server that does not answer fails when the context ends", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err = Open(ctx, "mongodb://"+addr+"/?serverSelectionTimeoutMS=60000", "rampart", discard())
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("open: got %v, want context.DeadlineExceeded", err)
		}
	})
}
