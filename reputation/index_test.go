package reputation

import (
	"bufio"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/internal/shared"
	"github.com/rampart-ip/rampart/store"
)

func testSources() []SourceInfo {
	return []SourceInfo{
		{Name: "alpha", Kind: store.KindFeed, Provider: "a", Category: "bruteforce", Weight: 0.9, ConfirmedAt: t0.Add(-time.Hour)},
		{Name: "beta", Kind: store.KindFeed, Provider: "b", Category: "scanner", Weight: 0.9, ConfirmedAt: t0.Add(-time.Hour)},
		{Name: "gamma", Kind: store.KindFeed, Provider: "c", Category: "botnet", Weight: 0.9, ConfirmedAt: t0.Add(-time.Hour)},
	}
}

func listing(t testing.TB, src, p string, since time.Time) store.Listing {
	return store.Listing{Source: src, Prefix: mustPrefix(t, p), Since: since}
}

func episode(t testing.TB, src, p string, start, end time.Time) store.Episode {
	return store.Episode{Source: src, Prefix: mustPrefix(t, p), Started: start, Ended: end}
}

// matchesOf returns every match of addr, bogon-list entries included.
func matchesOf(idx *Index, addr netip.Addr) []Match {
	ms, _ := idx.appendMatches(nil, addr, true)
	return ms
}

// matchSet renders matches as "source prefix" strings, sorted.
func matchSet(ms []Match) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Source.Name+" "+m.Prefix.String())
	}
	slices.Sort(out)
	return out
}

func TestIndexLookup(t *testing.T) {
	day := 24 * time.Hour
	d := Data{
		Sources: testSources(),
		Listings: []store.Listing{
			listing(t, "alpha", "198.51.100.7/32", t0.Add(-day)),
			listing(t, "alpha", "100.0.0.0/8", t0.Add(-day)),
			listing(t, "beta", "100.20.0.0/16", t0.Add(-day)),
			listing(t, "gamma", "100.20.30.0/24", t0.Add(-day)),
			listing(t, "alpha", "100.20.30.40/32", t0.Add(-day)),
			listing(t, "beta", "2001:db8:1::/48", t0.Add(-day)),
			listing(t, "alpha", "2001:db8:1:2::5/128", t0.Add(-day)),
			listing(t, "gamma", "::ffff:192.0.2.9/128", t0.Add(-day)),
			listing(t, "beta", "203.0.113.99/24", t0.Add(-day)), // unmasked on purpose
		},
		Episodes: []store.Episode{
			episode(t, "beta", "198.51.100.7/32", t0.Add(-3*day), t0.Add(-2*day)),
		},
	}
	idx := Build(d, BuildOptions{Now: func() time.Time { return t0 }})
	tests := []struct {
		name, addr string
		want       []string
	}{
		{"an exact host address matches its listing and its past episode", "198.51.100.7",
			[]string{"alpha 198.51.100.7/32", "beta 198.51.100.7/32"}},
		{"an unlisted neighbour of a host matches nothing", "198.51.100.8", nil},
		{"an address inside a /8 is listed by the /8", "100.1.2.3", []string{"alpha 100.0.0.0/8"}},
		{"an address inside nested ranges matches every supernet", "100.20.30.1",
			[]string{"alpha 100.0.0.0/8", "beta 100.20.0.0/16", "gamma 100.20.30.0/24"}},
		{"a listed host inside nested ranges matches itself and every supernet", "100.20.30.40",
			[]string{"alpha 100.0.0.0/8", "alpha 100.20.30.40/32", "beta 100.20.0.0/16", "gamma 100.20.30.0/24"}},
		{"an address in the /16 but outside the /24 skips the /24", "100.20.31.1",
			[]string{"alpha 100.0.0.0/8", "beta 100.20.0.0/16"}},
		{"an IPv6 address inside a /48 is listed", "2001:db8:1:ffff::1", []string{"beta 2001:db8:1::/48"}},
		{"an IPv6 host inside a /48 matches both", "2001:db8:1:2::5",
			[]string{"alpha 2001:db8:1:2::5/128", "beta 2001:db8:1::/48"}},
		{"an IPv6 address outside the /48 matches nothing", "2001:db8:2::1", nil},
		{"an IPv4-mapped listing is stored as IPv4", "192.0.2.9", []string{"gamma 192.0.2.9/32"}},
		{"an unmasked listed range is masked", "203.0.113.1", []string{"beta 203.0.113.0/24"}},
		{"an IPv4 address never matches IPv6 space", "0.0.0.1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := matchSet(matchesOf(idx, mustAddr(t, tt.addr)))
			if !slices.Equal(got, tt.want) {
				t.Errorf("matches of %s = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
	if got, want := idx.Len(), 9; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
}

func TestIndexMatchFields(t *testing.T) {
	start, end := t0.Add(-72*time.Hour), t0.Add(-48*time.Hour)
	d := Data{
		Sources:  testSources(),
		Listings: []store.Listing{listing(t, "alpha", "192.0.2.1/32", t0.Add(-24*time.Hour))},
		Episodes: []store.Episode{episode(t, "beta", "192.0.2.1/32", start, end)},
	}
	idx := Build(d, BuildOptions{Now: func() time.Time { return t0 }})
	ms := matchesOf(idx, mustAddr(t, "192.0.2.1"))
	if len(ms) != 2 {
		t.Fatalf("got %d matches, want 2", len(ms))
	}
	for _, m := range ms {
		switch m.Source.Name {
		case "alpha":
			if !m.Since.Equal(t0.Add(-24*time.Hour)) || !m.Ended.IsZero() || !m.LastSeen.Equal(t0.Add(-time.Hour)) {
				t.Errorf("open listing = %+v; want since -24h, not ended, last seen at the source's confirmation", m)
			}
			if !m.Active(t0) {
				t.Error("open listing is not active now")
			}
		case "beta":
			if !m.Since.Equal(start) || !m.Ended.Equal(end) || !m.LastSeen.Equal(end) {
				t.Errorf("episode = %+v; want since, ended and last seen from the episode", m)
			}
			if m.Active(t0) || !m.Active(end.Add(-time.Minute)) {
				t.Error("episode activity is wrong")
			}
		}
	}
}

func TestBuildSkipsAndCounts(t *testing.T) {
	d := Data{
		Sources: testSources(),
		Listings: []store.Listing{
			{Source: "alpha", Prefix: netip.Prefix{}, Since: t0},                          // invalid prefix
			{Source: "alpha", Prefix: mustPrefix(t, "192.0.2.1/32")},                      // zero time
			listing(t, "nobody", "192.0.2.2/32", t0.Add(-time.Hour)),                      // unknown source
			listing(t, "alpha", "192.0.2.3/32", t0.Add(-time.Hour)),                       // fine
			listing(t, "alpha", "192.0.2.3/32", time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)), // out of range
		},
		Episodes: []store.Episode{
			episode(t, "alpha", "192.0.2.4/32", t0.Add(-time.Hour), t0.Add(-2*time.Hour)),           // ends before it starts
			episode(t, "alpha", "192.0.2.5/32", t0.Add(-30*24*time.Hour), t0.Add(-20*24*time.Hour)), // expired
			episode(t, "alpha", "192.0.2.6/32", t0.Add(-3*time.Hour), t0.Add(-2*time.Hour)),         // fine
		},
	}
	idx := Build(d, BuildOptions{Retention: 7 * 24 * time.Hour, Now: func() time.Time { return t0 }})
	want := BuildStats{Listings: 5, Episodes: 3, Expired: 1, Skipped: 4, UnknownSources: 1}
	if got := idx.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	if got := idx.Len(); got != 3 {
		t.Errorf("Len() = %d, want 3 (192.0.2.2, .3, .6)", got)
	}
	if ms := matchesOf(idx, mustAddr(t, "192.0.2.2")); len(ms) != 1 || ms[0].Source.Name != "nobody" {
		t.Errorf("a listing of an unknown source is kept under its name, got %v", matchSet(ms))
	}
}

func TestBuildDoesNotKeepCallerSlices(t *testing.T) {
	d := Data{Sources: testSources(), Listings: []store.Listing{listing(t, "alpha", "192.0.2.1/32", t0)}}
	idx := Build(d, BuildOptions{})
	d.Sources[0].Name = "changed"
	ms := matchesOf(idx, mustAddr(t, "192.0.2.1"))
	if len(ms) != 1 || ms[0].Source.Name != "alpha" {
		t.Errorf("the index shares the caller's sources: %v", matchSet(ms))
	}
}

// TestIndexAgreesWithLinearScan checks lookups over a synthetic data set
// against the obvious definition: every listing whose prefix contains
// the address.
func TestIndexAgreesWithLinearScan(t *testing.T) {
	d := synthData(20000, 300, 5, 7)
	idx := Build(d, BuildOptions{Now: func() time.Time { return t0 }})
	var probes []netip.Addr
	for i, l := range d.Listings {
		if i%40 == 0 {
			probes = append(probes, l.Prefix.Addr(), addr4(v4(l.Prefix.Addr())+1))
		}
	}
	for _, e := range d.Episodes[:100] {
		probes = append(probes, e.Prefix.Addr())
	}
	for _, a := range probes {
		var want []string
		for _, l := range d.Listings {
			if l.Prefix.Masked().Contains(a) {
				want = append(want, l.Source+" "+l.Prefix.Masked().String())
			}
		}
		for _, e := range d.Episodes {
			if e.Prefix.Contains(a) {
				want = append(want, e.Source+" "+e.Prefix.String())
			}
		}
		slices.Sort(want)
		if got := matchSet(matchesOf(idx, a)); !slices.Equal(got, want) {
			t.Fatalf("matches of %s = %q, want %q", a, got, want)
		}
	}
}

// readList reads a FireHOL ipset or netset file: one address or range a
// line, # comments.
func readList(t testing.TB, src string, elem ...string) []store.Listing {
	t.Helper()
	f, err := os.Open(shared.Data(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []store.Listing
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		p, err := netip.ParsePrefix(line)
		if err != nil {
			a, err := netip.ParseAddr(line)
			if err != nil {
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, store.Listing{Source: src, Prefix: p, Since: t0.Add(-48 * time.Hour)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestIndexOverRealFeeds(t *testing.T) {
	bl := readList(t, "blocklist_de", "feeds", "firehol", "blocklist_de.ipset")
	drop := readList(t, "spamhaus_drop", "feeds", "firehol", "spamhaus_drop.netset")
	if len(bl) < 1000 || len(drop) < 100 {
		t.Fatalf("samples too small: %d, %d", len(bl), len(drop))
	}
	d := Data{
		Sources: []SourceInfo{
			{Name: "blocklist_de", Kind: store.KindFeed, ConfirmedAt: t0},
			{Name: "spamhaus_drop", Kind: store.KindFeed, ConfirmedAt: t0},
		},
		Listings: append(bl, drop...),
	}
	idx := Build(d, BuildOptions{Now: func() time.Time { return t0 }})
	for _, l := range []store.Listing{bl[0], bl[len(bl)/2], bl[len(bl)-1]} {
		ms := matchesOf(idx, l.Prefix.Addr())
		if !slices.Contains(matchSet(ms), "blocklist_de "+l.Prefix.String()) {
			t.Errorf("%s: blocklist_de listing not found, got %v", l.Prefix, matchSet(ms))
		}
	}
	for _, l := range []store.Listing{drop[0], drop[len(drop)/2], drop[len(drop)-1]} {
		p := l.Prefix.Masked()
		inside := p.Addr().Next()
		ms := matchesOf(idx, inside)
		if !slices.Contains(matchSet(ms), "spamhaus_drop "+p.String()) {
			t.Errorf("%s inside %s: spamhaus_drop range not found, got %v", inside, p, matchSet(ms))
		}
	}
}
