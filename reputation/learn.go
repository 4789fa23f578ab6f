package reputation

import (
	"cmp"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"slices"
)

// The learned context model: for an IPv4 address that no source lists,
// how much more common is each of its context features among listed
// addresses than among announced addresses in general? The index answers
// this at each build from its own data, leave-one-provider-out: every
// listed address is described as if its provider were not loaded (its
// neighbours, nearest listed host and range and ASN density counted
// without that provider's listings), and compared with random announced
// addresses described the same way (each without one provider's
// listings, the providers in turn). The ratio of the
// two distributions, per feature and binned, is a likelihood ratio; the
// model adds their logarithms (naive Bayes). docs/scoring.md, "Learned
// context", has the features, bins and formulas.

// Context features of the learned model.
const (
	featNear        = iota // listed hosts and ranges in the same /24
	featHost               // distance to the nearest listed host
	featRange              // distance to the nearest listed range
	featASN                // listed per announced address in the ASN
	featPrefix             // length of the routed prefix holding the address
	featUnannounced        // no AS announces the address
	featWarning            // warninglist kinds: benign, shared, scanner (bits)
	numFeatures
)

// featureNames are the reason factors of the features, in order.
var featureNames = [numFeatures]string{
	"neighbours", "proximity", "range-proximity", "asn-density",
	"routed-prefix", "unannounced", "warninglist-kind",
}

// Bin counts per feature; see binOf.
var featureBins = [numFeatures]int{6, 34, 34, 32, 26, 2, 8}

// monotone tells, per feature, how its log likelihood ratio must move
// with the bin index: +1 never decreasing (more neighbours, higher
// densities), -1 never increasing (farther away), 0 free.
var monotone = [numFeatures]int{+1, -1, -1, +1, 0, 0, 0}

// Training bounds: the learned model needs at least two providers with
// minProviderUnits listed IPv4 addresses of their own each and
// minPositives in all; otherwise the index keeps the fixed context
// signals (weights.go). At most maxProviderSamples addresses per provider
// are described, and negativeSamples random announced addresses.
const (
	minProviderUnits   = 50
	minPositives       = 500
	maxProviderSamples = 16384
	negativeSamples    = 50000
	maxNegativeDraws   = 50 * negativeSamples
	providerWeight     = 1000 // each provider weighs the same in total
	binPseudoCount     = 1    // additive smoothing of the negatives per bin
	// positiveSpread is the share of the positives' distribution spread
	// evenly over the bins: a feed not loaded may find addresses where the
	// loaded ones found few, so no bin is taken as impossible for it.
	positiveSpread = 0.005
	maxLLR         = 8 // |log likelihood ratio| per feature
	learnSeed      = 0x72616d7061727431
	// asnPseudoAddresses is the prior weight, in addresses, of the
	// density of all announced space in an ASN's shrunk density.
	asnPseudoAddresses = 4096
	priorDraws         = 1 << 16
)

// estimatePrior estimates open IPv4 listings per announced IPv4 address
// over all announced space: the listings with a known AS over the
// announced share of priorDraws random addresses times 2³². 0 without an
// ASN database.
func (n *neighbourhood) estimatePrior() float64 {
	if n.enricher == nil || !n.asnKnown {
		return 0
	}
	var listed uint64
	for _, k := range n.asnCount {
		listed += k
	}
	rng := newLearnRand()
	hits := 0
	for range priorDraws {
		if _, ok := n.enricher.ASN(addr4(rng.Uint32())); ok {
			hits++
		}
	}
	if hits == 0 {
		return 0
	}
	return float64(listed) / (float64(hits) / priorDraws * (1 << 32))
}

// ContextModel is the learned context model of one index: a log
// likelihood ratio per feature and bin. It never changes after the build.
type ContextModel struct {
	llr [numFeatures][]float64
	// Positives is the number of listed addresses it learned from and
	// Providers the number of providers they came from; Negatives the
	// number of random announced addresses.
	Positives, Providers, Negatives int
}

// featureVec is the bins of one address's features.
type featureVec [numFeatures]int

// log2Bin is floor(log2 v) for v ≥ 1.
func log2Bin(v uint32) int { return 31 - bits.LeadingZeros32(v) }

// densityBin is 0 for no density, else floor(log2 ρ) clamped to
// [−30, 0], plus 31.
func densityBin(rho float64) int {
	if rho <= 0 {
		return 0
	}
	e := math.Floor(math.Log2(rho))
	return int(min(max(e, -30), 0)) + 31
}

// distanceBin is floor(log2 d) for a distance d ≥ 1 and 33 for none.
func distanceBin(d uint32) int {
	if d == 0 {
		return 33
	}
	return log2Bin(d)
}

// binOf returns the bins of c's features; wkind is the warninglist kind
// (warningKind).
func binOf(c *Context, wkind int) featureVec {
	var v featureVec
	switch n := c.NeighboursNear; {
	case n < 4:
		v[featNear] = n
	case n < 8:
		v[featNear] = 4
	default:
		v[featNear] = 5
	}
	v[featHost] = distanceBin(c.NearestHost)
	v[featRange] = distanceBin(c.NearestRange)
	v[featASN] = densityBin(c.ASNShrunk)
	if b := c.RoutedBits; b > 0 {
		v[featPrefix] = min(max(b, 8), 32) - 7
	}
	if !c.Announced {
		v[featUnannounced] = 1
	}
	v[featWarning] = wkind
	return v
}

// warningKind is the warninglist kind of ws as a bin: a bit each for
// lists of specific benign services (1), of shared infrastructure (2) and
// of research scanners (4).
func warningKind(ws []Warning) int {
	k := 0
	for i := range ws {
		switch name := ws[i].List; {
		case isScannerList(name):
			k |= 4
		case isSharedList(name):
			k |= 2
		default:
			k |= 1
		}
	}
	return k
}

// sample is one described address of the training set.
type sample struct {
	v featureVec
	w float64
}

// fitContextModel estimates the per-bin log likelihood ratios of the
// positives against the negatives: smoothing, then, for the
// ordered features, the pool-adjacent-violators fit to the monotone
// direction, then bounded by maxLLR.
func fitContextModel(pos, neg []sample) *ContextModel {
	cm := &ContextModel{Negatives: len(neg), Positives: len(pos)}
	for f := range numFeatures {
		nb := featureBins[f]
		p := make([]float64, nb)
		n := make([]float64, nb)
		var sp, sn float64
		for _, s := range pos {
			p[s.v[f]] += s.w
			sp += s.w
		}
		for _, s := range neg {
			n[s.v[f]] += s.w
			sn += s.w
		}
		// The positives' shares are spread by positiveSpread (they are
		// weighted, and the feed asked about is not among them); the
		// negatives' counts get binPseudoCount more per bin.
		mp, mn := float64(len(pos)), float64(len(neg))
		llr := make([]float64, nb)
		weight := make([]float64, nb)
		for b := range nb {
			fp, fn := p[b]/max(sp, 1), n[b]/max(sn, 1)
			pp := (1-positiveSpread)*fp + positiveSpread/float64(nb)
			pn := (fn*mn + binPseudoCount) / (mn + binPseudoCount*float64(nb))
			llr[b] = math.Log(pp / pn)
			weight[b] = fp*mp + fn*mn + binPseudoCount
		}
		if d := monotone[f]; d != 0 {
			pav(llr, weight, d)
		}
		for b := range llr {
			llr[b] = min(max(llr[b], -maxLLR), maxLLR)
		}
		if f == featWarning {
			// A list of specific benign services never raises the risk
			// (docs/scoring.md, "Warninglists"), however rare its space
			// was among the random addresses.
			for b := range llr {
				if b&1 != 0 && b&4 == 0 {
					llr[b] = min(llr[b], 0)
				}
			}
		}
		cm.llr[f] = llr
	}
	return cm
}

// pav replaces v by its weighted least-squares fit that never decreases
// (dir > 0) or never increases (dir < 0) along the slice: the
// pool-adjacent-violators algorithm.
func pav(v, w []float64, dir int) {
	if dir < 0 {
		slices.Reverse(v)
		slices.Reverse(w)
		defer func() {
			slices.Reverse(v)
			slices.Reverse(w)
		}()
	}
	type block struct {
		sum, w float64
		n      int
	}
	blocks := make([]block, 0, len(v))
	for i := range v {
		blocks = append(blocks, block{v[i] * w[i], w[i], 1})
		for len(blocks) > 1 {
			a, b := blocks[len(blocks)-2], blocks[len(blocks)-1]
			if a.sum/a.w <= b.sum/b.w {
				break
			}
			blocks = blocks[:len(blocks)-2]
			blocks = append(blocks, block{a.sum + b.sum, a.w + b.w, a.n + b.n})
		}
	}
	i := 0
	for _, b := range blocks {
		for range b.n {
			v[i] = b.sum / b.w
			i++
		}
	}
}

// newLearnRand is the training's deterministic random source: the same
// data gives the same model.
func newLearnRand() *rand.Rand { return rand.New(rand.NewPCG(learnSeed, learnSeed>>1)) }

// providers maps each source to a provider number (1-based; a source
// without a provider is its own provider), for leave-one-provider-out.
type providers struct {
	of []uint16 // per source index
	n  int
}

func newProviders(srcs []SourceInfo) providers {
	ids := make(map[string]uint16)
	p := providers{of: make([]uint16, len(srcs))}
	for i := range srcs {
		key := srcs[i].Provider
		if key == "" {
			key = "\x00" + srcs[i].Name
		}
		id, ok := ids[key]
		if !ok {
			if len(ids) >= math.MaxUint16-1 {
				continue // 0: not attributed to a single provider
			}
			id = uint16(len(ids) + 1)
			ids[key] = id
		}
		p.of[i] = id
	}
	p.n = len(ids)
	return p
}

// sole returns the one provider of the open matches in ms, or 0 when
// several providers list the unit.
func (p *providers) sole(ms []cmatch) uint16 {
	var id uint16
	for _, m := range ms {
		if m.ended != 0 || int(m.src) >= len(p.of) {
			continue
		}
		switch q := p.of[m.src]; {
		case id == 0:
			id = q
		case q != id:
			return 0
		}
	}
	return id
}

// trainingCounts are the open IPv4 listings attributed to a single
// provider per ASN, so that a provider's own listings can be taken out of
// the ASN density.
type trainingCounts struct {
	asn map[provKey]uint32
}

type provKey struct {
	prov uint16
	asn  uint32
}

func newTrainingCounts() trainingCounts {
	return trainingCounts{asn: make(map[provKey]uint32)}
}

func (t *trainingCounts) addASN(prov uint16, asn uint32) {
	if prov != 0 {
		t.asn[provKey{prov, asn}]++
	}
}

// walkLimit bounds the search for the nearest listing of another
// provider during training; beyond it the feature reads "none".
const walkLimit = 4096

// learn builds the learned context model of x, or returns nil when the
// data are too few (see minPositives).
func (n *neighbourhood) learn(x *Index, hostProv []uint16, provs providers, tr *trainingCounts) *ContextModel {
	if provs.n < 2 {
		return nil
	}
	n.hostProv = hostProv
	defer func() { n.hostProv = nil }()
	// Candidate positives: open IPv4 units listed by one provider only,
	// counted first so that only the sampled ones are kept (every
	// step-th of its provider's, in address order).
	count := make([]int, provs.n+1)
	for _, p := range hostProv {
		count[p]++
	}
	for _, r := range n.rng4 {
		count[r.prov]++
	}
	eligible := 0
	step := make([]int, provs.n+1)
	for p := 1; p <= provs.n; p++ {
		if count[p] >= minProviderUnits {
			eligible++
			step[p] = (count[p] + maxProviderSamples - 1) / maxProviderSamples
		}
	}
	if eligible < 2 {
		return nil
	}
	type unit struct {
		addr uint32
		prov uint16
	}
	var units []unit
	seen := make([]int, provs.n+1)
	keep := func(a uint32, p uint16) {
		if p != 0 && step[p] > 0 {
			if seen[p]%step[p] == 0 {
				units = append(units, unit{a, p})
			}
			seen[p]++
		}
	}
	for i, a := range n.hosts4 {
		keep(a, hostProv[i])
	}
	for _, r := range n.rng4 {
		// One address inside the range, chosen by a hash of its start:
		// deterministic, and not always the first.
		size := uint64(r.hi-r.lo) + 1
		off := uint32((uint64(r.lo) * 0x9e3779b97f4a7c15 >> 32) % size)
		keep(r.lo+off, r.prov)
	}
	rs := newReservedSet()
	pos := make([]sample, 0, len(units))
	provOf := make([]uint16, 0, len(units))
	for _, u := range units {
		addr := addr4(u.addr)
		if _, reserved := rs.lookup(addr); reserved {
			continue
		}
		if n.listedByOthers(x, addr, u.prov, provs) {
			continue
		}
		c := n.excluding(u.addr, u.prov, tr)
		pos = append(pos, sample{v: binOf(&c, n.warningKind(x, addr))})
		provOf = append(provOf, u.prov)
	}
	// Each provider weighs the same in total.
	kept := make([]int, provs.n+1)
	for _, p := range provOf {
		kept[p]++
	}
	var usedProvs []uint16
	for p, k := range kept {
		if k > 0 {
			usedProvs = append(usedProvs, uint16(p))
		}
	}
	used := len(usedProvs)
	for i, p := range provOf {
		pos[i].w = providerWeight / float64(kept[p])
	}
	if used < 2 || len(pos) < minPositives {
		return nil
	}
	rng := newLearnRand()
	neg := make([]sample, 0, negativeSamples)
	for draws := 0; len(neg) < negativeSamples && draws < maxNegativeDraws; draws++ {
		a := rng.Uint32()
		addr := addr4(a)
		if _, reserved := rs.lookup(addr); reserved {
			continue
		}
		if _, listed := x.lookup(addr); listed {
			continue
		}
		// Described, like the positives, without one provider's
		// listings (each provider in turn), so that both samples see
		// the same amount of data.
		c := n.excluding(a, usedProvs[len(neg)%len(usedProvs)], tr)
		if n.enricher != nil && n.asnKnown && !c.Announced {
			continue // negatives are announced addresses
		}
		neg = append(neg, sample{v: binOf(&c, n.warningKind(x, addr)), w: 1})
	}
	if len(neg) < negativeSamples/10 {
		return nil
	}
	cm := fitContextModel(pos, neg)
	cm.Providers = used
	return cm
}

// warningKind is the warninglist kind of addr by the index's warner.
func (n *neighbourhood) warningKind(x *Index, addr netip.Addr) int {
	if x.warner == nil {
		return 0
	}
	return warningKind(x.warner.Warnings(netip.PrefixFrom(addr, 32)))
}

// listedByOthers reports whether a listing open now of a provider other
// than prov contains addr: such an address is listed, not context.
func (n *neighbourhood) listedByOthers(x *Index, addr netip.Addr, prov uint16, provs providers) bool {
	r, ok := x.lookup(addr)
	for ok {
		ms, _, parent := x.span(r)
		if !x.isBogon(r) {
			for _, m := range ms {
				if m.ended == 0 && int(m.src) < len(provs.of) && provs.of[m.src] != prov {
					return true
				}
			}
		}
		r, ok = ref(^parent), parent >= 0
	}
	return false
}

// excluding returns the context of the IPv4 address a as if provider prov
// listed nothing: its own listings left out of the neighbours in the /24,
// the nearest host and range, and the ASN density. (The other fields keep
// their full values; the learned model does not read them.)
func (n *neighbourhood) excluding(a uint32, prov uint16, tr *trainingCounts) Context {
	c := n.context(addr4(a))
	own := func(i int) bool { return n.hostProv[i] == prov }
	// Neighbours in the /24: other providers' hosts and ranges.
	k := a >> 16
	lo, hi := int(n.bucket4[k]), int(n.bucket4[k+1])
	near := 0
	for i := lo; i < hi; i++ {
		if h := n.hosts4[i]; h>>8 == a>>8 && h != a && !own(i) {
			near++
		}
	}
	for _, r := range n.ranges4In(k) {
		if r.prov != prov && r.bits > 24 && r.base>>8 == a>>8 && a&(^uint32(0)<<(32-r.bits)) != r.base {
			near++
		}
	}
	c.NeighboursNear = near
	// Nearest host of another provider.
	i, _ := slices.BinarySearch(n.hosts4, a)
	best := uint32(0)
	for j, steps := i-1, 0; j >= 0 && steps < walkLimit; j, steps = j-1, steps+1 {
		if h := n.hosts4[j]; h != a && !own(j) {
			best = a - h
			break
		}
	}
	for j, steps := i, 0; j < len(n.hosts4) && steps < walkLimit; j, steps = j+1, steps+1 {
		if h := n.hosts4[j]; h != a && !own(j) {
			if d := h - a; best == 0 || d < best {
				best = d
			}
			break
		}
	}
	c.NearestHost = best
	// Nearest range of another provider, not containing a.
	ri, _ := slices.BinarySearchFunc(n.rng4, a, func(r range4, t uint32) int { return cmp.Compare(r.lo, t) })
	best = 0
	for j, steps := ri, 0; j < len(n.rng4) && steps < walkLimit; j, steps = j+1, steps+1 {
		if r := n.rng4[j]; r.prov != prov && r.lo > a {
			best = r.lo - a
			break
		}
	}
	for j, steps := ri-1, 0; j >= 0 && steps < walkLimit; j, steps = j-1, steps+1 {
		if r := n.rng4[j]; r.prov != prov && r.hi < a {
			if d := a - r.hi; best == 0 || d < best {
				best = d
			}
			break
		}
	}
	c.NearestRange = best
	// Densities without the provider's own listings.
	if c.ASN != 0 {
		if ann := n.enricher.Announced(c.ASN); ann > 0 {
			cnt := n.asnCount[c.ASN] - uint64(tr.asn[provKey{prov, c.ASN}])
			c.ASNDensity = min(1, float64(cnt)/float64(ann))
			c.ASNShrunk = n.shrink(cnt, ann)
		}
	}
	return c
}
