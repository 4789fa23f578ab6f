package reputation

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestAUC(t *testing.T) {
	tests := []struct {
		name     string
		pos, neg []float64
		want     float64
	}{
		{"perfect separation is 1", []float64{1, 2, 3}, []float64{4, 5, 6}, 1},
		{"inverted separation is 0", []float64{4, 5, 6}, []float64{1, 2, 3}, 0},
		{"all tied is one half", []float64{5, 5}, []float64{5, 5, 5}, 0.5},
		{"interleaved counts the ordered pairs", []float64{1, 3}, []float64{2, 4}, 0.75},
		{"ties count half", []float64{1, 2}, []float64{2, 3}, 0.875},
		{"order of the input does not matter", []float64{3, 1}, []float64{4, 2}, 0.75},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AUC(tt.pos, tt.neg); math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("AUC = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("an empty set gives NaN", func(t *testing.T) {
		if got := AUC(nil, []float64{1}); !math.IsNaN(got) {
			t.Errorf("AUC = %v, want NaN", got)
		}
	})
	t.Run("it agrees with counting every pair", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		for range 50 {
			pos := make([]float64, 1+rng.IntN(40))
			neg := make([]float64, 1+rng.IntN(40))
			for i := range pos {
				pos[i] = float64(rng.IntN(10)) // many ties
			}
			for i := range neg {
				neg[i] = float64(rng.IntN(10) + 2)
			}
			var wins float64
			for _, p := range pos {
				for _, n := range neg {
					switch {
					case p < n:
						wins++
					case p == n:
						wins += 0.5
					}
				}
			}
			want := wins / float64(len(pos)*len(neg))
			if got := AUC(pos, neg); math.Abs(got-want) > 1e-12 {
				t.Fatalf("AUC(%v, %v) = %v, want %v", pos, neg, got, want)
			}
		}
	})
}

func TestTPRAtFPR(t *testing.T) {
	neg := make([]float64, 1000)
	for i := range neg {
		neg[i] = float64(i)
	}
	tied := make([]float64, 1000)
	for i := range tied {
		tied[i] = 50
	}
	tests := []struct {
		name     string
		pos, neg []float64
		fpr      float64
		want     float64
	}{
		{"at 1% the threshold is the eleventh lowest negative", []float64{5, 9.5, 10, 50}, neg, 0.01, 0.5},
		{"at 0.1% only scores below the second lowest negative count", []float64{0.5, 5, 9.5, 10}, neg, 0.001, 0.25},
		{"a positive tied with the threshold negative is not flagged", []float64{10}, neg, 0.01, 0},
		{"positives below all tied negatives are all flagged", []float64{10, 20}, tied, 0.01, 1},
		{"positives tied with every negative cannot be flagged", []float64{50, 50}, tied, 0.01, 0},
		{"a false-positive rate of 1 flags everything", []float64{999, 2000}, neg, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TPRAtFPR(tt.pos, tt.neg, tt.fpr); math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("TPR = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHistogram(t *testing.T) {
	h := Histogram([]float64{0, 9.99, 10, 55, 100, -1, 101, math.NaN()}, 0, 100, 10)
	want := []int{3, 1, 0, 0, 0, 1, 0, 0, 0, 2}
	if len(h) != len(want) {
		t.Fatalf("%d bins, want %d", len(h), len(want))
	}
	for i, b := range h {
		if b.Count != want[i] || b.Lo != float64(10*i) || b.Hi != float64(10*i+10) {
			t.Errorf("bin %d = %+v, want [%d, %d) count %d", i, b, 10*i, 10*i+10, want[i])
		}
	}
	if Histogram([]float64{1}, 0, 0, 10) != nil || Histogram([]float64{1}, 0, 100, 0) != nil {
		t.Error("an empty range or no bins should give no histogram")
	}
}

func TestEvaluate(t *testing.T) {
	pos := []float64{10, 20, 30, 95}
	neg := []float64{40, 50, 60, 70, 80, 90, 100, 100, 100, 100}
	e := Evaluate(pos, neg)
	if e.Positives != 4 || e.Negatives != 10 {
		t.Errorf("counts %d, %d", e.Positives, e.Negatives)
	}
	// 95 beats only the four 100s: (3×10 + 4) / 40
	if math.Abs(e.AUC-34.0/40) > 1e-12 {
		t.Errorf("AUC = %v, want %v", e.AUC, 34.0/40)
	}
	// 1% of 10 negatives allows none: flag below 40.
	if e.TPRAt1 != 0.75 || e.TPRAt01 != 0.75 {
		t.Errorf("TPR at 1%% = %v, at 0.1%% = %v, want 0.75", e.TPRAt1, e.TPRAt01)
	}
	if e.PositiveHistogram[1].Count != 1 || e.NegativeHistogram[9].Count != 5 {
		t.Errorf("histograms %+v %+v", e.PositiveHistogram, e.NegativeHistogram)
	}
}
