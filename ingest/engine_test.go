package ingest

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/misp"
	"github.com/rampart-ip/rampart/reputation"
	"github.com/rampart-ip/rampart/store"
)

func TestFirstSyncListsEveryEntry(t *testing.T) {
	for _, file := range [][]string{
		{"feeds", "firehol", "et_compromised.ipset"},
		{"feeds", "firehol", "firehol_level1.netset"},
		{"feeds", "ipsum", "levels", "5.txt"},
	} {
		t.Run(file[len(file)-1]+" is listed whole on the first sync", func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t, harnessOptions{})
			srv := newFeedServer(t)
			body := sample(t, file...)
			srv.set("/feed", body)
			h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("f", srv.URL+"/feed")})
			want := parsed(t, body)
			if len(want) == 0 {
				t.Fatal("sample has no prefixes")
			}

			rep, err := h.eng.SyncFeed(ctx, "f")
			if err != nil {
				t.Fatal(err)
			}
			if rep.Added != len(want) || rep.Removed != 0 || rep.Entries != len(want) || rep.NotModified {
				t.Errorf("report = %+v, want %d added", rep, len(want))
			}
			got := h.listings(t, "f")
			if len(got) != len(want) {
				t.Fatalf("store lists %d prefixes, want %d", len(got), len(want))
			}
			for _, p := range want {
				if since, ok := got[p]; !ok || !since.Equal(t0) {
					t.Fatalf("prefix %s: listed %v since %v, want since %v", p, ok, since, t0)
				}
			}
			fs := h.status(t, "f")
			if fs.Entries != len(want) || fs.LastError != "" || !fs.LastSuccess.Equal(t0) || !fs.LastAttempt.Equal(t0) {
				t.Errorf("feed status = %+v", fs)
			}
			if n := h.svc.Index().Len(); n == 0 {
				t.Error("index is empty after the sync")
			}
			a := h.svc.Check(want[len(want)/2].Addr())
			if !a.IsIoC || !a.IsActive || !slices.Contains(a.Blacklists, "f") {
				t.Errorf("answer for a listed address = %+v", a)
			}
		})
	}
}

func TestUnchangedResyncWritesNothing(t *testing.T) {
	for _, tc := range []struct {
		name         string
		noValidators bool
	}{
		{"a server answering 304 to the ETag costs one source write", false},
		{"a server without validators is recognised by the content hash", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t, harnessOptions{})
			srv := newFeedServer(t)
			srv.noValidators = tc.noValidators
			srv.set("/feed", sample(t, "feeds", "firehol", "greensnow.ipset"))
			h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("f", srv.URL+"/feed")})
			if _, err := h.eng.SyncFeed(ctx, "f"); err != nil {
				t.Fatal(err)
			}
			before := h.listings(t, "f")
			c0 := h.st.counts()
			h.clock.advance(time.Hour)

			rep, err := h.eng.SyncFeed(ctx, "f")
			if err != nil {
				t.Fatal(err)
			}
			if !rep.NotModified || rep.Added != 0 || rep.Removed != 0 || rep.Entries != len(before) {
				t.Errorf("report = %+v, want not modified with %d entries", rep, len(before))
			}
			c1 := h.st.counts()
			if c1.applyCalls != c0.applyCalls || c1.applied != c0.applied || c1.emptyApplies != c0.emptyApplies {
				t.Errorf("Apply called on an unchanged feed: before %+v, after %+v", c0, c1)
			}
			if c1.puts != c0.puts+1 {
				t.Errorf("source writes = %d, want 1", c1.puts-c0.puts)
			}
			if c1.listingsReads != c0.listingsReads {
				t.Errorf("an unchanged sync rebuilt the index")
			}
			after := h.listings(t, "f")
			if len(after) != len(before) {
				t.Fatalf("listings %d -> %d", len(before), len(after))
			}
			for p, since := range before {
				if !after[p].Equal(since) {
					t.Fatalf("listing %s since changed %v -> %v", p, since, after[p])
				}
			}
			if eps := h.episodes(t, "f"); len(eps) != 0 {
				t.Errorf("%d episodes ended by an unchanged sync", len(eps))
			}
			src := h.source(t, "f")
			if !src.LastSuccess.Equal(t0.Add(time.Hour)) || !src.LastAttempt.Equal(t0.Add(time.Hour)) {
				t.Errorf("source times = attempt %v success %v, want both %v", src.LastAttempt, src.LastSuccess, t0.Add(time.Hour))
			}
		})
	}
}

func TestChangedFileWritesExactlyTheDiff(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{})
	srv := newFeedServer(t)
	body := sample(t, "feeds", "firehol", "greensnow.ipset")
	srv.set("/feed", body)
	h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("f", srv.URL+"/feed")})
	if _, err := h.eng.SyncFeed(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	all := parsed(t, body)

	// Drop every 50th address, add two addresses and a range.
	changed := lines(body, func(i int, _ []byte) bool { return i%50 != 0 })
	added := []string{"1.2.3.4", "5.6.7.0/24", "2a00:1450:4001::7"}
	changed = append(changed, []byte(strings.Join(added, "\n")+"\n")...)
	srv.set("/feed", changed)
	want := parsed(t, changed)
	var removed []netip.Prefix
	for _, p := range all {
		if _, ok := slices.BinarySearchFunc(want, p, netip.Prefix.Compare); !ok {
			removed = append(removed, p)
		}
	}
	if len(removed) == 0 {
		t.Fatal("test change removes nothing")
	}
	c0 := h.st.counts()
	h.clock.advance(time.Hour)
	t1 := h.clock.now()

	rep, err := h.eng.SyncFeed(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Added != len(added) || rep.Removed != len(removed) || rep.Entries != len(want) {
		t.Errorf("report = %+v, want %d added, %d removed", rep, len(added), len(removed))
	}
	c1 := h.st.counts()
	if c1.applyCalls-c0.applyCalls != 1 || c1.applied-c0.applied != len(added)+len(removed) {
		t.Errorf("Apply wrote %d prefixes in %d calls, want %d in 1", c1.applied-c0.applied, c1.applyCalls-c0.applyCalls, len(added)+len(removed))
	}
	got := h.listings(t, "f")
	if len(got) != len(want) {
		t.Fatalf("store lists %d, want %d", len(got), len(want))
	}
	for _, s := range added {
		p := mustPrefix(t, s)
		if !got[p].Equal(t1) {
			t.Errorf("added %s since %v, want %v", p, got[p], t1)
		}
	}
	for _, p := range want {
		if since := got[p]; !since.Equal(t0) && !since.Equal(t1) {
			t.Fatalf("listing %s since %v", p, since)
		} else if since.Equal(t1) && !slices.Contains(added, p.String()) && !slices.Contains(added, p.Addr().String()) {
			t.Fatalf("kept listing %s restarted at %v", p, since)
		}
	}
	eps := h.episodes(t, "f")
	if len(eps) != len(removed) {
		t.Fatalf("%d episodes, want %d", len(eps), len(removed))
	}
	for _, ep := range eps {
		if !ep.Started.Equal(t0) || !ep.Ended.Equal(t1) {
			t.Errorf("episode %+v, want %v..%v", ep, t0, t1)
		}
	}
	a := h.svc.Check(removed[0].Addr())
	if a.IsActive || !a.Historical {
		t.Errorf("removed address answer = %+v, want historical only", a)
	}
	if a := h.svc.Check(netip.MustParseAddr("5.6.7.77")); !a.IsActive {
		t.Errorf("address in an added range is not active: %+v", a)
	}
}

func mustPrefix(t testing.TB, s string) netip.Prefix {
	t.Helper()
	if p, err := netip.ParsePrefix(s); err == nil {
		return p
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return netip.PrefixFrom(a, a.BitLen())
}

func TestFailedPullKeepsLastGoodData(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breakIt func(t *testing.T, srv *feedServer, h *harness)
		want    string // in LastError
	}{
		{"an HTTP 500 keeps the listings", func(_ *testing.T, srv *feedServer, _ *harness) { srv.fail(http.StatusInternalServerError) }, "500"},
		{"an HTML error page served as 200 keeps the listings", func(_ *testing.T, srv *feedServer, _ *harness) {
			srv.set("/feed", []byte("<html>\n<body>\nService temporarily unavailable\n</body>\n</html>\n"))
		}, "suspicious"},
		{"an oversize body keeps the listings", func(_ *testing.T, srv *feedServer, _ *harness) {
			srv.set("/feed", bytes.Repeat([]byte("192.0.2.1\n"), 200_000))
		}, "size limit"},
		{"an unreachable server keeps the listings", func(t *testing.T, _ *feedServer, h *harness) {
			h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("f", closedURL(t))})
		}, "fetch feed"},
		{"a collapse to a tenth of a large feed is held back", func(_ *testing.T, srv *feedServer, _ *harness) {
			srv.set("/feed", []byte("192.0.2.1\n192.0.2.2\n"))
		}, "suspicious"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t, harnessOptions{maxBytes: 1 << 20})
			srv := newFeedServer(t)
			srv.set("/feed", sample(t, "feeds", "firehol", "greensnow.ipset"))
			h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("f", srv.URL+"/feed")})
			if _, err := h.eng.SyncFeed(ctx, "f"); err != nil {
				t.Fatal(err)
			}
			before := h.listings(t, "f")
			if len(before) < SuspiciousMinEntries {
				t.Fatalf("sample too small: %d", len(before))
			}
			tc.breakIt(t, srv, h)
			c0 := h.st.counts()
			h.clock.advance(time.Hour)

			rep, err := h.eng.SyncFeed(ctx, "f")
			if err == nil || rep.Err == nil {
				t.Fatalf("sync succeeded: %+v", rep)
			}
			if c1 := h.st.counts(); c1.applyCalls != c0.applyCalls {
				t.Error("a failed pull wrote listings")
			}
			if after := h.listings(t, "f"); len(after) != len(before) {
				t.Errorf("listings %d -> %d", len(before), len(after))
			}
			src := h.source(t, "f")
			if !strings.Contains(src.LastError, tc.want) {
				t.Errorf("LastError = %q, want it to mention %q", src.LastError, tc.want)
			}
			if !src.LastAttempt.Equal(t0.Add(time.Hour)) || !src.LastSuccess.Equal(t0) || src.Entries != len(before) {
				t.Errorf("source = attempt %v success %v entries %d", src.LastAttempt, src.LastSuccess, src.Entries)
			}
			if fs := h.status(t, "f"); fs.LastError != src.LastError || fs.Entries != len(before) {
				t.Errorf("Feeds() shows %+v", fs)
			}
		})
	}
}

func TestRepeatedCollapseIsAccepted(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{})
	srv := newFeedServer(t)
	srv.set("/feed", sample(t, "feeds", "firehol", "greensnow.ipset"))
	h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("f", srv.URL+"/feed")})
	if _, err := h.eng.SyncFeed(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	srv.set("/feed", []byte("192.0.2.1\n192.0.2.2\n"))
	if _, err := h.eng.SyncFeed(ctx, "f"); !errors.Is(err, ErrSuspiciousPull) {
		t.Fatalf("first collapse: err = %v, want ErrSuspiciousPull", err)
	}
	rep, err := h.eng.SyncFeed(ctx, "f")
	if err != nil {
		t.Fatalf("second identical collapse: %v", err)
	}
	if rep.Entries != 2 || len(h.listings(t, "f")) != 2 {
		t.Errorf("report %+v, listings %d; want 2", rep, len(h.listings(t, "f")))
	}
	if src := h.source(t, "f"); src.LastError != "" || src.Meta[metaSuspect] != "" {
		t.Errorf("source after acceptance: error %q meta %v", src.LastError, src.Meta)
	}
}

func TestRepeatedEmptyingPull(t *testing.T) {
	for _, tc := range []struct {
		name     string
		body     []byte
		accepted bool
	}{
		{"an HTML error page served again and again never empties the feed",
			[]byte("<html>\n<body>\nQuota exceeded, try again tomorrow\n</body>\n</html>\n"), false},
		{"binary garbage served again and again never empties the feed",
			bytes.Repeat([]byte("\x00\xff\xfe garbage \x01\n"), 500), false},
		{"a list emptied to its comments is accepted the second time", []byte("# generated today\n# no entries\n"), true},
		{"a list emptied to a header row is accepted the second time", []byte("# comment\nip,first_seen\n"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t, harnessOptions{})
			srv := newFeedServer(t)
			srv.set("/feed", sample(t, "feeds", "firehol", "et_compromised.ipset"))
			h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("f", srv.URL+"/feed")})
			if _, err := h.eng.SyncFeed(ctx, "f"); err != nil {
				t.Fatal(err)
			}
			n := len(h.listings(t, "f"))
			srv.set("/feed", tc.body)
			if _, err := h.eng.SyncFeed(ctx, "f"); !errors.Is(err, ErrSuspiciousPull) {
				t.Fatalf("first emptying pull: err = %v, want ErrSuspiciousPull", err)
			}
			for range 2 {
				_, err := h.eng.SyncFeed(ctx, "f")
				if tc.accepted != (err == nil) {
					t.Errorf("repeated pull: err = %v, accepted want %v", err, tc.accepted)
				}
			}
			want := n
			if tc.accepted {
				want = 0
			}
			if got := len(h.listings(t, "f")); got != want {
				t.Errorf("%d listings after three pulls, want %d", got, want)
			}
		})
	}
}

func TestSyncAllCoalescesRebuilds(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{})
	srv := newFeedServer(t)
	var feeds []misp.Feed
	for _, name := range []string{"et_compromised.ipset", "greensnow.ipset", "tor_exits.ipset", "spamhaus_drop.netset", "firehol_level1.netset"} {
		srv.set("/"+name, sample(t, "feeds", "firehol", name))
		feeds = append(feeds, feed(strings.TrimSuffix(strings.TrimSuffix(name, ".ipset"), ".netset"), srv.URL+"/"+name))
	}
	feeds = append(feeds, feed("offline", closedURL(t)))
	h.eng.SetFeeds(OriginConfig, feeds)
	c0 := h.st.counts()
	var progressed []string
	reports := h.eng.SyncAll(ctx, func(r Report) { progressed = append(progressed, r.Feed) })

	if len(reports) != len(feeds) || len(progressed) != len(feeds) {
		t.Fatalf("%d reports, %d progress calls, want %d", len(reports), len(progressed), len(feeds))
	}
	for _, r := range reports {
		if (r.Err != nil) != (r.Feed == "offline") {
			t.Errorf("report %s: err %v", r.Feed, r.Err)
		}
	}
	if n := h.st.counts().listingsReads - c0.listingsReads; n != 1 {
		t.Errorf("SyncAll rebuilt the index %d times, want once", n)
	}
	for _, f := range feeds[:len(feeds)-1] {
		if a := h.svc.Check(h.firstListed(t, f.Name)); !slices.Contains(a.Blacklists, f.Name) {
			t.Errorf("feed %s not in the index", f.Name)
		}
	}
}

func (h *harness) firstListed(t testing.TB, source string) netip.Addr {
	t.Helper()
	for p := range h.listings(t, source) {
		return p.Addr()
	}
	t.Fatalf("%s lists nothing", source)
	return netip.Addr{}
}

func TestApplySource(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{})
	h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("taken", "http://127.0.0.1:1/x")})
	src := store.Source{Name: "Phishing campaign", Kind: store.KindMISPEvent, LastSuccess: t0,
		Meta: map[string]string{"threat_level": "1", "tags": "tlp:green,apt"}}
	p := netip.MustParsePrefix("5.6.7.0/24")

	t.Run("a MISP event's change is listed after a rebuild", func(t *testing.T) {
		if err := h.eng.ApplySource(ctx, src, store.Change{Added: []netip.Prefix{p}}); err != nil {
			t.Fatal(err)
		}
		if err := h.eng.Rebuild(ctx); err != nil {
			t.Fatal(err)
		}
		a := h.svc.Check(netip.MustParseAddr("5.6.7.9"))
		if !a.IsActive || !slices.Contains(a.Blacklists, src.Name) {
			t.Errorf("answer = %+v", a)
		}
	})
	t.Run("a name used by a feed is refused", func(t *testing.T) {
		s := src
		s.Name = "taken"
		if err := h.eng.ApplySource(ctx, s, store.Change{Added: []netip.Prefix{p}}); !errors.Is(err, ErrNameTaken) {
			t.Errorf("err = %v, want ErrNameTaken", err)
		}
	})
	t.Run("a removal ends the listing", func(t *testing.T) {
		h.clock.advance(time.Minute)
		if err := h.eng.ApplySource(ctx, src, store.Change{Removed: []netip.Prefix{p}}); err != nil {
			t.Fatal(err)
		}
		if err := h.eng.Rebuild(ctx); err != nil {
			t.Fatal(err)
		}
		if a := h.svc.Check(netip.MustParseAddr("5.6.7.9")); a.IsActive || !a.Historical {
			t.Errorf("answer = %+v", a)
		}
	})
}

func TestSourceInfoFromDefinitionAndMeta(t *testing.T) {
	w := 0.3
	f := &feedEntry{def: misp.Feed{Name: "f", Provider: "P", Category: "spam", Tags: []string{"a"}, Weight: &w, Lifetime: misp.Duration(time.Hour)}}
	for _, tc := range []struct {
		name string
		src  store.Source
		def  *feedEntry
		ok   func(reputation.SourceInfo) bool
	}{
		{"a defined feed takes weight, lifetime and category from its definition", store.Source{Name: "f", Kind: store.KindFeed}, f,
			func(i reputation.SourceInfo) bool {
				return i.Weight == 0.3 && i.Lifetime == time.Hour && i.Category == "spam" && i.Provider == "P"
			}},
		{"a retired feed keeps provider and category from its meta", store.Source{Name: "old", Kind: store.KindFeed, Meta: map[string]string{metaProvider: "Q", metaCategory: "tor", metaTags: "x, y"}}, nil,
			func(i reputation.SourceInfo) bool {
				return i.Provider == "Q" && i.Category == "tor" && slices.Equal(i.Tags, []string{"x", "y"})
			}},
		{"a MISP event carries its threat level and tags", store.Source{Name: "ev", Kind: store.KindMISPEvent, LastSuccess: t0, Meta: map[string]string{"threat_level": "2", "tags": "tlp:white"}}, nil,
			func(i reputation.SourceInfo) bool {
				return i.ThreatLevel == 2 && i.Provider == "MISP" && slices.Equal(i.Tags, []string{"tlp:white"}) && i.ConfirmedAt.Equal(t0)
			}},
		{"a MISP event with a bad threat level gets none", store.Source{Name: "ev", Kind: store.KindMISPEvent, Meta: map[string]string{"threat_level": "9"}}, nil,
			func(i reputation.SourceInfo) bool { return i.ThreatLevel == 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sourceInfo(tc.src, tc.def); !tc.ok(got) {
				t.Errorf("sourceInfo = %+v", got)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	p := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	for _, tc := range []struct {
		name           string
		cur, next      []netip.Prefix
		added, removed []netip.Prefix
	}{
		{"nothing to nothing changes nothing", nil, nil, nil, nil},
		{"a first pull adds everything", nil, p("10.0.0.1/32", "10.0.0.2/32"), p("10.0.0.1/32", "10.0.0.2/32"), nil},
		{"an empty pull removes everything", p("10.0.0.1/32"), nil, nil, p("10.0.0.1/32")},
		{"an interleaved change is found in one walk", p("10.0.0.1/32", "10.0.0.3/32", "10.0.0.0/24", "2001:db8::1/128"), p("10.0.0.2/32", "10.0.0.3/32", "10.0.0.0/24", "2001:db8::2/128"),
			p("10.0.0.2/32", "2001:db8::2/128"), p("10.0.0.1/32", "2001:db8::1/128")},
		{"the same address as host and range are different listings", p("10.0.0.0/32"), p("10.0.0.0/24"), p("10.0.0.0/24"), p("10.0.0.0/32")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := diff(sortedUnique(tc.cur), sortedUnique(tc.next))
			if !slices.Equal(ch.Added, tc.added) || !slices.Equal(ch.Removed, tc.removed) {
				t.Errorf("diff = +%v -%v, want +%v -%v", ch.Added, ch.Removed, tc.added, tc.removed)
			}
		})
	}
	t.Run("unsorted input with duplicates is sorted and deduplicated", func(t *testing.T) {
		got := sortedUnique(p("10.0.0.2/32", "10.0.0.1/32", "10.0.0.2/32"))
		if !slices.Equal(got, p("10.0.0.1/32", "10.0.0.2/32")) {
			t.Errorf("sortedUnique = %v", got)
		}
	})
}
