package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"gopkg.in/yaml.v3"

	"github.com/rampart-ip/rampart/internal/shared"
	"github.com/rampart-ip/rampart/reputation"
	"github.com/rampart-ip/rampart/store"
)

var csListings = []string{
	"blocklist_de 45.142.120.11/32",
	"blocklist_de 80.94.95.1/32",
	"spamhaus_drop 185.220.100.0/22",
	"blocklist_de 2a10:c700::/29",
	"weak 77.83.36.5/32",
}

func newCSEcho(f *enfFixture) *echo.Echo {
	e := echo.New()
	NewCrowdSec(CrowdSecOptions{Service: f.svc, Role: enfRole, Now: f.clock, Logger: discardLogger()}).Register(e)
	return e
}

// swaggerDecision reads the Decision definition of CrowdSec's Local API
// description: its property types and required fields.
func swaggerDecision(t *testing.T) (props map[string]string, required []string) {
	t.Helper()
	raw, err := os.ReadFile(shared.Data(t, "crowdsec", "localapi_swagger.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Definitions map[string]struct {
			Properties map[string]struct {
				Type string `yaml:"type"`
			} `yaml:"properties"`
			Required []string `yaml:"required"`
		} `yaml:"definitions"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	d, ok := doc.Definitions["Decision"]
	if !ok {
		t.Fatal("no Decision definition")
	}
	props = map[string]string{}
	for k, v := range d.Properties {
		props[k] = v.Type
	}
	return props, d.Required
}

// csDecision is a decision as a bouncer reads it.
type csDecision struct {
	ID        int64  `json:"id"`
	Origin    string `json:"origin"`
	Type      string `json:"type"`
	Scope     string `json:"scope"`
	Value     string `json:"value"`
	Duration  string `json:"duration"`
	Until     string `json:"until"`
	Scenario  string `json:"scenario"`
	Simulated bool   `json:"simulated"`
}

// checkDecisions validates raw decisions against the swagger definition
// and decodes them.
func checkDecisions(t *testing.T, raw []json.RawMessage) []csDecision {
	t.Helper()
	props, required := swaggerDecision(t)
	var out []csDecision
	for _, r := range raw {
		var m map[string]any
		if err := json.Unmarshal(r, &m); err != nil {
			t.Fatalf("decision %s: %v", r, err)
		}
		for _, k := range required {
			if _, ok := m[k]; !ok {
				t.Errorf("decision %s lacks required %q", r, k)
			}
		}
		for k, v := range m {
			typ, ok := props[k]
			if !ok {
				t.Errorf("decision %s has %q, not in the swagger", r, k)
				continue
			}
			okType := false
			switch x := v.(type) {
			case string:
				okType = typ == "string"
			case bool:
				okType = typ == "boolean"
			case float64:
				okType = typ == "integer" && x == float64(int64(x))
			}
			if !okType {
				t.Errorf("decision %s: %q is %T, swagger says %s", r, k, v, typ)
			}
		}
		var d csDecision
		if err := json.Unmarshal(r, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

func decodeDecisions(t *testing.T, body []byte) []csDecision {
	t.Helper()
	if string(body) == "null" {
		return nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if len(raw) == 0 {
		t.Fatalf("an empty array %q, CrowdSec answers null", body)
	}
	return checkDecisions(t, raw)
}

func values(ds []csDecision) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Scope+":"+d.Value)
	}
	slices.Sort(out)
	return out
}

func TestCrowdSecAuth(t *testing.T) {
	e := newCSEcho(newEnfFixture(t, csListings...))
	routes := []struct{ method, target string }{
		{http.MethodGet, "/v1/decisions?ip=1.2.3.4"},
		{http.MethodHead, "/v1/decisions"},
		{http.MethodGet, "/v1/decisions/stream?startup=true"},
		{http.MethodHead, "/v1/decisions/stream"},
		{http.MethodPost, "/v1/usage-metrics"},
	}
	keys := []struct {
		name, key string
		ok        bool
	}{
		{"no key", "", false},
		{"a wrong key", "guess", false},
		{"a query key", "query-key", false},
		{"a bouncer key", "bouncer-key", true},
		{"an admin key", "admin-key", true},
	}
	for _, r := range routes {
		for _, k := range keys {
			name := r.method + " " + r.target + " with " + k.name
			if k.ok {
				name += " is let in"
			} else {
				name += " is forbidden"
			}
			t.Run(name, func(t *testing.T) {
				w := enfDo(e, r.method, r.target, "X-Api-Key", k.key)
				if !k.ok {
					if w.Code != http.StatusForbidden {
						t.Fatalf("status %d, want 403", w.Code)
					}
					if r.method != http.MethodHead && strings.TrimSpace(w.Body.String()) != `{"message":"access forbidden"}` {
						t.Errorf("body %q", w.Body)
					}
					return
				}
				if w.Code != http.StatusOK && w.Code != http.StatusCreated {
					t.Fatalf("status %d: %s", w.Code, w.Body)
				}
			})
		}
	}
}

func TestCrowdSecDecisions(t *testing.T) {
	e := newCSEcho(newEnfFixture(t, csListings...))
	tests := []struct {
		name, query string
		want        []string
	}{
		{"a listed host has its Ip decision", "ip=45.142.120.11", []string{"Ip:45.142.120.11"}},
		{"an address inside a listed range has the Range decision", "ip=185.220.101.9", []string{"Range:185.220.100.0/22"}},
		{"an IPv6 address inside a listed range has the Range decision", "ip=2a10:c700::1", []string{"Range:2a10:c700::/29"}},
		{"a clean address has none, as null", "ip=9.9.9.9", nil},
		{"a weakly listed address that is not blocked has none", "ip=77.83.36.5", nil},
		{"scope ip with value is the same as ip", "scope=ip&value=45.142.120.11", []string{"Ip:45.142.120.11"}},
		{"scope is case-insensitive", "scope=Ip&value=45.142.120.11", []string{"Ip:45.142.120.11"}},
		{"a range inside a listed range finds it", "range=185.220.101.0/24", []string{"Range:185.220.100.0/22"}},
		{"contains=false finds the decisions inside a range", "range=80.94.0.0/16&contains=false", []string{"Ip:80.94.95.1"}},
		{"a type other than ban has none", "ip=45.142.120.11&type=captcha", nil},
		{"type ban is answered", "ip=45.142.120.11&type=ban", []string{"Ip:45.142.120.11"}},
		{"a scope Rampart does not decide on has none", "scope=username&value=root", nil},
		{"no filter lists every decision", "", []string{"Ip:45.142.120.11", "Ip:80.94.95.1", "Range:185.220.100.0/22", "Range:2a10:c700::/29"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := enfDo(e, http.MethodGet, "/v1/decisions?"+tt.query, "X-Api-Key", "bouncer-key")
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			ds := decodeDecisions(t, w.Body.Bytes())
			if got := values(ds); strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("decisions %v, want %v", got, tt.want)
			}
			for _, d := range ds {
				dur, err := time.ParseDuration(d.Duration)
				if err != nil || dur <= 0 {
					t.Errorf("duration %q", d.Duration)
				}
				if d.Origin != "rampart" || d.Type != "ban" || d.Scenario == "" || d.ID <= 0 || d.Simulated {
					t.Errorf("decision %+v", d)
				}
			}
		})
	}
	for _, q := range []string{"ip=1.2.3", "range=nope", "ip=1.2.3.4&contains=maybe"} {
		t.Run("a malformed query "+q+" is 400 with a message", func(t *testing.T) {
			w := enfDo(e, http.MethodGet, "/v1/decisions?"+q, "X-Api-Key", "bouncer-key")
			var m map[string]string
			if w.Code != http.StatusBadRequest || json.Unmarshal(w.Body.Bytes(), &m) != nil || m["message"] == "" {
				t.Fatalf("status %d body %q", w.Code, w.Body)
			}
		})
	}
	t.Run("the scenario is the strongest source", func(t *testing.T) {
		ds := decodeDecisions(t, enfDo(e, http.MethodGet, "/v1/decisions?ip=185.220.101.9", "X-Api-Key", "bouncer-key").Body.Bytes())
		if len(ds) != 1 || ds[0].Scenario != "spamhaus_drop" {
			t.Fatalf("decisions %+v", ds)
		}
	})
}

// stream fetches one stream answer and validates it.
func stream(t *testing.T, e *echo.Echo, key, query string) (newDs, deleted []csDecision) {
	t.Helper()
	w := enfDo(e, http.MethodGet, "/v1/decisions/stream?"+query, "X-Api-Key", key)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var v struct {
		New     []json.RawMessage `json:"new"`
		Deleted []json.RawMessage `json:"deleted"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	return checkDecisions(t, v.New), checkDecisions(t, v.Deleted)
}

func TestCrowdSecStream(t *testing.T) {
	f := newEnfFixture(t, csListings...)
	e := newCSEcho(f)
	all := []string{"Ip:45.142.120.11", "Ip:80.94.95.1", "Range:185.220.100.0/22", "Range:2a10:c700::/29"}
	check := func(t *testing.T, key, query string, wantNew, wantDeleted []string) {
		t.Helper()
		n, d := stream(t, e, key, query)
		if got := values(n); strings.Join(got, " ") != strings.Join(wantNew, " ") {
			t.Errorf("new %v, want %v", got, wantNew)
		}
		if got := values(d); strings.Join(got, " ") != strings.Join(wantDeleted, " ") {
			t.Errorf("deleted %v, want %v", got, wantDeleted)
		}
	}
	t.Run("startup sends every current decision as new", func(t *testing.T) {
		check(t, "bouncer-key", "startup=true", all, nil)
	})
	t.Run("the next call sends nothing when nothing changed", func(t *testing.T) {
		check(t, "bouncer-key", "startup=false", nil, nil)
		check(t, "bouncer-key", "", nil, nil)
	})
	t.Run("a bouncer's first call without startup gets everything", func(t *testing.T) {
		check(t, "admin-key", "", all, nil)
	})
	t.Run("after a feed change only the changes are sent", func(t *testing.T) {
		f.set(t, "blocklist_de 45.142.120.11/32", "spamhaus_drop 185.220.100.0/22", "blocklist_de 2a10:c700::/29",
			"blocklist_de 91.92.93.94/32", "weak 77.83.36.5/32")
		check(t, "bouncer-key", "startup=false", []string{"Ip:91.92.93.94"}, []string{"Ip:80.94.95.1"})
		check(t, "bouncer-key", "startup=false", nil, nil)
	})
	t.Run("each bouncer has its own memory", func(t *testing.T) {
		check(t, "admin-key", "startup=false", []string{"Ip:91.92.93.94"}, []string{"Ip:80.94.95.1"})
	})
	t.Run("startup again resets the memory and sends everything", func(t *testing.T) {
		check(t, "bouncer-key", "startup=true", []string{"Ip:45.142.120.11", "Ip:91.92.93.94", "Range:185.220.100.0/22", "Range:2a10:c700::/29"}, nil)
	})
	t.Run("a decision that lapses with time is deleted", func(t *testing.T) {
		f.advance(60 * 24 * time.Hour)
		n, d := stream(t, e, "bouncer-key", "startup=false")
		if len(d) == 0 {
			t.Fatalf("nothing deleted after 60 days without confirmation (new %v)", values(n))
		}
	})
	t.Run("scopes limits the stream to the scopes asked", func(t *testing.T) {
		f2 := newEnfFixture(t, csListings...)
		e2 := newCSEcho(f2)
		n, _ := stream(t, e2, "bouncer-key", "startup=true&scopes=ip")
		if got := values(n); strings.Join(got, " ") != "Ip:45.142.120.11 Ip:80.94.95.1" {
			t.Errorf("scopes=ip gave %v", got)
		}
		n, _ = stream(t, e2, "bouncer-key-2", "startup=true&origins=crowdsec,cscli")
		if len(n) != 0 {
			t.Errorf("origins without rampart gave %v", values(n))
		}
	})
	t.Run("a malformed startup is 400", func(t *testing.T) {
		if w := enfDo(e, http.MethodGet, "/v1/decisions/stream?startup=yes", "X-Api-Key", "bouncer-key"); w.Code != http.StatusBadRequest {
			t.Fatalf("status %d", w.Code)
		}
	})
}

func TestCrowdSecStreamResendsLengthenedDecisions(t *testing.T) {
	src := &synthSource{gen: 1}
	src.set(synthDecision("45.142.120.11/32", enfNow.Add(2*time.Hour)))
	e := echo.New()
	NewCrowdSec(CrowdSecOptions{Service: src, Role: enfRole, Now: func() time.Time { return enfNow }}).Register(e)
	if n, _ := stream(t, e, "bouncer-key", "startup=true"); len(n) != 1 {
		t.Fatalf("startup sent %d", len(n))
	}
	src.set(synthDecision("45.142.120.11/32", enfNow.Add(2*time.Hour+time.Minute)))
	if n, _ := stream(t, e, "bouncer-key", ""); len(n) != 0 {
		t.Fatalf("a slightly later until was sent again: %v", values(n))
	}
	src.set(synthDecision("45.142.120.11/32", enfNow.Add(240*time.Hour)))
	n, _ := stream(t, e, "bouncer-key", "")
	if len(n) != 1 || n[0].Duration != "240h0m0s" {
		t.Fatalf("a much longer decision was not sent again with its duration: %+v", n)
	}
}

func TestCrowdSecUsageMetrics(t *testing.T) {
	e := newCSEcho(newEnfFixture(t, csListings...))
	post := func(body []byte) int {
		req := httptest.NewRequest(http.MethodPost, "/v1/usage-metrics", bytes.NewReader(body))
		req.Header.Set("X-Api-Key", "bouncer-key")
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		return w.Code
	}
	if got := post([]byte(`{"remediation_components":[{"name":"fw","type":"crowdsec-firewall-bouncer","metrics":[]}]}`)); got != http.StatusCreated {
		t.Errorf("metrics: status %d, want 201", got)
	}
	if got := post(bytes.Repeat([]byte("x"), csMaxMetricsBody+1)); got != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized metrics: status %d, want 413", got)
	}
}

// synthSource is a generated decision list for the stream's own tests
// and benchmark: what the reputation service yields, without scoring.
type synthSource struct {
	gen uint64
	ds  []reputation.Decision

	mu sync.Mutex
	bs *reputation.BlockSet // of gen, made when first asked for
}

func synthDecision(p string, until time.Time) reputation.Decision {
	return reputation.Decision{Prefix: mp(p), Judgement: reputation.Judgement{Score: 5, Verdict: reputation.VerdictDangerous, Action: reputation.ActionBlock}, Source: "blocklist_de", Until: until}
}

func (s *synthSource) set(ds ...reputation.Decision) { s.ds = ds; s.gen++ }

func (s *synthSource) Judge(netip.Addr) reputation.Judgement { return reputation.Judgement{} }
func (s *synthSource) Generation() uint64                    { return s.gen }
func (s *synthSource) Ready() bool                           { return true }
func (s *synthSource) BlockSet(now time.Time) *reputation.BlockSet {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bs == nil || s.bs.Generation() != s.gen {
		s.bs = reputation.NewBlockSet(s.gen, now, slices.Values(s.ds))
	}
	return s.bs
}

var _ DecisionSource = (*synthSource)(nil)

// synthDecisions generates n distinct IPv4 host decisions.
func synthDecisions(n int) []reputation.Decision {
	ds := make([]reputation.Decision, n)
	for i := range ds {
		a := netip.AddrFrom4([4]byte{byte(11 + i>>24), byte(i >> 16), byte(i >> 8), byte(i)})
		ds[i] = reputation.Decision{Prefix: netip.PrefixFrom(a, 32), Judgement: reputation.Judgement{Score: 5, Action: reputation.ActionBlock}, Source: "blocklist_de", Until: enfNow.Add(time.Duration(i%1000) * time.Hour)}
	}
	return ds
}

// countingWriter is a response writer that counts and drops the body.
type countingWriter struct {
	h http.Header
	n int64
}

func (w *countingWriter) Header() http.Header         { return w.h }
func (w *countingWriter) WriteHeader(int)             {}
func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// BenchmarkStreamStartupMillion writes a startup stream of a million
// decisions to a writer that drops them.
func BenchmarkStreamStartupMillion(b *testing.B) {
	src := &synthSource{gen: 1, ds: synthDecisions(1_000_000)}
	e := echo.New()
	NewCrowdSec(CrowdSecOptions{Service: src, Role: enfRole, Now: func() time.Time { return enfNow }}).Register(e)
	b.ReportAllocs()
	var bytes int64
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/v1/decisions/stream?startup=true", nil)
		req.Header.Set("X-Api-Key", "bouncer-key")
		w := &countingWriter{h: http.Header{}}
		e.ServeHTTP(w, req)
		bytes = w.n
	}
	b.ReportMetric(float64(bytes), "body-bytes")
}

func TestStreamOfManyDecisionsIsWrittenIncrementally(t *testing.T) {
	ds := synthDecisions(20_000)
	src := &synthSource{gen: 1, ds: ds}
	e := echo.New()
	NewCrowdSec(CrowdSecOptions{Service: src, Role: enfRole, Now: func() time.Time { return enfNow }}).Register(e)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	writes := 0
	go func() {
		defer close(done)
		req := httptest.NewRequest(http.MethodGet, "/v1/decisions/stream?startup=true", nil)
		req.Header.Set("X-Api-Key", "bouncer-key")
		e.ServeHTTP(&pipeWriter{h: http.Header{}, w: pw, writes: &writes}, req)
		pw.Close()
	}()
	var v struct {
		New     []csDecision `json:"new"`
		Deleted []csDecision `json:"deleted"`
	}
	if err := json.NewDecoder(pr).Decode(&v); err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, pr)
	<-done
	if len(v.New) != len(ds) || len(v.Deleted) != 0 {
		t.Fatalf("%d new, %d deleted", len(v.New), len(v.Deleted))
	}
	if writes < 10 {
		t.Fatalf("the body came in %d writes, want it written as it is made", writes)
	}
}

type pipeWriter struct {
	h      http.Header
	w      io.Writer
	writes *int
}

func (w *pipeWriter) Header() http.Header { return w.h }
func (w *pipeWriter) WriteHeader(int)     {}
func (w *pipeWriter) Write(p []byte) (int, error) {
	*w.writes++
	return w.w.Write(p)
}

// bench1MService is a real reputation service over 1M listed IPv4 hosts
// and 10k ranges from 20 feeds, built once for the benchmarks of a run.
var bench1MService = sync.OnceValue(func() *reputation.Service {
	r := rand.New(rand.NewPCG(1, 2))
	var d reputation.Data
	for i := range 20 {
		d.Sources = append(d.Sources, reputation.SourceInfo{
			Name: fmt.Sprintf("feed-%02d", i), Kind: store.KindFeed, Provider: fmt.Sprintf("provider-%02d", i),
			Category: "bruteforce", Weight: 0.9, ConfirmedAt: enfNow.Add(-time.Hour),
		})
	}
	since := func() time.Time { return enfNow.Add(-time.Duration(r.Int64N(int64(30 * 24 * time.Hour)))) }
	for range 1_000_000 {
		a := netip.AddrFrom4([4]byte{byte(1 + r.IntN(223)), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		d.Listings = append(d.Listings, store.Listing{Source: d.Sources[r.IntN(20)].Name, Prefix: netip.PrefixFrom(a, 32), Since: since()})
	}
	for range 10_000 {
		a := netip.AddrFrom4([4]byte{byte(1 + r.IntN(223)), byte(r.Uint32()), byte(r.Uint32()), 0})
		p, _ := a.Prefix(16 + r.IntN(9))
		d.Listings = append(d.Listings, store.Listing{Source: d.Sources[r.IntN(20)].Name, Prefix: p, Since: since()})
	}
	now := func() time.Time { return enfNow }
	svc := reputation.NewService(reputation.ServiceOptions{Now: now, Logger: discardLogger()})
	svc.Swap(reputation.Build(d, reputation.BuildOptions{Now: now}))
	return svc
})

// heapUse is what one call did to the heap: the most it grew by while
// running (sampled every millisecond, live and not yet collected
// objects), what it allocated in all, and what stayed live after it.
type heapUse struct{ peak, allocated, retained uint64 }

func measureHeap(f func()) heapUse {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	sample := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	rtmetrics.Read(sample)
	base := sample[0].Value.Uint64()
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		var peak uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			rtmetrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-stop:
				done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	peak := <-done
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	runtime.GC()
	runtime.ReadMemStats(&after)
	return heapUse{peak: peak - min(peak, base), allocated: allocated, retained: after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)}
}

func (u heapUse) report(b *testing.B, prefix string) {
	b.ReportMetric(float64(u.peak)/(1<<20), prefix+"-peak-heap-MB")
	b.ReportMetric(float64(u.allocated)/(1<<20), prefix+"-alloc-MB")
	b.ReportMetric(float64(u.retained)/(1<<20), prefix+"-retained-MB")
}

// BenchmarkCrowdSecStartup1M writes a bouncer's startup stream from a
// real service over 1M listed hosts to a writer that drops it. The first
// stream computes the block set (reported as first-*); the timed ones
// read the cached set, each with a fresh bouncer memory.
func BenchmarkCrowdSecStartup1M(b *testing.B) {
	svc := bench1MService()
	e := echo.New()
	NewCrowdSec(CrowdSecOptions{Service: svc, Role: enfRole, Now: func() time.Time { return enfNow }}).Register(e)
	var bytes int64
	stream := func() {
		req := httptest.NewRequest(http.MethodGet, "/v1/decisions/stream?startup=true", nil)
		req.Header.Set("X-Api-Key", "bouncer-key")
		w := &countingWriter{h: http.Header{}}
		e.ServeHTTP(w, req)
		bytes = w.n
	}
	start := time.Now()
	first := measureHeap(stream)
	firstTime := time.Since(start)
	b.ReportAllocs()
	for b.Loop() {
		stream()
	}
	// Reported after the loop, which resets what was reported before it.
	b.ReportMetric(float64(firstTime.Milliseconds()), "first-ms")
	first.report(b, "first")
	b.ReportMetric(float64(bytes), "body-bytes")
	b.ReportMetric(float64(svc.BlockSet(enfNow).Len()), "decisions")
}
