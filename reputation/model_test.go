package reputation

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/misp"
)

var now = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// testScoring is the documented default scoring configuration, spelled out
// so that the tests pin the defaults docs/scoring.md states.
func testScoring() config.Scoring {
	return config.Scoring{
		Thresholds:          config.Thresholds{Block: 30, Challenge: 60, Triage: 90},
		DefaultLifetime:     misp.Duration(14 * 24 * time.Hour),
		DecaySpeed:          2,
		WarninglistDiscount: 0.25,
		WarninglistTrust:    0.95,
		WarninglistQuorum:   3,
		Grace:               misp.Duration(24 * time.Hour),
		HistoryWeight:       0.6,
		ContextCap:          0.45,
	}
}

func feed(name, provider string) *SourceInfo {
	return &SourceInfo{Name: name, Kind: "feed", Provider: provider, Category: "attacks", ConfirmedAt: now}
}

// listed is an open listing of addr's /32 confirmed ago before now.
func listed(src *SourceInfo, ago time.Duration) Match {
	return Match{Source: src, Prefix: netip.MustParsePrefix("198.51.100.7/32"),
		Since: now.Add(-30 * 24 * time.Hour), LastSeen: now.Add(-ago)}
}

// ended is a listing that ended ago before now.
func ended(src *SourceInfo, ago time.Duration) Match {
	end := now.Add(-ago)
	return Match{Source: src, Prefix: netip.MustParsePrefix("198.51.100.7/32"),
		Since: end.Add(-10 * 24 * time.Hour), LastSeen: end, Ended: end}
}

const day = 24 * time.Hour

func TestScore(t *testing.T) {
	addr := netip.MustParseAddr("198.51.100.7")
	blde, gs := feed("blocklist_de", "blocklist.de"), feed("greensnow", "greensnow.co")
	ipsum3 := &SourceInfo{Name: "ipsum_level3", Provider: "IPsum", Kind: "feed"}
	ipsum5 := &SourceInfo{Name: "ipsum_level5", Provider: "IPsum", Kind: "feed"}
	tor := &SourceInfo{Name: "tor_exits", Provider: "iplists.firehol.org", Category: "anonymizers", Kind: "feed"}
	spamhaus := &SourceInfo{Name: "spamhaus_drop", Provider: "Spamhaus", Kind: "feed"}
	trusted := &SourceInfo{Name: "own_honeypots", Provider: "us", Kind: "feed", Weight: 0.97}
	low := &SourceInfo{Name: "noisy", Provider: "someone", Kind: "feed", Weight: 0.5}
	event1 := &SourceInfo{Name: "misp-event-1", Kind: "misp-event", ThreatLevel: 1}
	event4 := &SourceInfo{Name: "misp-event-4", Kind: "misp-event", ThreatLevel: 4,
		Tags: []string{"tlp:white", `false-positive:risk="high"`}}
	dns := []Warning{{List: "List of known IPv4 public DNS resolvers", Match: "198.51.100.0/24"}}
	vpn := []Warning{{List: "Specialized list of vpn-ipv4 addresses belonging to common VPN providers and datacenters",
		Match: "198.51.96.0/20"}}

	tests := []struct {
		name    string
		ev      Evidence
		score   float64
		action  string
		verdict string
		desc    string
		factors []string
	}{
		{
			name:  "an unlisted address with no context has no evidence of threat",
			ev:    Evidence{Addr: addr, Context: Context{Announced: true}},
			score: 100, action: ActionAllow, verdict: VerdictNone, desc: "no evidence of threat",
		},
		{
			name: "one fresh listing by a default-weighted feed blocks",
			ev:   Evidence{Addr: addr, Matches: []Match{listed(blde, time.Hour)}},
			// 100 × (1 − 0.8)
			score: 20, action: ActionBlock, verdict: VerdictDangerous, desc: "listed by 1 feed",
			factors: []string{"feed"},
		},
		{
			name: "two independent feeds multiply",
			ev:   Evidence{Addr: addr, Matches: []Match{listed(blde, 0), listed(gs, 0)}},
			// 100 × 0.2 × 0.2
			score: 4, action: ActionBlock, verdict: VerdictDangerous, desc: "listed by 2 feeds",
			factors: []string{"feed", "feed"},
		},
		{
			name: "two lists of one provider count once, the stronger",
			ev:   Evidence{Addr: addr, Matches: []Match{listed(ipsum3, 0), listed(ipsum5, 0)}},
			// level 5 weight 0.85; level 3 counted under it
			score: 15, action: ActionBlock, verdict: VerdictDangerous, desc: "listed by 2 feeds",
			factors: []string{"feed", "feed"},
		},
		{
			name: "a listing confirmed 3.5 days past the grace has decayed to challenge",
			ev:   Evidence{Addr: addr, Matches: []Match{listed(blde, day+84*time.Hour)}},
			// decay 1 − (3.5/14)^(1/2) = 0.5; 100 × (1 − 0.8 × 0.5)
			score: 60, action: ActionChallenge, verdict: VerdictSuspicious, desc: "listed by 1 feed",
			factors: []string{"feed"},
		},
		{
			name:  "a listing not confirmed for longer than its lifetime has expired",
			ev:    Evidence{Addr: addr, Matches: []Match{listed(blde, day+15*day)}},
			score: 100, action: ActionAllow, verdict: VerdictNone, desc: "listed by 1 feed, evidence expired",
			factors: []string{"feed"},
		},
		{
			name: "history only decays from the episode's end",
			ev:   Evidence{Addr: addr, Matches: []Match{ended(blde, 84*time.Hour)}, Context: Context{Announced: true}},
			// 100 × (1 − 0.8 × 0.6 × 0.5)
			score: 76, action: ActionAllow, verdict: VerdictTriage, desc: "listed in the past by 1 feed",
			factors: []string{"feed"},
		},
		{
			name: "a feed's own lifetime overrides the default",
			ev: Evidence{Addr: addr, Matches: []Match{listed(&SourceInfo{Name: "short", Kind: "feed",
				Lifetime: 4 * day}, day+day)}},
			// decay 1 − (1/4)^(1/2) = 0.5
			score: 60, action: ActionChallenge, verdict: VerdictSuspicious, desc: "listed by 1 feed",
			factors: []string{"feed"},
		},
		{
			name:  "Tor exits are anonymizers and challenged, not blocked",
			ev:    Evidence{Addr: addr, Matches: []Match{listed(tor, 0)}},
			score: 55, action: ActionChallenge, verdict: VerdictSuspicious, desc: "listed by 1 feed",
			factors: []string{"feed"},
		},
		{
			name:  "a feed configured with a lower weight says otherwise",
			ev:    Evidence{Addr: addr, Matches: []Match{listed(low, 0)}},
			score: 50, action: ActionChallenge, verdict: VerdictSuspicious, desc: "listed by 1 feed",
			factors: []string{"feed"},
		},
		{
			name:  "a high threat level MISP event blocks",
			ev:    Evidence{Addr: addr, Matches: []Match{listed(event1, 0)}},
			score: 10, action: ActionBlock, verdict: VerdictDangerous, desc: "listed by 1 MISP event",
			factors: []string{"misp-event"},
		},
		{
			name: "an undefined threat level event tagged as a likely false positive is only triaged",
			ev:   Evidence{Addr: addr, Matches: []Match{listed(event4, 0)}},
			// 0.5 × 0.5
			score: 75, action: ActionAllow, verdict: VerdictTriage, desc: "listed by 1 MISP event",
			factors: []string{"misp-event"},
		},
		{
			name: "a warninglisted address listed by one noisy feed is not dangerous",
			ev:   Evidence{Addr: addr, Matches: []Match{listed(blde, 0)}, Warnings: dns},
			// 100 × (1 − 0.25 × 0.8): feed factor 0.2, warninglist factor 4
			score: 80, action: ActionAllow, verdict: VerdictTriage,
			desc:    "listed by 1 feed; on warninglist List of known IPv4 public DNS resolvers",
			factors: []string{"feed", "warninglist"},
		},
		{
			name: "a bruteforcer listed in a cloud range is still blocked",
			ev:   Evidence{Addr: addr, Matches: []Match{listed(blde, 0)}, Warnings: vpn},
			// 100 × (1 − 0.9 × 0.8): feed factor 0.2, warninglist factor 1.4
			score: 28, action: ActionBlock, verdict: VerdictDangerous,
			desc:    "listed by 1 feed; on warninglist " + vpn[0].List,
			factors: []string{"feed", "warninglist"},
		},
		{
			name: "a range listing in a cloud range takes the full discount",
			ev: Evidence{Addr: addr, Warnings: vpn, Matches: []Match{{Source: blde,
				Prefix: netip.MustParsePrefix("198.51.100.0/24"), Since: now.Add(-day), LastSeen: now}}},
			score: 80, action: ActionAllow, verdict: VerdictTriage,
			desc:    "listed by 1 feed; on warninglist " + vpn[0].List,
			factors: []string{"feed", "warninglist"},
		},
		{
			name:  "a benign-service hit beside a shared one takes the full discount",
			ev:    Evidence{Addr: addr, Matches: []Match{listed(blde, 0)}, Warnings: append(append([]Warning{}, vpn...), dns...)},
			score: 80, action: ActionAllow, verdict: VerdictTriage,
			desc:    "listed by 1 feed; on warninglist " + vpn[0].List,
			factors: []string{"feed", "warninglist"},
		},
		{
			name: "an unlisted address in a cloud range gets the hosting signal, undiscounted",
			ev:   Evidence{Addr: addr, Context: Context{Announced: true}, Warnings: vpn},
			// 100 × (1 − 0.45 × 0.2)
			score: 91, action: ActionAllow, verdict: VerdictNone,
			desc:    "not listed; hosting network; on warninglist " + vpn[0].List,
			factors: []string{"hosting", "warninglist"},
		},
		{
			name: "a small ASN density is described with its real size",
			ev:   Evidence{Addr: addr, Context: Context{Announced: true, ASN: 23969, ASNDensity: 0.000032}},
			// strength 1 − (0.00002 / 0.000032)^0.3 = 0.131512; 100 × (1 − 0.45 × 0.131512)
			score: 94.082, action: ActionAllow, verdict: VerdictNone,
			desc:    "not listed; AS23969 has 0.0032% of its addresses listed",
			factors: []string{"asn-density"},
		},
		{
			name:  "an ASN density at or below the floor is not evidence",
			ev:    Evidence{Addr: addr, Context: Context{Announced: true, ASN: 23969, ASNDensity: 0.000012}},
			score: 100, action: ActionAllow, verdict: VerdictNone, desc: "no evidence of threat",
		},
		{
			name:  "a warninglisted address listed by a trusted source still blocks",
			ev:    Evidence{Addr: addr, Matches: []Match{listed(trusted, 0)}, Warnings: dns},
			score: 3, action: ActionBlock, verdict: VerdictDangerous,
			desc:    "listed by 1 feed; on warninglist List of known IPv4 public DNS resolvers",
			factors: []string{"feed", "warninglist"},
		},
		{
			name: "a warninglisted address listed by three independent providers still blocks",
			ev: Evidence{Addr: addr, Matches: []Match{listed(blde, 0), listed(gs, 0), listed(spamhaus, 0)},
				Warnings: dns},
			// 100 × 0.1 × 0.2 × 0.2
			score: 0.4, action: ActionBlock, verdict: VerdictDangerous,
			desc:    "listed by 3 feeds; on warninglist List of known IPv4 public DNS resolvers",
			factors: []string{"feed", "feed", "feed", "warninglist"},
		},
		{
			name: "a listed private address is discounted like a warninglist hit",
			ev:   Evidence{Addr: netip.MustParseAddr("10.1.2.3"), Matches: []Match{listed(event1, 0)}},
			// 100 × (1 − 0.25 × 0.9)
			score: 77.5, action: ActionAllow, verdict: VerdictTriage,
			desc: "listed by 1 MISP event; private address space", factors: []string{"misp-event", "reserved"},
		},
		{
			name:  "a private address listed by a trusted source still blocks",
			ev:    Evidence{Addr: netip.MustParseAddr("10.1.2.3"), Matches: []Match{listed(trusted, 0)}},
			score: 3, action: ActionBlock, verdict: VerdictDangerous,
			desc: "listed by 1 feed; private address space", factors: []string{"feed", "reserved"},
		},
		{
			name: "a reserved address's context is not weighed",
			ev: Evidence{Addr: netip.MustParseAddr("192.168.1.1"), Context: Context{Announced: false, NeighboursNear: 4},
				Matches: []Match{ended(blde, 84*time.Hour)}},
			// 100 × (1 − 0.25 × 0.8 × 0.6 × 0.5)
			score: 94, action: ActionAllow, verdict: VerdictNone,
			desc: "listed in the past by 1 feed; private address space", factors: []string{"feed", "reserved"},
		},
		{
			name: "an unlisted address with three listed neighbours in its /24",
			ev:   Evidence{Addr: addr, Context: Context{NeighboursNear: 3, Announced: true}},
			// strength 1 − 4^−0.7 = 0.621071; 100 × (1 − 0.45 × 0.621071)
			score: 72.0518, action: ActionAllow, verdict: VerdictTriage,
			desc: "not listed; 3 listed neighbours in its /24", factors: []string{"neighbours"},
		},
		{
			name: "an unlisted IPv6 address names its /64",
			ev: Evidence{Addr: netip.MustParseAddr("2001:db8::7"),
				Context: Context{NeighboursNear: 1, Announced: true}},
			// strength 1 − 2^−0.7 = 0.384428; 100 × (1 − 0.45 × 0.384428)
			score: 82.7007, action: ActionAllow, verdict: VerdictTriage,
			desc: "not listed; 1 listed neighbour in its /64", factors: []string{"neighbours"},
		},
		{
			name: "an unlisted Tor exit is triaged",
			ev:   Evidence{Addr: addr, Context: Context{Announced: true}, Metadata: Metadata{Tor: true, Anonymous: true}},
			// 100 × (1 − 0.45 × 0.7)
			score: 68.5, action: ActionAllow, verdict: VerdictTriage,
			desc: "not listed; Tor exit", factors: []string{"anonymizer"},
		},
		{
			name: "context alone is capped below block",
			ev: Evidence{Addr: addr, Context: Context{NeighboursNear: 200, NeighboursFar: 5000,
				NearestDistance: 1, ASN: 64500, ASNDensity: 0.5, Announced: false},
				Metadata: Metadata{Tor: true, Hosting: true}},
			// strength 1 − 201^−0.7 × 5001^−0.05 × 0.717647 × (0.00004)^0.3 × 0.05 × 0.3 × 0.8
			// ≈ 0.999999; 200 listed neighbours in the /24 are the strongest signal.
			score: 55.0005, action: ActionChallenge, verdict: VerdictSuspicious,
			desc: "not listed; 200 listed neighbours in its /24",
			factors: []string{"neighbours", "neighbours", "proximity", "asn-density", "unannounced",
				"anonymizer", "hosting"},
		},
		{
			name: "routed-prefix and country density weigh on an unlisted address",
			ev: Evidence{Addr: addr, Context: Context{NetworkListed: 2, NetworkBits: 24,
				CountryDensity: 2e-5, Announced: true}, Metadata: Metadata{Country: "DE"}},
			// ρ = 2/256: 0.05 × 0.0078125 / 0.0128125 = 0.030488; country
			// 1 − 0.5^0.1 = 0.066967; strength 1 − 0.969512 × 0.933033 = 0.095413
			score: 95.7064, action: ActionAllow, verdict: VerdictNone,
			desc:    "not listed; DE has 0.002% of its addresses listed",
			factors: []string{"network-density", "country-density"},
		},
		{
			name: "a listing in the future of the scoring time is not evidence",
			ev: Evidence{Addr: addr, Context: Context{Announced: true}, Matches: []Match{{Source: blde,
				Prefix: netip.MustParsePrefix("198.51.100.0/24"), Since: now.Add(time.Hour), LastSeen: now.Add(time.Hour)}}},
			score: 100, action: ActionAllow, verdict: VerdictNone, desc: "no evidence of threat",
		},
	}
	m := NewModel(testScoring())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := m.Score(&tt.ev, now)
			if math.Abs(s.Score-tt.score) > 2e-4 {
				t.Errorf("score = %v, want %v; reasons %+v", s.Score, tt.score, s.Reasons)
			}
			if s.Action != tt.action || s.Verdict != tt.verdict {
				t.Errorf("action, verdict = %q, %q; want %q, %q", s.Action, s.Verdict, tt.action, tt.verdict)
			}
			if s.Description != tt.desc {
				t.Errorf("description = %q, want %q", s.Description, tt.desc)
			}
			var factors []string
			for _, r := range s.Reasons {
				factors = append(factors, r.Factor)
				if r.Detail == "" {
					t.Errorf("reason %q has no detail", r.Factor)
				}
			}
			if !slicesEqual(factors, tt.factors) {
				t.Errorf("factors = %q, want %q; reasons %+v", factors, tt.factors, s.Reasons)
			}
			checkProduct(t, s)
		})
	}
}

func slicesEqual(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}

// checkProduct checks that the reasons multiply out to the score and that
// every score under 100 is explained.
func checkProduct(t *testing.T, s Scored) {
	t.Helper()
	p := 100.0
	for _, r := range s.Reasons {
		p *= r.Weight
	}
	if math.Abs(p-s.Score) > 1e-3 {
		t.Errorf("reasons multiply out to %v, score is %v: %+v", p, s.Score, s.Reasons)
	}
	if s.Score < 100 && len(s.Reasons) == 0 {
		t.Errorf("score %v has no reasons", s.Score)
	}
}

func TestScoreFlags(t *testing.T) {
	addr := netip.MustParseAddr("198.51.100.7")
	blde, gs := feed("blocklist_de", "blocklist.de"), feed("greensnow", "greensnow.co")
	m := NewModel(testScoring())

	t.Run("an active listing sets is_IoC and is_Active, not historical", func(t *testing.T) {
		s := m.Score(&Evidence{Addr: addr, Matches: []Match{listed(blde, 0), ended(gs, day)}}, now)
		if !s.IsIoC || !s.IsActive || s.Historical {
			t.Errorf("IsIoC, IsActive, Historical = %v, %v, %v", s.IsIoC, s.IsActive, s.Historical)
		}
		if !reflect.DeepEqual(s.Blacklists, []string{"blocklist_de", "greensnow"}) || !reflect.DeepEqual(s.Type, []string{"attacks"}) {
			t.Errorf("blacklists %q, type %q", s.Blacklists, s.Type)
		}
		if s.Strongest != "blocklist_de" {
			t.Errorf("strongest = %q", s.Strongest)
		}
		if want := now.Add(-30 * day); !s.FirstSeen.Equal(want) {
			t.Errorf("first seen %v, want %v", s.FirstSeen, want)
		}
		if !s.LastSeen.Equal(now) {
			t.Errorf("last seen %v, want %v", s.LastSeen, now)
		}
	})
	t.Run("an ended listing alone is historical", func(t *testing.T) {
		s := m.Score(&Evidence{Addr: addr, Matches: []Match{ended(gs, day)}}, now)
		if !s.IsIoC || s.IsActive || !s.Historical {
			t.Errorf("IsIoC, IsActive, Historical = %v, %v, %v", s.IsIoC, s.IsActive, s.Historical)
		}
	})
	t.Run("context is not weighed for a listed address", func(t *testing.T) {
		s := m.Score(&Evidence{Addr: addr, Matches: []Match{listed(blde, 0)},
			Context: Context{NeighboursNear: 10, Announced: true}}, now)
		if s.Score != 20 {
			t.Errorf("score = %v, want 20", s.Score)
		}
	})
}

// TestFreshDefaultListingsBlock pins the /ip contract: every fresh listing
// by a source at its default weight, other than anonymizer, scanner and
// low-confidence lists, is dangerous and blocked, up to the grace.
func TestFreshDefaultListingsBlock(t *testing.T) {
	sources := []*SourceInfo{
		{Name: "blocklist_de", Provider: "blocklist.de", Kind: "feed"},
		{Name: "firehol_level1", Provider: "iplists.firehol.org", Kind: "feed"},
		{Name: "spamhaus_drop", Provider: "Spamhaus", Kind: "feed"},
		{Name: "et_compromised", Provider: "rules.emergingthreats.net", Kind: "feed"},
		{Name: "greensnow", Provider: "greensnow.co", Kind: "feed"},
		{Name: "Feodo IP Blocklist", Provider: "abuse.ch", Kind: "feed"},
		{Name: "IPsum (aggregation of all feeds) - level 3 - low false positives", Provider: "IPsum", Kind: "feed"},
		{Name: "ci-badguys.txt", Provider: "cinsscore.com", Kind: "feed"},
		{Name: "misp-event-high", Kind: "misp-event", ThreatLevel: 1},
		{Name: "misp-event-medium", Kind: "misp-event", ThreatLevel: 2},
	}
	m := NewModel(testScoring())
	for _, src := range sources {
		for _, ago := range []time.Duration{0, time.Hour, 23 * time.Hour} {
			t.Run(src.Name+" confirmed "+ago.String()+" ago is blocked", func(t *testing.T) {
				ev := Evidence{Addr: netip.MustParseAddr("198.51.100.7"), Matches: []Match{listed(src, ago)}}
				s := m.Score(&ev, now)
				if !s.IsIoC || !s.IsActive || s.Verdict != VerdictDangerous || s.Action != ActionBlock {
					t.Errorf("got %+v", s)
				}
			})
		}
	}
}

func TestScoreIsDeterministic(t *testing.T) {
	srcs := []*SourceInfo{feed("a", "p1"), feed("b", "p2"), feed("c", "p2"), feed("d", ""), feed("e", "p3")}
	var ms []Match
	for i, src := range srcs {
		ms = append(ms, listed(src, time.Duration(i)*30*time.Hour), ended(src, time.Duration(i+1)*day))
	}
	ev := Evidence{Addr: netip.MustParseAddr("198.51.100.7"), Matches: ms,
		Warnings: []Warning{{List: "x", Match: "198.51.100.0/24"}}}
	m := NewModel(testScoring())
	want := m.Score(&ev, now)
	checkProduct(t, want)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		shuffled := ev
		shuffled.Matches = append([]Match(nil), ms...)
		rng.Shuffle(len(shuffled.Matches), func(i, j int) {
			shuffled.Matches[i], shuffled.Matches[j] = shuffled.Matches[j], shuffled.Matches[i]
		})
		if got := m.Score(&shuffled, now); !reflect.DeepEqual(got, want) {
			t.Fatalf("shuffle %d: got %+v, want %+v", i, got, want)
		}
	}
}

func TestReasonsMultiplyOut(t *testing.T) {
	// Random evidence of every kind: the reasons always multiply out to
	// the score, which stays within 0 to 100.
	rng := rand.New(rand.NewPCG(3, 4))
	m := NewModel(testScoring())
	providers := []string{"", "p1", "p2", "p3", "IPsum"}
	for i := range 500 {
		var ev Evidence
		ev.Addr = netip.AddrFrom4([4]byte{byte(rng.IntN(256)), 1, 2, 3})
		for j := range rng.IntN(6) {
			src := &SourceInfo{Name: "s" + string(rune('a'+j)), Provider: providers[rng.IntN(len(providers))],
				Kind: "feed", ThreatLevel: rng.IntN(5)}
			if rng.IntN(3) == 0 {
				src.Weight = rng.Float64()
			}
			if rng.IntN(2) == 0 {
				ev.Matches = append(ev.Matches, listed(src, time.Duration(rng.IntN(30*24))*time.Hour))
			} else {
				ev.Matches = append(ev.Matches, ended(src, time.Duration(rng.IntN(30*24))*time.Hour))
			}
		}
		ev.Context = Context{NeighboursNear: rng.IntN(20), NeighboursFar: rng.IntN(300),
			NearestDistance: uint32(rng.IntN(300)), ASN: 64500, ASNDensity: rng.Float64() / 10, Announced: rng.IntN(4) > 0}
		ev.Metadata = Metadata{Tor: rng.IntN(5) == 0, VPN: rng.IntN(5) == 0, Hosting: rng.IntN(3) == 0}
		if rng.IntN(3) == 0 {
			ev.Warnings = []Warning{{List: "w", Match: "1.0.0.0/8"}}
		}
		s := m.Score(&ev, now)
		if s.Score < 0 || s.Score > 100 {
			t.Fatalf("case %d: score %v out of range", i, s.Score)
		}
		if len(ev.Matches) == 0 && s.Score <= 100*(1-0.45) {
			t.Fatalf("case %d: context alone scored %v, below the cap", i, s.Score)
		}
		checkProduct(t, s)
	}
}

func TestNewModelDefaults(t *testing.T) {
	t.Run("a zero configuration takes the documented defaults", func(t *testing.T) {
		if got, want := *NewModel(config.Scoring{}), *NewModel(testScoring()); got != want {
			t.Errorf("zero config model %+v, want %+v", got, want)
		}
	})
	t.Run("negative values turn grace, history and context off", func(t *testing.T) {
		cfg := testScoring()
		cfg.Grace, cfg.HistoryWeight, cfg.ContextCap = -1, -1, -1
		m := NewModel(cfg)
		ev := Evidence{Addr: netip.MustParseAddr("198.51.100.7"), Context: Context{NeighboursNear: 5, Announced: true},
			Matches: []Match{ended(feed("a", "p"), time.Hour)}}
		if s := m.Score(&ev, now); s.Score != 100 {
			t.Errorf("score = %v, want 100 (reasons %+v)", s.Score, s.Reasons)
		}
		ev = Evidence{Addr: netip.MustParseAddr("198.51.100.7"), Matches: []Match{listed(feed("a", "p"), 14*day)}}
		if s := m.Score(&ev, now); s.Score != 100 {
			t.Errorf("score without grace = %v, want 100", s.Score)
		}
	})
	t.Run("triage is never below challenge", func(t *testing.T) {
		cfg := testScoring()
		cfg.Thresholds = config.Thresholds{Block: 50, Challenge: 95}
		m := NewModel(cfg)
		if m.triage != 95 {
			t.Errorf("triage = %v, want 95", m.triage)
		}
	})
}

func TestSourceWeights(t *testing.T) {
	tests := []struct {
		name  string
		src   SourceInfo
		w     float64
		basis string
	}{
		{"a configured weight is used as is", SourceInfo{Name: "x", Weight: 0.3, Tags: []string{"false-positive"}}, 0.3, "configured"},
		{"an unknown feed has the default weight", SourceInfo{Name: "blocklist_de", Provider: "blocklist.de"}, 0.8, "default"},
		{"Spamhaus DROP is curated", SourceInfo{Name: "spamhaus_drop", Provider: "iplists.firehol.org"}, 0.9, "curated list"},
		{"FireHOL level1 is curated", SourceInfo{Name: "firehol_level1", Provider: "iplists.firehol.org"}, 0.9, "curated list"},
		{"FireHOL level3 is not", SourceInfo{Name: "firehol_level3", Provider: "iplists.firehol.org"}, 0.8, "default"},
		{"Feodo is a C2 tracker", SourceInfo{Name: "Feodo IP Blocklist", Provider: "abuse.ch"}, 0.85, "C2 or botnet tracker"},
		{"Tor exits are an anonymizer list", SourceInfo{Name: "Tor exit nodes", Provider: "TOR Node List from dan.me.uk"}, 0.45, "anonymizer list"},
		{"an anonymizers category wins over the provider", SourceInfo{Name: "exits", Provider: "Spamhaus", Category: "anonymizers"}, 0.45, "anonymizer list"},
		{"words are whole: a monitor is not Tor", SourceInfo{Name: "monitor_list"}, 0.8, "default"},
		{"scanner lists are low", SourceInfo{Name: "shodan", Category: "scanners"}, 0.5, "scanner list"},
		{"IPsum level 1", SourceInfo{Name: "IPsum (aggregation of all feeds) - level 1 - lot of false positives", Provider: "IPsum"}, 0.55, "IPsum level 1"},
		{"IPsum level from a levelN word", SourceInfo{Name: "ipsum_level7"}, 0.92, "IPsum level 7"},
		{"IPsum level from a tag", SourceInfo{Name: "ipsum", Tags: []string{"level:4"}}, 0.8, "IPsum level 4"},
		{"IPsum levels above 8 count as 8", SourceInfo{Name: "ipsum level 10"}, 0.95, "IPsum level 8+"},
		{"IPsum without a level", SourceInfo{Name: "ipsum"}, 0.55, "IPsum"},
		{"MISP threat level high", SourceInfo{Kind: "misp-event", ThreatLevel: 1}, 0.9, "MISP threat level high"},
		{"MISP threat level low", SourceInfo{Kind: "misp-event", ThreatLevel: 3}, 0.6, "MISP threat level low"},
		{"MISP threat level undefined", SourceInfo{Kind: "misp-event", ThreatLevel: 4}, 0.5, "MISP threat level undefined"},
		{"an out-of-range threat level is unknown", SourceInfo{Kind: "misp-event", ThreatLevel: 9}, 0.5, "MISP threat level unknown"},
		{"TLP tags do not change the weight", SourceInfo{Kind: "misp-event", ThreatLevel: 1, Tags: []string{"tlp:clear"}}, 0.9, "MISP threat level high"},
		{"confidence tags lower the weight", SourceInfo{Kind: "misp-event", ThreatLevel: 1,
			Tags: []string{`misp:confidence-level="unconfident"`}}, 0.36, "MISP threat level high"},
		{"false-positive risk tags lower the weight", SourceInfo{Name: "x", Tags: []string{`False-Positive:risk="medium"`}}, 0.6, "default"},
		{"a default weight never reaches certainty", SourceInfo{Kind: "misp-event", ThreatLevel: 1,
			Tags: []string{`misp:confidence-level="completely-confident"`, `admiralty-scale:source-reliability="a"`}}, 0.99, "MISP threat level high"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, basis, _ := weightOf(&tt.src)
			if math.Abs(w-tt.w) > 1e-9 || basis != tt.basis {
				t.Errorf("weight = %v (%s), want %v (%s)", w, basis, tt.w, tt.basis)
			}
		})
	}
}

func TestDecay(t *testing.T) {
	tests := []struct {
		name  string
		age   time.Duration
		speed float64
		want  float64
	}{
		{"nothing has decayed at age zero", 0, 2, 1},
		{"a quarter of the lifetime at speed 2 leaves half", 30 * day, 2, 0.5},
		{"a quarter of the lifetime at speed 1 leaves three quarters", 30 * day, 1, 0.75},
		{"an eighth of the lifetime at speed 3 leaves half", 15 * day, 3, 0.5},
		{"the whole lifetime leaves nothing", 120 * day, 2, 0},
		{"beyond the lifetime leaves nothing", 200 * day, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decay(tt.age, 120*day, tt.speed); math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("decay = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReasonDetails(t *testing.T) {
	m := NewModel(testScoring())
	ev := Evidence{Addr: netip.MustParseAddr("198.51.100.7"), Matches: []Match{
		listed(feed("blocklist_de", "blocklist.de"), day+84*time.Hour),
		ended(feed("greensnow", "greensnow.co"), 12*time.Hour),
		listed(&SourceInfo{Name: "ipsum_level2", Provider: "IPsum", Kind: "feed"}, 0),
		listed(&SourceInfo{Name: "ipsum_level4", Provider: "IPsum", Kind: "feed"}, 0),
	}}
	s := m.Score(&ev, now)
	want := []string{
		"ipsum_level4: weight 0.8 (IPsum level 4) × decay 1 (listed now, lifetime 14d)",
		"blocklist_de: weight 0.8 (default) × decay 0.5 (last confirmed 3.5d past grace, lifetime 14d)",
		"ipsum_level2: same provider as ipsum_level4, counted once",
	}
	for _, w := range want {
		found := false
		for _, r := range s.Reasons {
			found = found || r.Detail == w
		}
		if !found {
			t.Errorf("no reason %q in %+v", w, s.Reasons)
		}
	}
	hist := ""
	for _, r := range s.Reasons {
		if strings.HasPrefix(r.Detail, "greensnow") {
			hist = r.Detail
		}
	}
	if !strings.Contains(hist, "× history 0.6 × decay 0.") || !strings.Contains(hist, "delisted 12h ago") {
		t.Errorf("history detail = %q", hist)
	}
}

func BenchmarkScoreListed(b *testing.B) {
	m := NewModel(testScoring())
	ev := Evidence{Addr: netip.MustParseAddr("198.51.100.7"), Matches: []Match{
		listed(feed("blocklist_de", "blocklist.de"), time.Hour),
		listed(&SourceInfo{Name: "ipsum_level3", Provider: "IPsum", Kind: "feed"}, 0),
		ended(feed("greensnow", "greensnow.co"), 3*day),
	}, Context: Context{NeighboursNear: 4, Announced: true}}
	b.ReportAllocs()
	for b.Loop() {
		m.Score(&ev, now)
	}
}

func BenchmarkScoreUnlisted(b *testing.B) {
	m := NewModel(testScoring())
	ev := Evidence{Addr: netip.MustParseAddr("198.51.100.7"), Context: Context{NeighboursNear: 2,
		NeighboursFar: 40, NearestDistance: 9, ASN: 64500, ASNDensity: 0.004, Announced: true},
		Metadata: Metadata{Hosting: true}}
	b.ReportAllocs()
	for b.Loop() {
		m.Score(&ev, now)
	}
}

func TestWarninglistKinds(t *testing.T) {
	tests := []struct {
		list   string
		shared bool
	}{
		{"Specialized list of vpn-ipv4 addresses belonging to common VPN providers and datacenters", true},
		{"List of known Amazon AWS IP address ranges", true},
		{"List of known GCP (Google Cloud Platform) IP address ranges", true},
		{"List of known Microsoft Azure Datacenter IP Ranges", true},
		{"List of known Oracle Cloud Infrastructure (OCI) IP address ranges", true},
		{"List of known iCloud Private Relay egress IP address ranges", true},
		{"List of known GitHub IP ranges (https://api.github.com/meta)", true},
		{"List of known IPv4 public DNS resolvers", false},
		{"List of known sinkholes", false},
		{"List of known Googlebot IP ranges (https://developers.google.com/search/apis/ipranges/googlebot.json)", false},
		{"List of known Cloudflare IP ranges", false},
		{"List of RFC 1918 CIDB blocks", false},
		{"Shodan IP Ranges Used for Scanning", false},
	}
	for _, tt := range tests {
		name := tt.list + " is a list of specific benign services"
		if tt.shared {
			name = tt.list + " is a list of shared infrastructure"
		}
		t.Run(name, func(t *testing.T) {
			benign, shared := warninglistKinds([]Warning{{List: tt.list}})
			if shared != tt.shared || benign == tt.shared {
				t.Errorf("benign, shared = %v, %v; want shared %v", benign, shared, tt.shared)
			}
		})
	}
}
