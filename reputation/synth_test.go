package reputation

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/store"
)

// t0 is the fixed "now" of the tests.
var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// synthData returns a deterministic data set: sources feeds, hosts IPv4
// host listings (one in ten an ended episode instead) and ranges IPv4
// ranges between /16 and /30, drawn from seed. Generated at test time,
// never stored.
func synthData(hosts, ranges, sources int, seed uint64) Data {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	d := Data{}
	for i := range sources {
		d.Sources = append(d.Sources, SourceInfo{
			Name: fmt.Sprintf("feed-%02d", i), Kind: store.KindFeed, Provider: fmt.Sprintf("provider-%02d", i),
			Category: "bruteforce", Weight: 0.9, ConfirmedAt: t0.Add(-time.Hour),
		})
	}
	since := func() time.Time { return t0.Add(-time.Duration(r.Int64N(int64(30 * 24 * time.Hour)))) }
	for range hosts {
		p := netip.PrefixFrom(addr4(r.Uint32()), 32)
		src := d.Sources[r.IntN(sources)].Name
		if r.IntN(10) == 0 {
			s := since()
			d.Episodes = append(d.Episodes, store.Episode{Source: src, Prefix: p, Started: s, Ended: s.Add(time.Hour)})
			continue
		}
		d.Listings = append(d.Listings, store.Listing{Source: src, Prefix: p, Since: since()})
	}
	for range ranges {
		bits := 16 + r.IntN(15)
		p, _ := addr4(r.Uint32()).Prefix(bits)
		d.Listings = append(d.Listings, store.Listing{Source: d.Sources[r.IntN(sources)].Name, Prefix: p, Since: since()})
	}
	return d
}

// fakeClock is a settable clock for Service.Now.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func mustAddr(t testing.TB, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustPrefix(t testing.TB, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
