package api

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/reputation"
	"github.com/rampart-ip/rampart/store"
)

// enfNow is the clock of the enforcement tests.
var enfNow = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// enfFixture is a real reputation service whose listings a test can
// replace, with a movable clock.
type enfFixture struct {
	svc *reputation.Service
	mu  sync.Mutex
	now time.Time
}

func (f *enfFixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *enfFixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// enfSources are the sources of the enforcement tests; "weak" is weighted
// low enough that its listings alone do not block.
var enfSources = []reputation.SourceInfo{
	{Name: "blocklist_de", Kind: store.KindFeed, Provider: "blocklist.de", Category: "bruteforce"},
	{Name: "spamhaus_drop", Kind: store.KindFeed, Provider: "Spamhaus", Category: "hijacked"},
	{Name: "weak", Kind: store.KindFeed, Provider: "example", Weight: 0.5},
}

// newEnfFixture returns a service over listings given as "source prefix".
func newEnfFixture(t testing.TB, listings ...string) *enfFixture {
	t.Helper()
	f := &enfFixture{now: enfNow}
	f.svc = reputation.NewService(reputation.ServiceOptions{
		Model:     reputation.NewModel(config.Default().Scoring),
		CacheSize: -1,
		Now:       f.clock,
		Logger:    discardLogger(),
	})
	f.set(t, listings...)
	return f
}

// set swaps in an index of listings, confirmed an hour before the clock.
func (f *enfFixture) set(t testing.TB, listings ...string) {
	t.Helper()
	now := f.clock()
	var ls []store.Listing
	for _, l := range listings {
		src, p, ok := strings.Cut(l, " ")
		if !ok {
			t.Fatalf("listing %q: want \"source prefix\"", l)
		}
		ls = append(ls, store.Listing{Source: src, Prefix: netip.MustParsePrefix(p), Since: now.Add(-72 * time.Hour)})
	}
	srcs := slices.Clone(enfSources)
	for i := range srcs {
		srcs[i].ConfirmedAt = now.Add(-time.Hour)
	}
	f.svc.Swap(reputation.Build(reputation.Data{Sources: srcs, Listings: ls}, reputation.BuildOptions{Now: f.clock}))
}

// enfDo sends one request to e.
func enfDo(e *echo.Echo, method, target string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	return w
}

var enfRoles = map[string]string{"bouncer-key": "bouncer", "bouncer-key-2": "bouncer", "admin-key": "admin", "query-key": "query"}

func enfRole(k string) (string, bool) { r, ok := enfRoles[k]; return r, ok }

func mp(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestMergePrefixes(t *testing.T) {
	tests := []struct {
		name     string
		in, want []string
	}{
		{"nothing merges to nothing", nil, nil},
		{"one host stays", []string{"1.2.3.4/32"}, []string{"1.2.3.4/32"}},
		{"duplicates collapse", []string{"1.2.3.4/32", "1.2.3.4/32"}, []string{"1.2.3.4/32"}},
		{"unmasked prefixes are masked", []string{"10.1.2.3/16"}, []string{"10.1.0.0/16"}},
		{"a contained host is dropped", []string{"10.0.0.5/32", "10.0.0.0/24"}, []string{"10.0.0.0/24"}},
		{"a contained range is dropped", []string{"10.0.0.0/8", "10.20.0.0/16"}, []string{"10.0.0.0/8"}},
		{"two sibling hosts join", []string{"1.2.3.4/32", "1.2.3.5/32"}, []string{"1.2.3.4/31"}},
		{"adjacent non-siblings stay apart", []string{"1.2.3.5/32", "1.2.3.6/32"}, []string{"1.2.3.5/32", "1.2.3.6/32"}},
		{"joins cascade", []string{"1.2.3.0/32", "1.2.3.1/32", "1.2.3.2/31", "1.2.3.4/30"}, []string{"1.2.3.0/29"}},
		{"a full /24 of hosts becomes one /24", hosts("192.0.2.", 256), []string{"192.0.2.0/24"}},
		{"halves of the IPv4 space join into /0", []string{"0.0.0.0/1", "128.0.0.0/1"}, []string{"0.0.0.0/0"}},
		{"IPv4 and IPv6 never join", []string{"0.0.0.0/0", "::/0"}, []string{"0.0.0.0/0", "::/0"}},
		{"IPv6 siblings join", []string{"2001:db8::/33", "2001:db8:8000::/33"}, []string{"2001:db8::/32"}},
		{"IPv6 halves join into /0", []string{"::/1", "8000::/1"}, []string{"::/0"}},
		{"IPv4-mapped IPv6 counts as IPv4", []string{"::ffff:1.2.3.4/128", "1.2.3.5/32"}, []string{"1.2.3.4/31"}},
		{"IPv4 comes before IPv6, each sorted", []string{"2001:db8::1/128", "9.9.9.9/32", "1.1.1.1/32"}, []string{"1.1.1.1/32", "9.9.9.9/32", "2001:db8::1/128"}},
		{"a supernet after its subnets swallows them", []string{"10.0.0.1/32", "10.0.0.2/32", "10.0.0.0/30"}, []string{"10.0.0.0/30"}},
		{"the /0 swallows everything of its family", []string{"1.2.3.4/32", "0.0.0.0/0", "200.0.0.0/8", "2001:db8::/32"}, []string{"0.0.0.0/0", "2001:db8::/32"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in []netip.Prefix
			for _, s := range tt.in {
				in = append(in, mp(s))
			}
			got := MergePrefixes(in)
			var gs []string
			for _, p := range got {
				gs = append(gs, p.String())
			}
			if strings.Join(gs, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("got %v, want %v", gs, tt.want)
			}
		})
	}
	t.Run("invalid prefixes are skipped", func(t *testing.T) {
		if got := MergePrefixes([]netip.Prefix{{}, mp("1.2.3.4/32")}); len(got) != 1 {
			t.Fatalf("got %v", got)
		}
	})
}

func hosts(base string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d/32", base, i)
	}
	return out
}

// TestMergePrefixesAgainstNaiveModel checks random lists inside small
// spaces against a set of covered addresses: the merged list covers
// exactly the same addresses, its prefixes are sorted and disjoint, and no
// two of them could be joined (which makes it the fewest prefixes).
func TestMergePrefixesAgainstNaiveModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	spaces := []struct {
		base netip.Prefix
	}{{mp("10.20.30.0/24")}, {mp("2001:db8::ff00/120")}, {mp("0.0.0.0/28")}}
	for round := range 400 {
		var in []netip.Prefix
		covered := map[netip.Addr]bool{}
		for _, sp := range spaces {
			n := rng.IntN(40)
			for range n {
				bits := sp.base.Bits() + rng.IntN(sp.base.Addr().BitLen()-sp.base.Bits()+1)
				off := rng.Uint32() & (1<<(sp.base.Addr().BitLen()-sp.base.Bits()) - 1)
				a := addOffset(sp.base.Addr(), off)
				p := netip.PrefixFrom(a, bits).Masked()
				in = append(in, p)
				for x := p.Addr(); p.Contains(x); x = x.Next() {
					covered[x] = true
					if !x.Next().IsValid() {
						break
					}
				}
			}
		}
		got := MergePrefixes(slices.Clone(in))
		gotCovered := map[netip.Addr]bool{}
		for i, p := range got {
			if p != p.Masked() {
				t.Fatalf("round %d: %v is not masked", round, p)
			}
			for x := p.Addr(); p.Contains(x); x = x.Next() {
				if gotCovered[x] {
					t.Fatalf("round %d: %v overlaps an earlier prefix", round, p)
				}
				gotCovered[x] = true
				if !x.Next().IsValid() {
					break
				}
			}
			if i > 0 {
				prev := got[i-1]
				if prev.Addr().Is4() == p.Addr().Is4() && !prev.Addr().Less(p.Addr()) {
					t.Fatalf("round %d: %v before %v is out of order", round, prev, p)
				}
				if prev.Bits() == p.Bits() && p.Bits() > 0 && prev.Addr().Is4() == p.Addr().Is4() {
					parent, _ := prev.Addr().Prefix(p.Bits() - 1)
					if pp, _ := p.Addr().Prefix(p.Bits() - 1); pp == parent {
						t.Fatalf("round %d: %v and %v could be joined", round, prev, p)
					}
				}
			}
		}
		if len(gotCovered) != len(covered) {
			t.Fatalf("round %d: merged covers %d addresses, input %d\nin %v\ngot %v", round, len(gotCovered), len(covered), in, got)
		}
		for a := range covered {
			if !gotCovered[a] {
				t.Fatalf("round %d: %v is lost", round, a)
			}
		}
	}
}

func addOffset(a netip.Addr, off uint32) netip.Addr {
	b := a.As16()
	carry := uint64(off)
	for i := 15; i >= 0 && carry > 0; i-- {
		s := uint64(b[i]) + carry&0xff
		b[i] = byte(s)
		carry = carry>>8 + s>>8
	}
	out := netip.AddrFrom16(b)
	if a.Is4() {
		return out.Unmap()
	}
	return out
}

func newBlocklistEcho(f *enfFixture, role func(string) (string, bool)) *echo.Echo {
	e := echo.New()
	NewBlocklist(BlocklistOptions{Service: f.svc, Role: role, Now: f.clock, Logger: discardLogger()}).Register(e)
	return e
}

// blocklistListings: two sibling hosts (merge into a /31), a host inside a
// listed range, an IPv6 range, and a weak listing that does not block.
var blocklistListings = []string{
	"blocklist_de 45.142.120.10/32",
	"blocklist_de 45.142.120.11/32",
	"blocklist_de 185.220.101.9/32",
	"spamhaus_drop 185.220.100.0/22",
	"blocklist_de 2a10:c700::/29",
	"weak 77.83.36.5/32",
}

func TestBlocklistFormats(t *testing.T) {
	f := newEnfFixture(t, blocklistListings...)
	e := newBlocklistEcho(f, nil)
	want := []string{"45.142.120.10/31", "185.220.100.0/22", "2a10:c700::/29"}
	tests := []struct {
		format, ctype string
		parse         func(t *testing.T, body string) []string
	}{
		{"plain", "text/plain", parsePlain},
		{"", "text/plain", parsePlain},
		{"csv", "text/csv", parseCSV},
		{"json", "application/json", parseJSON},
		{"nftables", "text/plain", parseNft},
		{"ipset", "text/plain", parseIpset},
	}
	for _, tt := range tests {
		t.Run("format "+tt.format+" lists the merged prefixes in its syntax", func(t *testing.T) {
			w := enfDo(e, http.MethodGet, "/api/v1/blocklist?format="+tt.format)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, tt.ctype) {
				t.Errorf("content type %q, want %s", ct, tt.ctype)
			}
			got := tt.parse(t, w.Body.String())
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("prefixes %v, want %v\n%s", got, want, w.Body)
			}
		})
	}
}

// normal turns a bare address into a host prefix.
func normal(t *testing.T, s string) string {
	t.Helper()
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.String()
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatalf("%q is neither an address nor a prefix", s)
	}
	return netip.PrefixFrom(a, a.BitLen()).String()
}

func parsePlain(t *testing.T, body string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		out = append(out, normal(t, l))
	}
	return out
}

func parseCSV(t *testing.T, body string) []string {
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != "network,family" {
		t.Fatalf("header %v", recs)
	}
	var out []string
	for _, r := range recs[1:] {
		p := normal(t, r[0])
		if fam := map[bool]string{true: "ipv4", false: "ipv6"}[mp(p).Addr().Is4()]; r[1] != fam {
			t.Errorf("%s has family %s, want %s", p, r[1], fam)
		}
		out = append(out, p)
	}
	return out
}

func parseJSON(t *testing.T, body string) []string {
	var v struct {
		Count    int      `json:"count"`
		Prefixes []string `json:"prefixes"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if v.Count != len(v.Prefixes) {
		t.Errorf("count %d for %d prefixes", v.Count, len(v.Prefixes))
	}
	var out []string
	for _, p := range v.Prefixes {
		out = append(out, normal(t, p))
	}
	return out
}

// parseNft checks the output against the nft grammar subset it uses
// (add table/set, flush set, add element blocks, comments) and returns
// the elements, IPv4 set first.
func parseNft(t *testing.T, body string) []string {
	var (
		comment = regexp.MustCompile(`^#.*$`)
		table   = regexp.MustCompile(`^add table inet rampart$`)
		set     = regexp.MustCompile(`^add set inet rampart (blocklist_v4|blocklist_v6) \{ type (ipv4_addr|ipv6_addr); flags interval; \}$`)
		flush   = regexp.MustCompile(`^flush set inet rampart (blocklist_v4|blocklist_v6)$`)
		open    = regexp.MustCompile(`^add element inet rampart (blocklist_v4|blocklist_v6) \{$`)
		elem    = regexp.MustCompile(`^\t([0-9a-f.:/]+)(,?)$`)
	)
	var out []string
	inBlock, setName, lastComma := false, "", false
	declared := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case inBlock && l == "}":
			if lastComma {
				t.Errorf("line %d: trailing comma before }", n)
			}
			inBlock = false
		case inBlock:
			m := elem.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("line %d: %q is not an element", n, l)
			}
			p := normal(t, m[1])
			if mp(p).Addr().Is4() != (setName == "blocklist_v4") {
				t.Errorf("line %d: %s in set %s", n, p, setName)
			}
			out = append(out, p)
			lastComma = m[2] == ","
		case comment.MatchString(l), table.MatchString(l):
		case set.MatchString(l):
			m := set.FindStringSubmatch(l)
			if (m[1] == "blocklist_v4") != (m[2] == "ipv4_addr") {
				t.Errorf("line %d: set %s has type %s", n, m[1], m[2])
			}
			declared[m[1]] = true
		case flush.MatchString(l):
			if !declared[flush.FindStringSubmatch(l)[1]] {
				t.Errorf("line %d: flush of an undeclared set", n)
			}
		case open.MatchString(l):
			setName, inBlock, lastComma = open.FindStringSubmatch(l)[1], true, false
			if !declared[setName] {
				t.Errorf("line %d: elements for an undeclared set", n)
			}
		default:
			t.Fatalf("line %d: %q is not nft syntax used here", n, l)
		}
	}
	if inBlock {
		t.Fatal("unclosed element block")
	}
	return out
}

// parseIpset checks ipset restore syntax: create (hash:net, family,
// -exist), flush, add lines for created sets of the right family.
func parseIpset(t *testing.T, body string) []string {
	var (
		create = regexp.MustCompile(`^create (\S+) hash:net family (inet|inet6) hashsize \d+ maxelem (\d+) -exist$`)
		flush  = regexp.MustCompile(`^flush (\S+)$`)
		add    = regexp.MustCompile(`^add (\S+) (\S+)$`)
	)
	family := map[string]string{}
	var out []string
	for n, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		switch {
		case create.MatchString(l):
			m := create.FindStringSubmatch(l)
			family[m[1]] = m[2]
		case flush.MatchString(l):
			if family[flush.FindStringSubmatch(l)[1]] == "" {
				t.Errorf("line %d: flush of an uncreated set", n+1)
			}
		case add.MatchString(l):
			m := add.FindStringSubmatch(l)
			p := mp(normal(t, m[2]))
			if p.Bits() == 0 {
				t.Errorf("line %d: hash:net takes no /0", n+1)
			}
			if want := map[bool]string{true: "inet", false: "inet6"}[p.Addr().Is4()]; family[m[1]] != want {
				t.Errorf("line %d: %s in set %s of family %q", n+1, p, m[1], family[m[1]])
			}
			out = append(out, p.String())
		default:
			t.Fatalf("line %d: %q is not ipset restore syntax", n+1, l)
		}
	}
	return out
}

func TestBlocklistIPsetSplitsTheWholeSpace(t *testing.T) {
	var buf strings.Builder
	w := bufio.NewWriter(&buf)
	if err := writeBlocklist(w, "ipset", []pkey{pkeyOf(mp("0.0.0.0/0")), pkeyOf(mp("::/0"))}); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	got := parseIpset(t, buf.String())
	if strings.Join(got, " ") != "0.0.0.0/1 128.0.0.0/1 ::/1 8000::/1" {
		t.Fatalf("got %v", got)
	}
}

func TestBlocklistETag(t *testing.T) {
	f := newEnfFixture(t, blocklistListings...)
	e := newBlocklistEcho(f, nil)
	first := enfDo(e, http.MethodGet, "/api/v1/blocklist?format=plain")
	etag := first.Header().Get("ETag")
	if etag == "" || !strings.HasPrefix(etag, `"`) {
		t.Fatalf("etag %q", etag)
	}
	t.Run("the ETag stays while the list does not change", func(t *testing.T) {
		f.set(t, blocklistListings...) // a new generation, same list
		f.advance(time.Minute)
		if got := enfDo(e, http.MethodGet, "/api/v1/blocklist?format=plain").Header().Get("ETag"); got != etag {
			t.Fatalf("etag %q, want %q", got, etag)
		}
	})
	t.Run("If-None-Match with the ETag answers 304 without a body", func(t *testing.T) {
		for _, h := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
			w := enfDo(e, http.MethodGet, "/api/v1/blocklist?format=plain", "If-None-Match", h)
			if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
				t.Fatalf("If-None-Match %s: status %d, body %q", h, w.Code, w.Body)
			}
		}
	})
	t.Run("another format has another ETag", func(t *testing.T) {
		if got := enfDo(e, http.MethodGet, "/api/v1/blocklist?format=csv").Header().Get("ETag"); got == etag {
			t.Fatal("same etag for csv and plain")
		}
	})
	t.Run("the ETag changes when the list does", func(t *testing.T) {
		f.set(t, append(slices.Clone(blocklistListings), "blocklist_de 91.92.93.94/32")...)
		w := enfDo(e, http.MethodGet, "/api/v1/blocklist?format=plain", "If-None-Match", etag)
		if w.Code != http.StatusOK || w.Header().Get("ETag") == etag {
			t.Fatalf("status %d, etag %q after a change", w.Code, w.Header().Get("ETag"))
		}
		if !strings.Contains(w.Body.String(), "91.92.93.94\n") {
			t.Errorf("new address missing from %s", w.Body)
		}
	})
}

func TestBlocklistParameters(t *testing.T) {
	f := newEnfFixture(t, blocklistListings...)
	tests := []struct {
		name   string
		role   func(string) (string, bool)
		target string
		header []string
		code   int
	}{
		{"an unknown format is refused", nil, "/api/v1/blocklist?format=xml", nil, http.StatusBadRequest},
		{"a min_risk over 100 is refused", nil, "/api/v1/blocklist?min_risk=101", nil, http.StatusBadRequest},
		{"a negative min_risk is refused", nil, "/api/v1/blocklist?min_risk=-1", nil, http.StatusBadRequest},
		{"a min_risk that is not a number is refused", nil, "/api/v1/blocklist?min_risk=high", nil, http.StatusBadRequest},
		{"with keys configured a request without key is forbidden", enfRole, "/api/v1/blocklist", nil, http.StatusForbidden},
		{"with keys configured a query key is forbidden", enfRole, "/api/v1/blocklist", []string{"X-Api-Key", "query-key"}, http.StatusForbidden},
		{"with keys configured a bouncer key may export", enfRole, "/api/v1/blocklist", []string{"X-Api-Key", "bouncer-key"}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := enfDo(newBlocklistEcho(f, tt.role), http.MethodGet, tt.target, tt.header...)
			if w.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.code, w.Body)
			}
		})
	}
	t.Run("min_risk keeps only prefixes at least that risky", func(t *testing.T) {
		e := newBlocklistEcho(f, nil)
		all := parsePlain(t, enfDo(e, http.MethodGet, "/api/v1/blocklist?min_risk=0").Body.String())
		none := enfDo(e, http.MethodGet, "/api/v1/blocklist?min_risk=100")
		var minRisk float64 = 100
		for d := range f.svc.BlockSet(f.clock()).All() {
			minRisk = min(minRisk, 100-d.Score)
		}
		if len(all) != 3 {
			t.Errorf("min_risk=0 lists %v", all)
		}
		if minRisk < 100 && none.Body.Len() != 0 {
			t.Errorf("min_risk=100 lists %q although the riskiest decision has risk %v", none.Body, minRisk)
		}
	})
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// BenchmarkBlocklistPlain1M exports the plain blocklist of a real service
// over 1M listed hosts. The first request merges the block set (reported
// as first-*, including the set's computation when no other benchmark
// made it); the timed ones reuse the merged list.
func BenchmarkBlocklistPlain1M(b *testing.B) {
	svc := bench1MService()
	e := echo.New()
	NewBlocklist(BlocklistOptions{Service: svc, Now: func() time.Time { return enfNow }}).Register(e)
	var bytes int64
	export := func() {
		w := &countingWriter{h: http.Header{}}
		e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/blocklist?format=plain", nil))
		bytes = w.n
	}
	start := time.Now()
	first := measureHeap(export)
	firstTime := time.Since(start)
	b.ReportAllocs()
	for b.Loop() {
		export()
	}
	// Reported after the loop, which resets what was reported before it.
	b.ReportMetric(float64(firstTime.Milliseconds()), "first-ms")
	first.report(b, "first")
	b.ReportMetric(float64(bytes), "body-bytes")
}

func TestBlocklistMergesOncePerBlockSet(t *testing.T) {
	f := newEnfFixture(t, blocklistListings...)
	bl := NewBlocklist(BlocklistOptions{Service: f.svc, Now: f.clock, Logger: discardLogger()})
	e := echo.New()
	bl.Register(e)
	list := func(minRisk float64) *mergedList { return bl.list(f.svc.BlockSet(f.clock()), minRisk) }
	first := list(-1)
	etag := enfDo(e, http.MethodGet, "/api/v1/blocklist").Header().Get("ETag")
	t.Run("requests on one set share its merged list", func(t *testing.T) {
		if list(-1) != first {
			t.Error("the merged list was made again")
		}
		if list(50) == first {
			t.Error("another min_risk shares the list")
		}
		if len(first.keys) != 3 {
			t.Errorf("merged %d prefixes, want 3", len(first.keys))
		}
	})
	t.Run("a recomputed set merges again and keeps the ETag", func(t *testing.T) {
		f.advance(reputation.BlockSetMaxAge + time.Minute)
		if list(-1) == first {
			t.Error("the list of the older set is still served")
		}
		if got := enfDo(e, http.MethodGet, "/api/v1/blocklist").Header().Get("ETag"); got != etag {
			t.Errorf("etag %q, want %q: the list did not change", got, etag)
		}
	})
	t.Run("only a few min_risk values are kept per set", func(t *testing.T) {
		for i := range 2 * maxMergedLists {
			list(float64(i))
		}
		bl.mu.Lock()
		n := len(bl.merged)
		bl.mu.Unlock()
		if n != maxMergedLists {
			t.Errorf("%d merged lists kept, want %d", n, maxMergedLists)
		}
	})
}
