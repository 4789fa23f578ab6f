package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/store"
)

// Opener opens the store under test. Every call made for one test opens the
// same database, empty at the first call, so that what one store wrote
// before Close is visible to the next. The suite closes every store it
// opens.
type Opener func(ctx context.Context) (store.Store, error)

// Backend returns an Opener for a fresh database dedicated to the test t.
// Resources it creates for the database should be released with t.Cleanup.
type Backend func(t *testing.T) Opener

// Run runs the conformance suite against the backend as subtests of t.
func Run(t *testing.T, backend Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"a missing source is not found", testMissingSource},
		{"a stored source reads back with every field", testSourceRoundTrip},
		{"putting a source again replaces its state", testSourceReplace},
		{"sources are listed in name order", testSourcesOrdered},
		{"applying changes follows episode semantics", testApplySemantics},
		{"apply does not create source state", testApplyWithoutSource},
		{"apply masks prefixes", testApplyMasks},
		{"apply rejects an invalid prefix and writes nothing", testApplyInvalid},
		{"sources do not share listings", testSourcesIsolated},
		{"listings stream every source with hosts and ranges of both families", testListings},
		{"listings stop at the callback's first error", testListingsStop},
		{"episodes are filtered by their end", testEpisodesSince},
		{"purging deletes only episodes that ended before the cut-off", testPurge},
		{"keys read back what was put", testKV},
		{"a cancelled context fails every call", testCancelled},
		{"data survives close and reopen", testReopen},
		{"a few thousand prefixes are added, removed and re-listed", testThousands},
		{"a lease is held by one holder at a time", testLeaseExclusive},
		{"an expired lease is taken over", testLeaseExpiry},
		{"a released lease is free at once", testLeaseRelease},
		{"holders racing for a lease do not share it", testLeaseRace},
		{"the sync generation counts up across handles", testGeneration},
		{"lease and generation calls check arguments and context", testLeaseErrors},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, backend(t))
		})
	}
}

// base is the suite's clock origin. Times are whole milliseconds because
// that is the precision the contract guarantees.
var base = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func at(hours int) time.Time { return base.Add(time.Duration(hours) * time.Hour) }

func openStore(t *testing.T, open Opener) store.Store {
	t.Helper()
	s, err := open(t.Context())
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

func pfx(t testing.TB, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatalf("parse prefix: %v", err)
	}
	return p
}

func pfxs(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = pfx(t, s)
	}
	return out
}

func apply(t *testing.T, s store.Store, source string, ch store.Change, now time.Time) {
	t.Helper()
	if err := s.Apply(t.Context(), source, ch, now); err != nil {
		t.Fatalf("apply to %q: %v", source, err)
	}
}

func sortPrefixes(ps []netip.Prefix) []netip.Prefix {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, netip.Prefix.Compare)
	return ps
}

func sourceListings(t *testing.T, s store.Store, source string) []netip.Prefix {
	t.Helper()
	ps, err := s.SourceListings(t.Context(), source)
	if err != nil {
		t.Fatalf("source listings of %q: %v", source, err)
	}
	return sortPrefixes(ps)
}

func wantSourceListings(t *testing.T, s store.Store, source string, want []netip.Prefix) {
	t.Helper()
	got := sourceListings(t, s, source)
	want = sortPrefixes(want)
	if !slices.Equal(got, want) {
		t.Fatalf("source listings of %q:\n got %v\nwant %v", source, got, want)
	}
}

func compareListing(a, b store.Listing) int {
	return cmp.Or(cmp.Compare(a.Source, b.Source), a.Prefix.Compare(b.Prefix), a.Since.Compare(b.Since))
}

func listings(t *testing.T, s store.Store) []store.Listing {
	t.Helper()
	var out []store.Listing
	if err := s.Listings(t.Context(), func(l store.Listing) error {
		out = append(out, l)
		return nil
	}); err != nil {
		t.Fatalf("listings: %v", err)
	}
	slices.SortFunc(out, compareListing)
	return out
}

func wantListings(t *testing.T, s store.Store, want []store.Listing) {
	t.Helper()
	got := listings(t, s)
	want = slices.Clone(want)
	slices.SortFunc(want, compareListing)
	if !slices.EqualFunc(got, want, func(a, b store.Listing) bool { return compareListing(a, b) == 0 }) {
		t.Fatalf("listings:\n got %v\nwant %v", got, want)
	}
}

func compareEpisode(a, b store.Episode) int {
	return cmp.Or(cmp.Compare(a.Source, b.Source), a.Prefix.Compare(b.Prefix),
		a.Started.Compare(b.Started), a.Ended.Compare(b.Ended))
}

func episodes(t *testing.T, s store.Store, since time.Time) []store.Episode {
	t.Helper()
	var out []store.Episode
	if err := s.Episodes(t.Context(), since, func(e store.Episode) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("episodes: %v", err)
	}
	slices.SortFunc(out, compareEpisode)
	return out
}

func wantEpisodes(t *testing.T, s store.Store, since time.Time, want []store.Episode) {
	t.Helper()
	got := episodes(t, s, since)
	want = slices.Clone(want)
	slices.SortFunc(want, compareEpisode)
	if !slices.EqualFunc(got, want, func(a, b store.Episode) bool { return compareEpisode(a, b) == 0 }) {
		t.Fatalf("episodes since %v:\n got %v\nwant %v", since, got, want)
	}
}

func sameSource(a, b store.Source) error {
	switch {
	case a.Name != b.Name, a.Kind != b.Kind, a.ETag != b.ETag, a.LastModified != b.LastModified,
		a.ContentHash != b.ContentHash, a.LastError != b.LastError, a.Entries != b.Entries:
		return fmt.Errorf("fields differ:\n got %+v\nwant %+v", a, b)
	case !a.LastAttempt.Equal(b.LastAttempt), !a.LastSuccess.Equal(b.LastSuccess):
		return fmt.Errorf("times differ:\n got %v, %v\nwant %v, %v", a.LastAttempt, a.LastSuccess, b.LastAttempt, b.LastSuccess)
	case len(a.Meta) != len(b.Meta):
		return fmt.Errorf("meta differs:\n got %v\nwant %v", a.Meta, b.Meta)
	}
	for k, v := range b.Meta {
		if got, ok := a.Meta[k]; !ok || got != v {
			return fmt.Errorf("meta differs:\n got %v\nwant %v", a.Meta, b.Meta)
		}
	}
	return nil
}

func testMissingSource(t *testing.T, open Opener) {
	s := openStore(t, open)
	_, err := s.Source(t.Context(), "nope")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("source of a missing name: got %v, want store.ErrNotFound", err)
	}
	all, err := s.Sources(t.Context())
	if err != nil {
		t.Fatalf("sources: %v", err)
	}
	if len(all) != 0 {
		t.Fatalf("sources of an empty store: got %v, want none", all)
	}
}

func fullSource() store.Source {
	return store.Source{
		Name:         "blocklist_de",
		Kind:         store.KindFeed,
		ETag:         `W/"5f3a-1"`,
		LastModified: "Fri, 20 Nov 2026 09:00:00 GMT",
		ContentHash:  "sha256:0f1e2d",
		LastAttempt:  at(2),
		LastSuccess:  at(1).Add(123 * time.Millisecond),
		LastError:    "fetch: connection refused",
		Entries:      41234,
		Meta:         map[string]string{"threat_level": "2", "tags": "tlp:white,botnet"},
	}
}

func testSourceRoundTrip(t *testing.T, open Opener) {
	tests := []struct {
		name string
		src  store.Source
	}{
		{"every field set", fullSource()},
		{"only a name", store.Source{Name: "bare"}},
		{"a MISP event with meta", store.Source{Name: "Phishing campaign 42", Kind: store.KindMISPEvent,
			Meta: map[string]string{"event_uuid": "5e3c1a52-7c1c-4f5a-9d51-1b7a3f0c9e11", "threat_level": "1"}}},
	}
	s := openStore(t, open)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.PutSource(t.Context(), tc.src); err != nil {
				t.Fatalf("put source: %v", err)
			}
			got, err := s.Source(t.Context(), tc.src.Name)
			if err != nil {
				t.Fatalf("source: %v", err)
			}
			if err := sameSource(got, tc.src); err != nil {
				t.Fatal(err)
			}
			if !tc.src.LastAttempt.IsZero() && got.LastAttempt.Location() != time.UTC {
				t.Errorf("last attempt location: got %v, want UTC", got.LastAttempt.Location())
			}
			if tc.src.LastSuccess.IsZero() && !got.LastSuccess.IsZero() {
				t.Errorf("zero last success reads back as %v", got.LastSuccess)
			}
		})
	}
}

func testSourceReplace(t *testing.T, open Opener) {
	s := openStore(t, open)
	first := fullSource()
	if err := s.PutSource(t.Context(), first); err != nil {
		t.Fatalf("put source: %v", err)
	}
	second := store.Source{Name: first.Name, Kind: store.KindFeed, LastAttempt: at(5), LastSuccess: at(5), Entries: 7}
	if err := s.PutSource(t.Context(), second); err != nil {
		t.Fatalf("put source again: %v", err)
	}
	got, err := s.Source(t.Context(), first.Name)
	if err != nil {
		t.Fatalf("source: %v", err)
	}
	if err := sameSource(got, second); err != nil {
		t.Fatal(err)
	}
	all, err := s.Sources(t.Context())
	if err != nil {
		t.Fatalf("sources: %v", err)
	}
	if len(all) != 1 {
		t.Fatalf("sources after replacing one: got %d, want 1", len(all))
	}
}

func testSourcesOrdered(t *testing.T, open Opener) {
	s := openStore(t, open)
	names := []string{"ipsum", "Zeta event", "blocklist_de", "firehol_level1", "alienvault"}
	for i, n := range names {
		if err := s.PutSource(t.Context(), store.Source{Name: n, Kind: store.KindFeed, Entries: i}); err != nil {
			t.Fatalf("put source %q: %v", n, err)
		}
	}
	all, err := s.Sources(t.Context())
	if err != nil {
		t.Fatalf("sources: %v", err)
	}
	var got []string
	for _, src := range all {
		got = append(got, src.Name)
		if want := slices.Index(names, src.Name); src.Entries != want {
			t.Errorf("source %q entries: got %d, want %d", src.Name, src.Entries, want)
		}
	}
	want := slices.Sorted(slices.Values(names))
	if !slices.Equal(got, want) {
		t.Fatalf("source names:\n got %v\nwant %v", got, want)
	}
}

func listing(source string, p netip.Prefix, since time.Time) store.Listing {
	return store.Listing{Source: source, Prefix: p, Since: since}
}

func episode(source string, p netip.Prefix, started, ended time.Time) store.Episode {
	return store.Episode{Source: source, Prefix: p, Started: started, Ended: ended}
}
