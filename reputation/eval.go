package reputation

import (
	"math"
	"slices"
)

// The evaluation functions measure how well scores separate known-bad
// addresses (positives) from others (negatives). Scores are the model's:
// 0 to 100, lower is more dangerous, so a lower score predicts a positive.
// They are pure functions of their inputs and do not modify them.

// Evaluation summarises how well scores separate positives from negatives.
type Evaluation struct {
	Positives, Negatives int
	// AUC is the area under the ROC curve: the probability that a random
	// positive scores lower than a random negative, ties counting half.
	AUC float64
	// TPRAt1 and TPRAt01 are the true-positive rates at 1% and 0.1%
	// false-positive rate.
	TPRAt1, TPRAt01 float64
	// PositiveHistogram and NegativeHistogram count the scores in ten
	// bins of width 10 over 0 to 100.
	PositiveHistogram, NegativeHistogram []Bin
}

// Bin is one histogram bin: the scores s with Lo ≤ s < Hi (the last bin
// also holds Hi).
type Bin struct {
	Lo, Hi float64
	Count  int
}

// Evaluate computes ROC AUC, the true-positive rates at 1% and 0.1%
// false-positive rate, and score histograms for positives and negatives.
func Evaluate(positives, negatives []float64) Evaluation {
	pos, neg := sortedCopy(positives), sortedCopy(negatives)
	return Evaluation{
		Positives:         len(pos),
		Negatives:         len(neg),
		AUC:               aucSorted(pos, neg),
		TPRAt1:            tprSorted(pos, neg, 0.01),
		TPRAt01:           tprSorted(pos, neg, 0.001),
		PositiveHistogram: Histogram(pos, 0, 100, 10),
		NegativeHistogram: Histogram(neg, 0, 100, 10),
	}
}

// AUC returns the area under the ROC curve for scores where lower predicts
// a positive: the probability that a random positive scores lower than a
// random negative, ties counting half. It is NaN if either set is empty.
func AUC(positives, negatives []float64) float64 {
	return aucSorted(sortedCopy(positives), sortedCopy(negatives))
}

// TPRAtFPR returns the largest true-positive rate of any threshold t
// (flag every score below t) whose false-positive rate is at most fpr.
// Tied scores fall on the same side of a threshold, so ties among the
// negatives can make the rate lower than a tie-free ranking would. It is
// NaN if either set is empty.
func TPRAtFPR(positives, negatives []float64, fpr float64) float64 {
	return tprSorted(sortedCopy(positives), sortedCopy(negatives), fpr)
}

// Histogram counts values in bins equal-width bins over [lo, hi]; values
// below lo go to the first bin, above hi to the last, NaN nowhere.
func Histogram(values []float64, lo, hi float64, bins int) []Bin {
	if bins <= 0 || !(hi > lo) {
		return nil
	}
	out := make([]Bin, bins)
	width := (hi - lo) / float64(bins)
	for i := range out {
		out[i].Lo = lo + float64(i)*width
		out[i].Hi = lo + float64(i+1)*width
	}
	out[bins-1].Hi = hi
	for _, v := range values {
		if math.IsNaN(v) {
			continue
		}
		i := int(math.Floor((v - lo) / width))
		out[min(max(i, 0), bins-1)].Count++
	}
	return out
}

func sortedCopy(v []float64) []float64 {
	out := make([]float64, 0, len(v))
	for _, x := range v {
		if !math.IsNaN(x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}

// aucSorted counts, for each positive, the negatives scoring higher and
// half of those tied, in one merge over both sorted lists.
func aucSorted(pos, neg []float64) float64 {
	if len(pos) == 0 || len(neg) == 0 {
		return math.NaN()
	}
	var wins float64
	lower, j := 0, 0 // negatives below the current positive, and ≤ it
	for _, p := range pos {
		for lower < len(neg) && neg[lower] < p {
			lower++
		}
		if j < lower {
			j = lower
		}
		for j < len(neg) && neg[j] <= p {
			j++
		}
		wins += float64(len(neg)-j) + 0.5*float64(j-lower)
	}
	return wins / (float64(len(pos)) * float64(len(neg)))
}

// tprSorted flags every score below the (k+1)-th lowest negative, where k
// is the most negatives the false-positive rate allows.
func tprSorted(pos, neg []float64, fpr float64) float64 {
	if len(pos) == 0 || len(neg) == 0 {
		return math.NaN()
	}
	k := int(math.Floor(fpr*float64(len(neg)) + 1e-9))
	if k >= len(neg) {
		return 1
	}
	t := neg[max(k, 0)]
	n, _ := slices.BinarySearch(pos, t) // positives strictly below t
	return float64(n) / float64(len(pos))
}
