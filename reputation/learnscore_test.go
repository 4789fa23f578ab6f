package reputation

import (
	"math"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// handModel returns a learned context model whose log likelihood ratios
// are llr(feature, bin).
func handModel(llr func(f, b int) float64) *ContextModel {
	cm := &ContextModel{Positives: 1000, Providers: 2, Negatives: 1000}
	for f := range numFeatures {
		cm.llr[f] = make([]float64, featureBins[f])
		for b := range cm.llr[f] {
			cm.llr[f][b] = llr(f, b)
		}
	}
	return cm
}

// contextFactor is F(L) of learnscore.go at the default context cap.
func contextFactor(l float64) float64 {
	return 1 - defaultContextCap/(1+math.Exp(-(l-learnedOffset)/learnedScale))
}

func TestScoreLearnedContext(t *testing.T) {
	m := NewModel(testScoring())
	addr := netip.MustParseAddr("198.51.100.7")
	// Five neighbours (bin 4), the nearest listed host 3 away (bin 1).
	ctx := Context{Announced: true, NeighboursNear: 5, NearestHost: 3}
	model := func(near, host float64) *ContextModel {
		return handModel(func(f, b int) float64 {
			switch {
			case f == featNear && b == 4:
				return near
			case f == featHost && b == 1:
				return host
			}
			return 0
		})
	}
	score := func(t *testing.T, ev Evidence) Scored {
		t.Helper()
		s := m.Score(&ev, now)
		checkProduct(t, s)
		return s
	}
	withModel := func(cm *ContextModel) Evidence {
		c := ctx
		c.Learned = cm
		return Evidence{Addr: addr, Context: c}
	}
	factors := func(s Scored) []string {
		var out []string
		for _, r := range s.Reasons {
			out = append(out, r.Factor)
		}
		return out
	}

	t.Run("the reasons are the base rate and each feature, and multiply out to F(L)", func(t *testing.T) {
		// L = 8 + 4 = 12, the offset: F = 1 − 0.45 / 2.
		s := score(t, withModel(model(8, 4)))
		if math.Abs(s.Score-77.5) > 1e-3 {
			t.Errorf("score = %v, want 77.5", s.Score)
		}
		if got := factors(s); !slices.Equal(got, []string{"context", "neighbours", "proximity"}) {
			t.Fatalf("factors = %q", got)
		}
		base := s.Reasons[0]
		if base.Detail != "base rate of an announced address, before its context" || math.Abs(base.Weight-contextFactor(0)) > 1e-6 {
			t.Errorf("base reason %+v, want weight F(0) = %v", base, contextFactor(0))
		}
		if d := s.Reasons[1].Detail; d != "5 listed in its /24 (likelihood ratio 2980.958)" {
			t.Errorf("neighbours detail %q", d)
		}
		if d := s.Reasons[2].Detail; d != "nearest listed host 3 addresses away (likelihood ratio 54.598)" {
			t.Errorf("proximity detail %q", d)
		}
		if s.Action != ActionAllow || s.IsIoC {
			t.Errorf("action %s, is_IoC %v; want allow, not an IoC", s.Action, s.IsIoC)
		}
	})
	t.Run("risk-raising and risk-lowering terms share the factor and multiply out", func(t *testing.T) {
		// L = 6 − 2 = 4.
		s := score(t, withModel(model(6, -2)))
		if want := 100 * contextFactor(4); math.Abs(s.Score-want) > 1e-3 {
			t.Errorf("score = %v, want %v", s.Score, want)
		}
		if len(s.Reasons) != 3 || s.Reasons[1].Weight >= 1 || s.Reasons[2].Weight <= 1 {
			t.Errorf("reasons %+v; want the raising term below 1, the lowering one above", s.Reasons)
		}
	})
	t.Run("a context with a positive total scores lower than one with a negative total", func(t *testing.T) {
		up := score(t, withModel(model(3, 1)))
		flat := score(t, withModel(model(0, 0)))
		down := score(t, withModel(model(-3, -1)))
		if !(up.Score < flat.Score && flat.Score < down.Score && down.Score < 100) {
			t.Errorf("scores for L = +4, 0, −4: %v, %v, %v; want increasing, below 100", up.Score, flat.Score, down.Score)
		}
		if got := factors(flat); !slices.Equal(got, []string{"context"}) {
			t.Errorf("factors with every ratio 0 = %q, want the base rate alone", got)
		}
		if want := 100 * contextFactor(0); math.Abs(flat.Score-want) > 1e-3 {
			t.Errorf("score with every ratio 0 = %v, want %v", flat.Score, want)
		}
	})
	t.Run("ratios below minContribution are not reasons", func(t *testing.T) {
		s := score(t, withModel(model(minContribution/2, 4)))
		if got := factors(s); !slices.Equal(got, []string{"context", "proximity"}) {
			t.Errorf("factors = %q, want no neighbours reason", got)
		}
	})
	t.Run("context alone never reaches the block threshold", func(t *testing.T) {
		ev := withModel(handModel(func(int, int) float64 { return maxLLR }))
		ev.Metadata = Metadata{Tor: true, Hosting: true}
		s := score(t, ev)
		if s.Score <= m.block || s.Action == ActionBlock {
			t.Errorf("score %v, action %s; want above the block threshold %v", s.Score, s.Action, m.block)
		}
		if s.Score < 100*(1-defaultContextCap)-1e-3 {
			t.Errorf("score %v below the context cap's floor %v", s.Score, 100*(1-defaultContextCap))
		}
		want := []string{"context", "neighbours", "proximity", "range-proximity", "asn-density",
			"routed-prefix", "unannounced", "warninglist-kind", "anonymizer", "hosting"}
		if got := factors(s); !slices.Equal(got, want) {
			t.Errorf("factors = %q, want %q", got, want)
		}
	})
	t.Run("a listed address ignores the learned context", func(t *testing.T) {
		blde := feed("blocklist_de", "blocklist.de")
		ev := withModel(handModel(func(int, int) float64 { return maxLLR }))
		ev.Matches = []Match{listed(blde, 0)}
		s := score(t, ev)
		plain := score(t, Evidence{Addr: addr, Matches: []Match{listed(blde, 0)}, Context: ctx})
		if s.Score != 20 || plain.Score != 20 || !slices.Equal(factors(s), []string{"feed"}) {
			t.Errorf("score %v (without the model %v), factors %q; want 20 and the feed alone", s.Score, plain.Score, factors(s))
		}
	})
	t.Run("an address listed in the past keeps its learned context", func(t *testing.T) {
		ev := withModel(model(8, 4))
		ev.Matches = []Match{ended(feed("blocklist_de", "blocklist.de"), 84*time.Hour)}
		s := score(t, ev)
		// 100 × (1 − 0.8 × 0.6 × 0.5) × F(12)
		if math.Abs(s.Score-76*0.775) > 1e-3 || !slices.Contains(factors(s), "context") {
			t.Errorf("score %v, factors %q; want %v with the context", s.Score, factors(s), 76*0.775)
		}
	})
	t.Run("a reserved address ignores the learned context", func(t *testing.T) {
		ev := withModel(model(8, 4))
		ev.Addr = netip.MustParseAddr("10.1.2.3")
		if s := score(t, ev); s.Score != 100 || len(s.Reasons) != 0 {
			t.Errorf("score %v, reasons %+v; want 100 and none", s.Score, s.Reasons)
		}
	})
	t.Run("an IPv6 address is weighed by the fixed signals", func(t *testing.T) {
		ev := Evidence{Addr: netip.MustParseAddr("2001:db8::7"),
			Context: Context{NeighboursNear: 1, Announced: true, Learned: model(8, 4)}}
		// As in TestScore: strength 1 − 2^−0.7, 100 × (1 − 0.45 × 0.384428).
		if s := score(t, ev); math.Abs(s.Score-82.7007) > 2e-4 || !slices.Equal(factors(s), []string{"neighbours"}) {
			t.Errorf("score %v, factors %q; want 82.7007 from the fixed neighbours signal", s.Score, factors(s))
		}
	})
}
