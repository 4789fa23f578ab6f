package reputation

import (
	"math"
	"strconv"
)

// Scoring with the learned context model (learn.go). The log likelihood
// ratios of an address's features add up to L; the context's factor is
//
//	F(L) = 1 − ContextCap × σ((L − learnedOffset) / learnedScale)
//
// which is below 1 for every L and approaches 1 − ContextCap for strong
// context, so context alone never blocks. The reasons are a base factor
// F(0), the features that raise the risk (sharing ln F(P) − ln F(0) in
// proportion to their ratios, P the sum of the positive ones), and the
// features that lower it (sharing ln F(L) − ln F(P)), so that they
// multiply out to F(L).
const (
	learnedOffset = 12 // L at which context reaches half its cap
	learnedScale  = 3  // how fast it gets there
	// Enrichment flags that the shared feeds cannot teach (no
	// anonymous-IP database comes with them) keep fixed ratios.
	torLLR     = 3.9 // ×50
	proxyLLR   = 3.0 // ×20
	vpnLLR     = 1.6 // ×5, VPN or other anonymizer
	hostingLLR = 1.1 // ×3
	// minContribution is the smallest |log ratio| shown as a reason.
	minContribution = 0.005
)

// learnedTerm is one feature's contribution to L.
type learnedTerm struct {
	factor string
	feat   int // feature index, or -1 (anonymizer) or -2 (hosting) for an enrichment flag
	llr    float64
}

// learnedTerms returns the contributions of ev's context under cm, in a
// fixed order, without allocating.
func learnedTerms(cm *ContextModel, ev *Evidence) (ts [numFeatures + 2]learnedTerm, n int) {
	v := binOf(&ev.Context, warningKind(ev.Warnings))
	for f := range numFeatures {
		if l := cm.llr[f][v[f]]; math.Abs(l) >= minContribution {
			ts[n] = learnedTerm{factor: featureNames[f], feat: f, llr: l}
			n++
		}
	}
	md := &ev.Metadata
	switch {
	case md.Tor:
		ts[n] = learnedTerm{factor: "anonymizer", feat: -1, llr: torLLR}
		n++
	case md.PublicProxy:
		ts[n] = learnedTerm{factor: "anonymizer", feat: -1, llr: proxyLLR}
		n++
	case md.VPN, md.Anonymous:
		ts[n] = learnedTerm{factor: "anonymizer", feat: -1, llr: vpnLLR}
		n++
	}
	if md.Hosting {
		ts[n] = learnedTerm{factor: "hosting", feat: -2, llr: hostingLLR}
		n++
	}
	return ts, n
}

// learnedFactor is F(L).
func (m *Model) learnedFactor(l float64) float64 {
	return 1 - m.contextCap/(1+math.Exp(-(l-learnedOffset)/learnedScale))
}

// learnedWeights returns the base factor F(0) and each term's reason
// weight; their product is F(L).
func (m *Model) learnedWeights(ts []learnedTerm, w []float64) (base, total float64) {
	var pos, all float64
	for _, t := range ts {
		all += t.llr
		if t.llr > 0 {
			pos += t.llr
		}
	}
	base = m.learnedFactor(0)
	fp := m.learnedFactor(pos)
	total = m.learnedFactor(all)
	up := math.Log(fp / base)    // ≤ 0: the risk-raising share
	down := math.Log(total / fp) // ≥ 0: the risk-lowering share
	neg := pos - all
	for i, t := range ts {
		switch {
		case t.llr > 0:
			w[i] = math.Exp(up * t.llr / pos)
		case neg > 0:
			w[i] = math.Exp(down * -t.llr / neg)
		default:
			w[i] = 1
		}
	}
	return base, total
}

// appendLearnedDetail explains term t of ev.
func appendLearnedDetail(b []byte, t learnedTerm, ev *Evidence) []byte {
	c := &ev.Context
	switch t.feat {
	case featNear:
		b = appendInt(b, c.NeighboursNear)
		b = append(b, " listed in its /24"...)
	case featHost:
		if c.NearestHost == 0 {
			b = append(b, "no listed host"...)
		} else {
			b = append(b, "nearest listed host "...)
			b = appendInt(b, int(c.NearestHost))
			b = append(b, pick(c.NearestHost == 1, " address away", " addresses away")...)
		}
	case featRange:
		if c.NearestRange == 0 {
			b = append(b, "no listed range"...)
		} else {
			b = append(b, "nearest listed range "...)
			b = appendInt(b, int(c.NearestRange))
			b = append(b, pick(c.NearestRange == 1, " address away", " addresses away")...)
		}
	case featASN:
		if c.ASN == 0 {
			b = append(b, "no AS known"...)
			break
		}
		b = appendASN(b, c.ASN)
		b = append(b, ": "...)
		b = appendPercent(b, c.ASNDensity)
		b = append(b, " of announced addresses listed"...)
	case featPrefix:
		if c.RoutedBits == 0 {
			b = append(b, "routed prefix unknown"...)
		} else {
			b = append(b, "routed prefix /"...)
			b = appendInt(b, c.RoutedBits)
		}
	case featUnannounced:
		b = append(b, pick(c.Announced, "announced address space", "unannounced address space")...)
	case featWarning:
		b = appendWarningKind(b, warningKind(ev.Warnings))
	default:
		b = appendContextSummary(b, t.factor, ev)
	}
	b = append(b, " (likelihood ratio "...)
	b = appendRatio(b, math.Exp(t.llr))
	return append(b, ')')
}

// appendWarningKind names the warninglist kinds of bin k.
func appendWarningKind(b []byte, k int) []byte {
	if k == 0 {
		return append(b, "on no warninglist"...)
	}
	b = append(b, "on "...)
	sep := ""
	for i, name := range [...]string{"a benign-service", "a shared-infrastructure", "a research-scanner"} {
		if k&(1<<i) != 0 {
			b = append(b, sep...)
			b = append(b, name...)
			sep = " and "
		}
	}
	return append(b, " warninglist"...)
}

// appendRatio appends a likelihood ratio with three decimals, or three
// significant digits when it is below 0.01 (so that none reads "0").
func appendRatio(b []byte, r float64) []byte {
	if r < 0.01 {
		return strconv.AppendFloat(b, r, 'g', 3, 64)
	}
	return appendFloat(b, r, 3)
}
