package storetest

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/store"
)

func testApplySemantics(t *testing.T, open Opener) {
	s := openStore(t, open)
	const src = "blocklist_de"
	a, b, c, d, e := pfx(t, "192.0.2.1/32"), pfx(t, "198.51.100.0/24"), pfx(t, "2001:db8::1/128"),
		pfx(t, "2001:db8:1::/48"), pfx(t, "203.0.113.9/32")
	steps := []struct {
		name     string
		change   store.Change
		hour     int
		listings []store.Listing
		episodes []store.Episode
	}{
		{
			name:     "added prefixes open episodes at now",
			change:   store.Change{Added: []netip.Prefix{a, b, c}},
			hour:     0,
			listings: []store.Listing{listing(src, a, at(0)), listing(src, b, at(0)), listing(src, c, at(0))},
		},
		{
			name:     "added prefixes already listed keep their start",
			change:   store.Change{Added: []netip.Prefix{b, d}},
			hour:     1,
			listings: []store.Listing{listing(src, a, at(0)), listing(src, b, at(0)), listing(src, c, at(0)), listing(src, d, at(1))},
		},
		{
			name:     "removed prefixes end their episode at now and unlisted ones are ignored",
			change:   store.Change{Removed: []netip.Prefix{a, e}},
			hour:     2,
			listings: []store.Listing{listing(src, b, at(0)), listing(src, c, at(0)), listing(src, d, at(1))},
			episodes: []store.Episode{episode(src, a, at(0), at(2))},
		},
		{
			name:     "an empty change changes nothing",
			hour:     3,
			listings: []store.Listing{listing(src, b, at(0)), listing(src, c, at(0)), listing(src, d, at(1))},
			episodes: []store.Episode{episode(src, a, at(0), at(2))},
		},
		{
			name:     "re-listing opens a new episode and keeps the old one in history",
			change:   store.Change{Added: []netip.Prefix{a}},
			hour:     4,
			listings: []store.Listing{listing(src, a, at(4)), listing(src, b, at(0)), listing(src, c, at(0)), listing(src, d, at(1))},
			episodes: []store.Episode{episode(src, a, at(0), at(2))},
		},
		{
			name:     "removing the re-listed prefix records a second episode",
			change:   store.Change{Removed: []netip.Prefix{a, c}},
			hour:     5,
			listings: []store.Listing{listing(src, b, at(0)), listing(src, d, at(1))},
			episodes: []store.Episode{episode(src, a, at(0), at(2)), episode(src, a, at(4), at(5)), episode(src, c, at(0), at(5))},
		},
		{
			name:     "removing the same prefixes again is ignored",
			change:   store.Change{Removed: []netip.Prefix{a, c}},
			hour:     6,
			listings: []store.Listing{listing(src, b, at(0)), listing(src, d, at(1))},
			episodes: []store.Episode{episode(src, a, at(0), at(2)), episode(src, a, at(4), at(5)), episode(src, c, at(0), at(5))},
		},
		{
			name:     "a prefix both removed and added ends its episode and opens a new one",
			change:   store.Change{Removed: []netip.Prefix{b}, Added: []netip.Prefix{b}},
			hour:     7,
			listings: []store.Listing{listing(src, b, at(7)), listing(src, d, at(1))},
			episodes: []store.Episode{episode(src, a, at(0), at(2)), episode(src, a, at(4), at(5)),
				episode(src, b, at(0), at(7)), episode(src, c, at(0), at(5))},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			apply(t, s, src, st.change, at(st.hour))
			wantListings(t, s, st.listings)
			wantEpisodes(t, s, at(-1000), st.episodes)
			var want []netip.Prefix
			for _, l := range st.listings {
				want = append(want, l.Prefix)
			}
			wantSourceListings(t, s, src, want)
		})
	}
}

func testApplyWithoutSource(t *testing.T, open Opener) {
	s := openStore(t, open)
	apply(t, s, "only-listings", store.Change{Added: pfxs(t, "192.0.2.1/32")}, at(0))
	wantSourceListings(t, s, "only-listings", pfxs(t, "192.0.2.1/32"))
	if _, err := s.Source(t.Context(), "only-listings"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("source state after apply: got %v, want store.ErrNotFound", err)
	}
	all, err := s.Sources(t.Context())
	if err != nil {
		t.Fatalf("sources: %v", err)
	}
	if len(all) != 0 {
		t.Fatalf("sources after apply alone: got %v, want none", all)
	}
}

func testApplyMasks(t *testing.T, open Opener) {
	s := openStore(t, open)
	apply(t, s, "src", store.Change{Added: pfxs(t, "10.1.2.3/8", "2001:db8::77/32")}, at(0))
	wantSourceListings(t, s, "src", pfxs(t, "10.0.0.0/8", "2001:db8::/32"))
	// The unmasked form names the same listing.
	apply(t, s, "src", store.Change{Removed: pfxs(t, "10.9.9.9/8")}, at(1))
	wantSourceListings(t, s, "src", pfxs(t, "2001:db8::/32"))
	wantEpisodes(t, s, at(0), []store.Episode{episode("src", pfx(t, "10.0.0.0/8"), at(0), at(1))})
}

func testApplyInvalid(t *testing.T, open Opener) {
	tests := []struct {
		name   string
		change store.Change
	}{
		{"an invalid added prefix", store.Change{Added: []netip.Prefix{pfx(t, "192.0.2.1/32"), {}}}},
		{"an invalid removed prefix", store.Change{Added: pfxs(t, "192.0.2.2/32"), Removed: []netip.Prefix{{}}}},
	}
	s := openStore(t, open)
	apply(t, s, "src", store.Change{Added: pfxs(t, "198.51.100.7/32")}, at(0))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Apply(t.Context(), "src", tc.change, at(1)); err == nil {
				t.Fatal("apply: got no error")
			}
			wantSourceListings(t, s, "src", pfxs(t, "198.51.100.7/32"))
			wantEpisodes(t, s, at(-1), nil)
		})
	}
	t.Run("an empty source name", func(t *testing.T) {
		if err := s.Apply(t.Context(), "", store.Change{Added: pfxs(t, "192.0.2.3/32")}, at(1)); err == nil {
			t.Fatal("apply: got no error")
		}
		wantListings(t, s, []store.Listing{listing("src", pfx(t, "198.51.100.7/32"), at(0))})
	})
}

func testSourcesIsolated(t *testing.T, open Opener) {
	s := openStore(t, open)
	shared := pfx(t, "192.0.2.1/32")
	apply(t, s, "a", store.Change{Added: []netip.Prefix{shared}}, at(0))
	apply(t, s, "b", store.Change{Added: []netip.Prefix{shared}}, at(1))
	apply(t, s, "b", store.Change{Removed: []netip.Prefix{shared}}, at(2))
	wantSourceListings(t, s, "a", []netip.Prefix{shared})
	wantSourceListings(t, s, "b", nil)
	wantListings(t, s, []store.Listing{listing("a", shared, at(0))})
	wantEpisodes(t, s, at(0), []store.Episode{episode("b", shared, at(1), at(2))})
	if got := sourceListings(t, s, "never-seen"); len(got) != 0 {
		t.Fatalf("listings of an unknown source: got %v, want none", got)
	}
}

func testListings(t *testing.T, open Opener) {
	s := openStore(t, open)
	bySource := map[string][]string{
		"blocklist_de":   {"192.0.2.1/32", "192.0.2.2/32", "2001:db8::1/128"},
		"firehol_level1": {"10.0.0.0/8", "198.51.100.0/24", "2001:db8:1::/48", "::/0", "0.0.0.0/0"},
		"Phishing 42":    {"203.0.113.99/32", "2001:db8::1/128", "fe80::/10", "::ffff:192.0.2.1/128"},
	}
	var want []store.Listing
	hour := 0
	for src, ss := range bySource {
		hour++
		apply(t, s, src, store.Change{Added: pfxs(t, ss...)}, at(hour))
		for _, p := range pfxs(t, ss...) {
			want = append(want, store.Listing{Source: src, Prefix: p, Since: at(hour)})
		}
	}
	wantListings(t, s, want)
	for src, ss := range bySource {
		wantSourceListings(t, s, src, pfxs(t, ss...))
	}
}

func testListingsStop(t *testing.T, open Opener) {
	s := openStore(t, open)
	apply(t, s, "src", store.Change{Added: pfxs(t, "192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32")}, at(0))
	apply(t, s, "src", store.Change{Removed: pfxs(t, "192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32")}, at(1))
	apply(t, s, "src", store.Change{Added: pfxs(t, "192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32")}, at(2))
	stop := errors.New("stop")
	calls := 0
	err := s.Listings(t.Context(), func(store.Listing) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("listings: got error %v after %d calls, want the callback's error after 1", err, calls)
	}
	calls = 0
	err = s.Episodes(t.Context(), at(0), func(store.Episode) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("episodes: got error %v after %d calls, want the callback's error after 1", err, calls)
	}
}

// history writes one episode per hour for each prefix: prefix i is listed
// at hour i and removed at hour i+1.
func history(t *testing.T, s store.Store, ps []netip.Prefix) []store.Episode {
	t.Helper()
	var eps []store.Episode
	for i, p := range ps {
		apply(t, s, "src", store.Change{Added: []netip.Prefix{p}}, at(i))
		apply(t, s, "src", store.Change{Removed: []netip.Prefix{p}}, at(i+1))
		eps = append(eps, store.Episode{Source: "src", Prefix: p, Started: at(i), Ended: at(i + 1)})
	}
	return eps
}

func testEpisodesSince(t *testing.T, open Opener) {
	s := openStore(t, open)
	eps := history(t, s, pfxs(t, "192.0.2.1/32", "2001:db8::/32", "198.51.100.0/24", "2001:db8::5/128"))
	tests := []struct {
		name  string
		since time.Time
		want  []store.Episode
	}{
		{"since before every end returns all", at(-5), eps},
		{"since equal to an end includes that episode", at(2), eps[1:]},
		{"since between ends returns the later ones", at(2).Add(time.Millisecond), eps[2:]},
		{"since after every end returns none", at(10), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantEpisodes(t, s, tc.since, tc.want)
		})
	}
}

func testPurge(t *testing.T, open Opener) {
	s := openStore(t, open)
	eps := history(t, s, pfxs(t, "192.0.2.1/32", "2001:db8::/32", "198.51.100.0/24", "2001:db8::5/128"))
	apply(t, s, "src", store.Change{Added: pfxs(t, "203.0.113.1/32")}, at(0))
	steps := []struct {
		name   string
		before int
		n      int64
		want   []store.Episode
	}{
		{"a cut-off before every end deletes nothing", 0, 0, eps},
		{"the cut-off itself is kept", 2, 1, eps[1:]},
		{"a later cut-off deletes the older ones", 4, 2, eps[3:]},
		{"purging again deletes nothing more", 4, 0, eps[3:]},
		{"a cut-off after every end deletes the rest", 100, 1, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			n, err := s.PurgeEpisodes(t.Context(), at(st.before))
			if err != nil {
				t.Fatalf("purge: %v", err)
			}
			if n != st.n {
				t.Errorf("purged: got %d, want %d", n, st.n)
			}
			wantEpisodes(t, s, at(-100), st.want)
		})
	}
	// Purging history never touches current listings.
	wantSourceListings(t, s, "src", pfxs(t, "203.0.113.1/32"))
}

func testKV(t *testing.T, open Opener) {
	s := openStore(t, open)
	if _, err := s.Get(t.Context(), "misp.cursor"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get of a missing key: got %v, want store.ErrNotFound", err)
	}
	steps := []struct {
		name, key, value string
	}{
		{"a new key", "misp.cursor", "1732096800"},
		{"an overwritten key", "misp.cursor", "1732100400"},
		{"an empty value", "sync.generation", ""},
		{"a key with odd characters", "feed|a b/c.$d", "ünïcödé"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := s.Put(t.Context(), st.key, st.value); err != nil {
				t.Fatalf("put: %v", err)
			}
			got, err := s.Get(t.Context(), st.key)
			if err != nil || got != st.value {
				t.Fatalf("get: got %q, %v; want %q", got, err, st.value)
			}
		})
	}
}
