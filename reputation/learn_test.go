package reputation

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/store"
)

func TestPAV(t *testing.T) {
	tests := []struct {
		name string
		v, w []float64
		dir  int
		want []float64
	}{
		{"a violating pair pools to its mean", []float64{1, 3, 2, 4}, []float64{1, 1, 1, 1}, +1, []float64{1, 2.5, 2.5, 4}},
		{"a heavier bin pulls the pooled value towards it", []float64{1, 3, 2, 4}, []float64{1, 1, 3, 1}, +1, []float64{1, 2.25, 2.25, 4}},
		// (3, 5) then 1 pools with 5 to 7/3, below 3: all three pool to 10/4.
		{"pooling cascades back over earlier blocks", []float64{3, 5, 1}, []float64{1, 1, 2}, +1, []float64{2.5, 2.5, 2.5}},
		{"a decreasing slice fit upwards is its weighted mean", []float64{3, 2, 1}, []float64{1, 1, 2}, +1, []float64{1.75, 1.75, 1.75}},
		{"a non-decreasing slice with ties is unchanged", []float64{1, 2, 2, 5}, []float64{4, 1, 2, 1}, +1, []float64{1, 2, 2, 5}},
		{"downwards, a violating pair pools to its mean", []float64{4, 2, 3, 1}, []float64{1, 1, 1, 1}, -1, []float64{4, 2.5, 2.5, 1}},
		// Weighted mean of the first three: (2 + 1 + 12) / 5.
		{"downwards, weights and cascades", []float64{2, 1, 4, 0}, []float64{1, 1, 3, 1}, -1, []float64{3, 3, 3, 0}},
		{"downwards, pooling cascades to the front", []float64{1, 5, 3}, []float64{2, 1, 1}, -1, []float64{2.5, 2.5, 2.5}},
		{"a non-increasing slice with ties is unchanged", []float64{5, 3, 3, 0}, []float64{1, 2, 1, 3}, -1, []float64{5, 3, 3, 0}},
		{"a single value is unchanged", []float64{7}, []float64{2}, -1, []float64{7}},
		{"an empty slice is fine", []float64{}, []float64{}, +1, []float64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, w := slices.Clone(tt.v), slices.Clone(tt.w)
			pav(v, w, tt.dir)
			for i := range tt.want {
				if math.Abs(v[i]-tt.want[i]) > 1e-12 {
					t.Fatalf("pav(%v, %v, %+d) = %v, want %v", tt.v, tt.w, tt.dir, v, tt.want)
				}
			}
			if !slices.Equal(w, tt.w) {
				t.Errorf("weights changed to %v, want %v", w, tt.w)
			}
		})
	}
}

// vec returns a feature vector with every feature in bin 0 but those set.
func vec(set map[int]int) featureVec {
	var v featureVec
	for f, b := range set {
		v[f] = b
	}
	return v
}

func TestFitContextModel(t *testing.T) {
	// The smoothing of fitContextModel: positives' share spread by
	// positiveSpread, negatives' count with binPseudoCount per bin.
	ratio := func(posShare float64, negCount, negTotal, bins int) float64 {
		pp := (1-positiveSpread)*posShare + positiveSpread/float64(bins)
		pn := (float64(negCount) + binPseudoCount) / (float64(negTotal) + binPseudoCount*float64(bins))
		return math.Log(pp / pn)
	}
	t.Run("a bin common among positives raises the ratio, one common among negatives lowers it, by the smoothing formula", func(t *testing.T) {
		// One provider's 4 positives, weighing 250 each: 3 unannounced
		// (bin 1), 1 announced (bin 0). 8 negatives: 6 announced, 2 not.
		var pos, neg []sample
		for _, b := range []int{1, 1, 1, 0} {
			pos = append(pos, sample{v: vec(map[int]int{featUnannounced: b}), w: 250})
		}
		for _, b := range []int{0, 0, 0, 0, 0, 0, 1, 1} {
			neg = append(neg, sample{v: vec(map[int]int{featUnannounced: b}), w: 1})
		}
		cm := fitContextModel(pos, neg)
		if cm.Positives != 4 || cm.Negatives != 8 {
			t.Errorf("positives, negatives = %d, %d; want 4, 8", cm.Positives, cm.Negatives)
		}
		want := []float64{ratio(0.25, 6, 8, 2), ratio(0.75, 2, 8, 2)}
		l := cm.llr[featUnannounced]
		for b, w := range want {
			if math.Abs(l[b]-w) > 1e-12 {
				t.Errorf("llr of unannounced bin %d = %v, want %v", b, l[b], w)
			}
		}
		if l[1] <= 0 || l[0] >= 0 {
			t.Errorf("unannounced ratios %v; want bin 1 positive, bin 0 negative", l)
		}
	})
	t.Run("positive weights count as shares; a bin no random address fills stays possible", func(t *testing.T) {
		// The same positives at weight 1 and at weight 1000 give the same
		// model. Bins empty in both samples get the spread share over
		// the negatives' smoothed share: rare space, not impossible for a
		// feed that is not loaded; but a benign-service warninglist never
		// raises the risk.
		fit := func(w float64) *ContextModel {
			var pos, neg []sample
			for range 30 {
				pos = append(pos, sample{v: vec(map[int]int{featWarning: 0}), w: w})
			}
			for range 50000 {
				neg = append(neg, sample{v: vec(map[int]int{featWarning: 0}), w: 1})
			}
			return fitContextModel(pos, neg)
		}
		a, b := fit(1), fit(1000)
		if !slices.Equal(a.llr[featWarning], b.llr[featWarning]) {
			t.Errorf("weights 1 and 1000 give %v and %v, want the same", a.llr[featWarning], b.llr[featWarning])
		}
		empty := ratio(0, 0, 50000, 8)
		for bin, l := range a.llr[featWarning] {
			want := empty
			switch {
			case bin == 0:
				want = ratio(1, 50000, 50000, 8)
			case bin&1 != 0 && bin&4 == 0:
				want = 0 // benign, no scanner: clamped
			}
			if math.Abs(l-want) > 1e-12 {
				t.Errorf("warninglist kind bin %d: llr %v, want %v", bin, l, want)
			}
		}
		if empty <= 0 {
			t.Errorf("an empty bin's llr %v, want positive (rare among 50,000 random addresses)", empty)
		}
	})
	t.Run("an ordered feature is fit to its direction with the bins' sample weights", func(t *testing.T) {
		// Neighbours, 4 positives (bins 2, 2, 2, 3) and 4 negatives (0, 0,
		// 2, 3). The raw ratios rise to bin 2 and fall after it; bins 2
		// to 5 pool with weights 5, 3, 1, 1 (share × sample size summed
		// over both samples, plus 1).
		pos := []sample{
			{v: vec(map[int]int{featNear: 2}), w: 1}, {v: vec(map[int]int{featNear: 2}), w: 1},
			{v: vec(map[int]int{featNear: 2}), w: 1}, {v: vec(map[int]int{featNear: 3}), w: 1},
		}
		neg := []sample{
			{v: vec(map[int]int{featNear: 0}), w: 1}, {v: vec(map[int]int{featNear: 0}), w: 1},
			{v: vec(map[int]int{featNear: 2}), w: 1}, {v: vec(map[int]int{featNear: 3}), w: 1},
		}
		cm := fitContextModel(pos, neg)
		raw := []float64{ratio(0, 2, 4, 6), ratio(0, 0, 4, 6), ratio(0.75, 1, 4, 6), ratio(0.25, 1, 4, 6), ratio(0, 0, 4, 6), ratio(0, 0, 4, 6)}
		pooled := (5*raw[2] + 3*raw[3] + raw[4] + raw[5]) / 10
		want := []float64{raw[0], raw[1], pooled, pooled, pooled, pooled}
		if !(raw[0] < raw[1] && raw[1] < pooled) {
			t.Fatalf("test arithmetic: raw %v, pooled %v should already rise before bin 2", raw, pooled)
		}
		for b, w := range want {
			if got := cm.llr[featNear][b]; math.Abs(got-w) > 1e-12 {
				t.Fatalf("llr of neighbours = %v, want %v", cm.llr[featNear], want)
			}
		}
	})
	t.Run("ratios are bounded by maxLLR", func(t *testing.T) {
		// 5000 positives at one end of every feature, 5000 negatives at
		// the other (distances: the positives near, the negatives at
		// "none"): raw ratios at the positives' end about ln 5000 ≈ 8.5.
		var hi, lo featureVec
		for f := range numFeatures {
			hi[f] = featureBins[f] - 1
			if monotone[f] < 0 {
				hi[f], lo[f] = lo[f], hi[f]
			}
		}
		var pos, neg []sample
		for range 5000 {
			pos = append(pos, sample{v: hi, w: 1})
			neg = append(neg, sample{v: lo, w: 1})
		}
		cm := fitContextModel(pos, neg)
		for f := range numFeatures {
			l := cm.llr[f]
			if len(l) != featureBins[f] {
				t.Fatalf("%s has %d bins, want %d", featureNames[f], len(l), featureBins[f])
			}
			if l[hi[f]] != maxLLR || l[lo[f]] >= -5 {
				t.Errorf("%s: llr at the positive bin %v, at the negative bin %v; want %v and below -5", featureNames[f], l[hi[f]], l[lo[f]], float64(maxLLR))
			}
			for b, v := range l {
				if math.Abs(v) > maxLLR {
					t.Errorf("%s: bin %d has llr %v, beyond ±%v", featureNames[f], b, v, float64(maxLLR))
				}
			}
		}
	})
	t.Run("random samples: ordered features come out monotone and every ratio is bounded", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(11, 12))
		for k := range 50 {
			var pos, neg []sample
			draw := func() featureVec {
				var v featureVec
				for f := range numFeatures {
					v[f] = rng.IntN(featureBins[f])
				}
				return v
			}
			for range 20 + rng.IntN(200) {
				pos = append(pos, sample{v: draw(), w: 1 + 100*rng.Float64()})
			}
			for range 20 + rng.IntN(200) {
				neg = append(neg, sample{v: draw(), w: 1})
			}
			cm := fitContextModel(pos, neg)
			for f := range numFeatures {
				l := cm.llr[f]
				for b := range l {
					if math.Abs(l[b]) > maxLLR {
						t.Fatalf("round %d: %s bin %d has llr %v beyond ±%v", k, featureNames[f], b, l[b], maxLLR)
					}
					if b == 0 {
						continue
					}
					if d := monotone[f]; (d > 0 && l[b] < l[b-1]-1e-12) || (d < 0 && l[b] > l[b-1]+1e-12) {
						t.Fatalf("round %d: %s is not monotone (%+d) at bin %d: %v", k, featureNames[f], d, b, l)
					}
				}
			}
		}
	})
}

func TestBinOf(t *testing.T) {
	// none is the vector of an announced address with no context at all:
	// no listed host or range (bin 33).
	none := featureVec{0, 33, 33, 0, 0, 0, 0}
	with := func(f, b int) featureVec {
		v := none
		v[f] = b
		return v
	}
	tests := []struct {
		name  string
		c     Context
		wkind int
		want  featureVec
	}{
		{"no context: no neighbours, no listed host or range", Context{Announced: true}, 0, none},
		{"one neighbour has its own bin", Context{Announced: true, NeighboursNear: 1}, 0, with(featNear, 1)},
		{"three neighbours have their own bin", Context{Announced: true, NeighboursNear: 3}, 0, with(featNear, 3)},
		{"four neighbours start the 4 to 7 bin", Context{Announced: true, NeighboursNear: 4}, 0, with(featNear, 4)},
		{"five neighbours are in the 4 to 7 bin", Context{Announced: true, NeighboursNear: 5}, 0, with(featNear, 4)},
		{"eight neighbours start the last bin", Context{Announced: true, NeighboursNear: 8}, 0, with(featNear, 5)},
		{"nine neighbours are in the last bin", Context{Announced: true, NeighboursNear: 9}, 0, with(featNear, 5)},
		{"a listed host 1 away is bin 0", Context{Announced: true, NearestHost: 1}, 0, with(featHost, 0)},
		{"a listed host 2 away is bin 1", Context{Announced: true, NearestHost: 2}, 0, with(featHost, 1)},
		{"a listed host 1000 away is bin 9", Context{Announced: true, NearestHost: 1000}, 0, with(featHost, 9)},
		{"the farthest listed host is bin 31", Context{Announced: true, NearestHost: math.MaxUint32}, 0, with(featHost, 31)},
		{"a listed range 1 away is bin 0", Context{Announced: true, NearestRange: 1}, 0, with(featRange, 0)},
		{"a listed range 1000 away is bin 9", Context{Announced: true, NearestRange: 1000}, 0, with(featRange, 9)},
		{"a density of 0.001 is bin floor(log2 0.001) + 31", Context{Announced: true, ASNShrunk: 0.001}, 0, with(featASN, 21)},
		{"a density of 1 is the top bin", Context{Announced: true, ASNShrunk: 1}, 0, with(featASN, 31)},
		{"a density of 0.5 is just below it", Context{Announced: true, ASNShrunk: 0.5}, 0, with(featASN, 30)},
		{"a tiny density is clamped to bin 1, apart from none", Context{Announced: true, ASNShrunk: 1e-12}, 0, with(featASN, 1)},
		{"a /8 is the first routed-prefix bin", Context{Announced: true, RoutedBits: 8}, 0, with(featPrefix, 1)},
		{"a prefix shorter than /8 counts as a /8", Context{Announced: true, RoutedBits: 4}, 0, with(featPrefix, 1)},
		{"a /24 is bin 17", Context{Announced: true, RoutedBits: 24}, 0, with(featPrefix, 17)},
		{"a /32 is the last bin", Context{Announced: true, RoutedBits: 32}, 0, with(featPrefix, 25)},
		{"an unannounced address sets its bin", Context{}, 0, with(featUnannounced, 1)},
		{"a benign warninglist kind is bin 1", Context{Announced: true}, 1, with(featWarning, 1)},
		{"a shared warninglist kind is bin 2", Context{Announced: true}, 2, with(featWarning, 2)},
		{"both warninglist kinds are bin 3", Context{Announced: true}, 3, with(featWarning, 3)},
		{"a research-scanner warninglist kind is bin 4", Context{Announced: true}, 4, with(featWarning, 4)},
		{"every warninglist kind is bin 7", Context{Announced: true}, 7, with(featWarning, 7)},
		{"features bin independently", Context{NeighboursNear: 9, NearestHost: 1000, NearestRange: 1, ASNShrunk: 0.001, RoutedBits: 24},
			2, featureVec{5, 9, 0, 21, 17, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := binOf(&tt.c, tt.wkind)
			if got != tt.want {
				t.Errorf("binOf(%+v, %d) = %v, want %v", tt.c, tt.wkind, got, tt.want)
			}
			for f, b := range got {
				if b < 0 || b >= featureBins[f] {
					t.Errorf("%s bin %d outside [0, %d)", featureNames[f], b, featureBins[f])
				}
			}
		})
	}
}

func TestWarningKindBins(t *testing.T) {
	dns := Warning{List: "List of known IPv4 public DNS resolvers", Match: "8.8.8.8/32"}
	vpn := Warning{List: "Specialized list of vpn-ipv4 addresses belonging to common VPN providers and datacenters", Match: "8.8.0.0/16"}
	scan := Warning{List: "Shodan IP Ranges Used for Scanning", Match: "8.8.8.0/24"}
	tests := []struct {
		name string
		ws   []Warning
		want int
	}{
		{"no warninglist is kind 0", nil, 0},
		{"a benign-service list is kind 1", []Warning{dns}, 1},
		{"a shared-infrastructure list is kind 2", []Warning{vpn}, 2},
		{"both kinds are kind 3", []Warning{vpn, dns}, 3},
		{"a research-scanner list is kind 4", []Warning{scan}, 4},
		{"all three kinds are kind 7", []Warning{dns, scan, vpn}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := warningKind(tt.ws); got != tt.want {
				t.Errorf("warningKind = %d, want %d", got, tt.want)
			}
		})
	}
}

// learnHosts returns n open listings by src of IPv4 hosts in the /16s
// from 45.10.0.0 on, ten to a /24 and ten /24s to a /16: at .1 to .10 of
// each /24 for slot 0, .101 to .110 for slot 1, .201 to .210 for slot 2.
// Sources in different slots share every /24, and a host's nearest
// listed neighbour is of its own slot.
func learnHosts(src string, slot, n int) []store.Listing {
	out := make([]store.Listing, 0, n)
	for i := range n {
		j := uint32(i / 10)
		a := 45<<24 | (10+j/10)<<16 | (j%10)<<8 | uint32(100*slot+i%10+1)
		out = append(out, store.Listing{Source: src, Prefix: netip.PrefixFrom(addr4(a), 32), Since: t0.Add(-time.Hour)})
	}
	return out
}

// learnData is three providers' 300 hosts each (learnHosts), and:
// alpha's range 45.10.5.128/28 and beta's 45.10.5.160/28 in the /24 of
// the tests; 45.13.0.50 listed by alpha and beta both; alpha's host
// 45.13.1.7 inside beta's range 45.13.1.0/24; 45.13.2.9 listed by alpha
// now and by beta in the past.
func learnData(t testing.TB) Data {
	since := t0.Add(-time.Hour)
	d := Data{Sources: testSources()}
	for slot, src := range []string{"alpha", "beta", "gamma"} {
		d.Listings = append(d.Listings, learnHosts(src, slot, 300)...)
	}
	d.Listings = append(d.Listings,
		listing(t, "alpha", "45.10.5.128/28", since),
		listing(t, "beta", "45.10.5.160/28", since),
		listing(t, "alpha", "45.13.0.50/32", since),
		listing(t, "beta", "45.13.0.50/32", since),
		listing(t, "alpha", "45.13.1.7/32", since),
		listing(t, "beta", "45.13.1.0/24", since),
		listing(t, "alpha", "45.13.2.9/32", since),
	)
	d.Episodes = append(d.Episodes, episode(t, "beta", "45.13.2.9/32", since.Add(-48*time.Hour), since.Add(-24*time.Hour)))
	return d
}

// trainingView returns a copy of x's neighbourhood as learn sees it: with
// the sole provider of each listed host, and the open listings attributed
// to a single provider per ASN, counted as buildNeighbourhood counts them
// for an enricher without networks.
func trainingView(t *testing.T, x *Index) (neighbourhood, providers, *trainingCounts) {
	t.Helper()
	n := x.near
	provs := newProviders(x.sources)
	tr := newTrainingCounts()
	count := func(a netip.Addr, prov uint16) {
		if n.enricher == nil {
			return
		}
		if asn, ok := n.enricher.ASN(a); ok {
			tr.addASN(prov, asn)
		}
	}
	n.hostProv = nil
	for i := range x.nHosts() {
		if ms := x.matches[x.hosts4[i].off:x.hosts4[i+1].off]; open(ms) {
			p := provs.sole(ms)
			n.hostProv = append(n.hostProv, p)
			count(addr4(x.hosts4[i].addr), p)
		}
	}
	for j, p := range x.pfx {
		if ms := x.matches[x.pfxOff[j]:x.pfxOff[j+1]]; open(ms) && !x.bogon[j] && p.Addr().Is4() {
			count(p.Addr(), provs.sole(ms))
		}
	}
	if len(n.hostProv) != len(n.hosts4) {
		t.Fatalf("%d host providers for %d hosts", len(n.hostProv), len(n.hosts4))
	}
	return n, provs, &tr
}

func TestLearnLeaveOneProviderOut(t *testing.T) {
	idx := Build(learnData(t), BuildOptions{Now: func() time.Time { return t0 }})
	cm := idx.near.learned
	if cm == nil {
		t.Fatal("no learned model from three providers of 300 hosts each")
	}
	// alpha: 300 hosts, its /28 and 45.13.2.9 (45.13.1.7 is inside
	// beta's range); beta: 300 hosts and two ranges; gamma: 300 hosts.
	// 45.13.0.50 has two providers.
	if cm.Providers != 3 || cm.Positives != 904 || cm.Negatives != negativeSamples {
		t.Errorf("providers, positives, negatives = %d, %d, %d; want 3, 904, %d", cm.Providers, cm.Positives, cm.Negatives, negativeSamples)
	}
	if idx.near.hostProv != nil {
		t.Error("the host providers are kept after training")
	}
	if c := idx.near.context(mustAddr(t, "45.10.5.50")); c.Learned != cm {
		t.Error("an IPv4 context does not carry the index's learned model")
	}
	if c := idx.near.context(mustAddr(t, "2a00::1")); c.Learned != nil {
		t.Error("an IPv6 context carries the learned model")
	}

	n, provs, tr := trainingView(t, idx)
	alpha, beta, gamma := provs.of[0], provs.of[1], provs.of[2]
	soleProvider := func(t *testing.T, s string) uint16 {
		t.Helper()
		i, ok := slices.BinarySearch(n.hosts4, v4(mustAddr(t, s)))
		if !ok {
			t.Fatalf("%s is not an open host", s)
		}
		return n.hostProv[i]
	}
	t.Run("a host listed by two providers has no sole provider", func(t *testing.T) {
		if p := soleProvider(t, "45.13.0.50"); p != 0 {
			t.Errorf("45.13.0.50 has provider %d, want 0", p)
		}
	})
	t.Run("a past listing by another provider leaves the sole provider", func(t *testing.T) {
		if p := soleProvider(t, "45.13.2.9"); p != alpha {
			t.Errorf("45.13.2.9 has provider %d, want alpha's %d", p, alpha)
		}
	})
	t.Run("a host inside another provider's range is listed by others", func(t *testing.T) {
		if !n.listedByOthers(idx, mustAddr(t, "45.13.1.7"), alpha, provs) {
			t.Error("alpha's 45.13.1.7 inside beta's /24 is not listed by others")
		}
		if n.listedByOthers(idx, mustAddr(t, "45.10.5.5"), alpha, provs) {
			t.Error("alpha's own 45.10.5.5 is listed by others")
		}
	})

	// In 45.10.5.0/24: alpha's hosts .1-.10 and range .128/28, beta's
	// hosts .101-.110 and range .160/28, gamma's hosts .201-.210; the /24
	// below ends with gamma's .210, the one above starts with alpha's .1.
	tests := []struct {
		name                string
		addr                string
		prov                uint16
		near                int
		host, rng           uint32
		fullNear            int
		fullHost, fullRange uint32
	}{
		{"alpha's host counts beta's and gamma's neighbours, not its own", "45.10.5.5", alpha, 21, 51, 155, 31, 1, 123},
		{"beta's host counts alpha's and gamma's neighbours, not its own", "45.10.5.105", beta, 21, 95, 23, 31, 1, 23},
		{"gamma's host counts alpha's and beta's neighbours, not its own", "45.10.5.205", gamma, 22, 52, 30, 31, 1, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := mustAddr(t, tt.addr)
			full := n.context(a)
			if full.NeighboursNear != tt.fullNear || full.NearestHost != tt.fullHost || full.NearestRange != tt.fullRange {
				t.Errorf("full context: near %d, host %d, range %d; want %d, %d, %d",
					full.NeighboursNear, full.NearestHost, full.NearestRange, tt.fullNear, tt.fullHost, tt.fullRange)
			}
			c := n.excluding(v4(a), tt.prov, tr)
			if c.NeighboursNear != tt.near || c.NearestHost != tt.host || c.NearestRange != tt.rng {
				t.Errorf("excluding its provider: near %d, host %d, range %d; want %d, %d, %d",
					c.NeighboursNear, c.NearestHost, c.NearestRange, tt.near, tt.host, tt.rng)
			}
		})
	}

	t.Run("the ASN density leaves out the provider's own listings", func(t *testing.T) {
		// 45.10.0.0/15 holds 200 hosts of each provider and two ranges:
		// 602 listings, 201 of them alpha's, 201 beta's, 200 gamma's. The
		// rest of 0.0.0.0/1 is announced, so that random negatives are
		// found.
		e := &tableEnricher{announced: map[uint32]uint64{64500: 1 << 16, 64501: 1 << 31}}
		e.asn.Insert(mustPrefix(t, "0.0.0.0/1"), 64501)
		e.asn.Insert(mustPrefix(t, "45.10.0.0/15"), 64500)
		idx := Build(learnData(t), BuildOptions{Enricher: e, Now: func() time.Time { return t0 }})
		n, _, tr := trainingView(t, idx)
		if n.asnPrior <= 0 {
			t.Fatalf("prior density %v with an ASN database", n.asnPrior)
		}
		// The shrunk density, which the learned model bins, is
		// (listed + α × prior) / (announced + α).
		shrunk := func(listed float64) float64 {
			return (listed + asnPseudoAddresses*n.asnPrior) / (1<<16 + asnPseudoAddresses)
		}
		a := v4(mustAddr(t, "45.10.5.5"))
		full := n.context(addr4(a))
		if full.ASNDensity != 602.0/(1<<16) || math.Abs(full.ASNShrunk-shrunk(602)) > 1e-15 {
			t.Errorf("full ASN density %v, shrunk %v; want %v, %v", full.ASNDensity, full.ASNShrunk, 602.0/(1<<16), shrunk(602))
		}
		for _, p := range []struct {
			prov   uint16
			listed float64
		}{{alpha, 401}, {beta, 401}, {gamma, 402}} {
			c := n.excluding(a, p.prov, tr)
			if c.ASNDensity != p.listed/(1<<16) || math.Abs(c.ASNShrunk-shrunk(p.listed)) > 1e-15 {
				t.Errorf("without provider %d: ASN density %v, shrunk %v; want %v, %v",
					p.prov, c.ASNDensity, c.ASNShrunk, p.listed/(1<<16), shrunk(p.listed))
			}
		}
	})

	t.Run("the service scores an unlisted neighbour with the learned model", func(t *testing.T) {
		s := newTestService(t, learnData(t), &fakeClock{t: t0}, ServiceOptions{})
		a := s.Check(mustAddr(t, "45.10.5.50"))
		if a.IsIoC || len(a.Reasons) == 0 || a.Reasons[0].Factor != "context" {
			t.Fatalf("is_IoC %v, reasons %+v; want the learned context's reasons", a.IsIoC, a.Reasons)
		}
		checkProduct(t, Scored{Judgement: Judgement{Score: a.Score}, Reasons: a.Reasons})
		if a.Score >= 100 || a.Score <= 100*(1-defaultContextCap) || a.Action == ActionBlock {
			t.Errorf("score %v, action %s; want below 100, above %v, not blocked", a.Score, a.Action, 100*(1-defaultContextCap))
		}
	})
}

func TestLearnNeedsEnoughData(t *testing.T) {
	two := []SourceInfo{
		{Name: "alpha", Kind: store.KindFeed, Provider: "a"},
		{Name: "beta", Kind: store.KindFeed, Provider: "b"},
	}
	oneProvider := []SourceInfo{
		{Name: "alpha", Kind: store.KindFeed, Provider: "a"},
		{Name: "alpha2", Kind: store.KindFeed, Provider: "a"},
	}
	hosts := func(counts ...int) []store.Listing {
		var out []store.Listing
		for slot, n := range counts {
			out = append(out, learnHosts([]string{"alpha", "beta", "gamma"}[slot], slot, n)...)
		}
		return out
	}
	asEpisodes := func(ls []store.Listing) []store.Episode {
		var out []store.Episode
		for _, l := range ls {
			out = append(out, store.Episode{Source: l.Source, Prefix: l.Prefix, Started: l.Since, Ended: t0.Add(-time.Minute)})
		}
		return out
	}
	tests := []struct {
		name      string
		d         Data
		providers int // 0: no learned model
	}{
		{"one source alone is not enough", Data{Sources: testSources()[:1], Listings: hosts(900)}, 0},
		{"one provider's listings among three sources are not enough", Data{Sources: testSources(), Listings: hosts(900)}, 0},
		{"two feeds of one provider are one provider",
			Data{Sources: oneProvider, Listings: append(hosts(450), learnHosts("alpha2", 1, 450)...)}, 0},
		{"a provider below minProviderUnits does not count", Data{Sources: two, Listings: hosts(450, minProviderUnits-1)}, 0},
		{"a provider at minProviderUnits counts", Data{Sources: two, Listings: hosts(450, minProviderUnits)}, 2},
		{"fewer than minPositives in all are not enough", Data{Sources: two, Listings: hosts(250, 249)}, 0},
		{"minPositives in all are enough", Data{Sources: two, Listings: hosts(250, 250)}, 2},
		{"three providers too small each are not enough", Data{Sources: testSources(), Listings: hosts(40, 40, 40)}, 0},
		{"ended episodes are not training data", Data{Sources: testSources(), Episodes: asEpisodes(hosts(300, 300, 300))}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx := Build(tt.d, BuildOptions{Now: func() time.Time { return t0 }})
			cm := idx.near.learned
			switch {
			case tt.providers == 0 && cm != nil:
				t.Errorf("learned a model from %d providers, %d positives; want none", cm.Providers, cm.Positives)
			case tt.providers > 0 && cm == nil:
				t.Errorf("no learned model; want one from %d providers", tt.providers)
			case tt.providers > 0 && cm.Providers != tt.providers:
				t.Errorf("learned from %d providers, want %d", cm.Providers, tt.providers)
			}
		})
	}
}

func TestLearnIsDeterministic(t *testing.T) {
	d := learnData(t)
	build := func(d Data) *ContextModel {
		cm := Build(d, BuildOptions{Now: func() time.Time { return t0 }}).near.learned
		if cm == nil {
			t.Fatal("no learned model")
		}
		return cm
	}
	want := build(d)
	if got := build(d); !reflect.DeepEqual(got, want) {
		t.Errorf("two builds of the same data learned different models:\n%+v\n%+v", got, want)
	}
	shuffled := d
	shuffled.Listings = slices.Clone(d.Listings)
	rand.New(rand.NewPCG(5, 6)).Shuffle(len(shuffled.Listings), func(i, j int) {
		shuffled.Listings[i], shuffled.Listings[j] = shuffled.Listings[j], shuffled.Listings[i]
	})
	if got := build(shuffled); !reflect.DeepEqual(got, want) {
		t.Error("the order of the listings changed the learned model")
	}
}
