package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-ip/rampart/internal/shared"
)

// evalConfig writes a configuration with three small FireHOL samples and
// the real ASN database, syncs it into a temporary data dir and returns the
// config's path.
func evalConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`data_dir: %s
feeds:
  - {name: greensnow, provider: greensnow.co, url: %s, source_format: freetext, category: bruteforce}
  - {name: et_compromised, provider: emergingthreats.net, url: %s, source_format: freetext, category: compromised}
  - {name: tor_exits, provider: firehol.org, url: %s, source_format: freetext, category: tor}
enrich:
  geoip:
    asn: %s
log: {level: error}
`, filepath.Join(dir, "data"),
		shared.Data(t, "feeds", "firehol", "greensnow.ipset"),
		shared.Data(t, "feeds", "firehol", "et_compromised.ipset"),
		shared.Data(t, "feeds", "firehol", "tor_exits.ipset"),
		shared.Data(t, "geoip-real", "asn.mmdb"))
	path := filepath.Join(dir, "rampart.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"sync", "--quiet", "--config", path}, &out, &errb); code != 0 {
		t.Fatalf("sync exited %d: %s %s", code, out.String(), errb.String())
	}
	return path
}

// evalJSON is the part of eval's JSON report the tests read.
type evalJSON struct {
	Excluded  []string `json:"excluded"`
	Prefixes  int      `json:"index_prefixes"`
	AUC       *float64 `json:"roc_auc"`
	TPR1      *float64 `json:"tpr_at_1pct_fpr"`
	TPR01     *float64 `json:"tpr_at_0.1pct_fpr"`
	Positives struct {
		Entries, Scored int
		Listed          int `json:"skipped_listed"`
		Reserved        int `json:"skipped_reserved"`
		Histogram       []struct {
			Lo, Hi float64
			Count  int
		}
	}
	Negatives struct {
		Scored    int
		Listed    int `json:"skipped_listed"`
		Histogram []struct{ Count int }
	}
}

func runEvalJSON(t *testing.T, args ...string) (evalJSON, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), append([]string{"eval", "--json"}, args...), &out, &errb); code != 0 {
		t.Fatalf("eval exited %d: %s", code, errb.String())
	}
	var r evalJSON
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("eval --json printed %q: %v", out.String(), err)
	}
	return r, out.String()
}

// TestEval syncs once (under the race detector a sync costs seconds) and
// runs every eval case against that store.
func TestEval(t *testing.T) {
	cfg := evalConfig(t)
	t.Run("leave one feed out", func(t *testing.T) { testEvalLeaveOneFeedOut(t, cfg) })
	t.Run("a negatives file and the text report", func(t *testing.T) { testEvalNegativesFileAndText(t, cfg) })
	t.Run("usage errors", func(t *testing.T) { testEvalUsage(t, cfg) })
}

func testEvalLeaveOneFeedOut(t *testing.T, cfg string) {
	held := shared.Data(t, "feeds", "firehol", "et_compromised.ipset")
	args := []string{"--config", cfg, "--positives", held, "--exclude", "et_compromised",
		"--unlisted-positives", "--random", "3000", "--seed", "7"}
	r, raw := runEvalJSON(t, args...)

	t.Run("the held-out feed is left out of the index", func(t *testing.T) {
		if len(r.Excluded) != 1 || r.Excluded[0] != "et_compromised" || r.Prefixes == 0 {
			t.Errorf("excluded %v, index of %d prefixes", r.Excluded, r.Prefixes)
		}
	})
	t.Run("every positive is scored or skipped as listed by the other feeds", func(t *testing.T) {
		p := r.Positives
		if p.Entries < 500 || p.Scored == 0 || p.Listed == 0 || p.Scored+p.Listed+p.Reserved != p.Entries {
			t.Errorf("positives: %+v", p)
		}
	})
	t.Run("exactly the asked number of random negatives is scored", func(t *testing.T) {
		if r.Negatives.Scored != 3000 {
			t.Errorf("negatives scored %d, want 3000", r.Negatives.Scored)
		}
	})
	t.Run("histograms have ten bins over 0 to 100 that add up to the scored sets", func(t *testing.T) {
		if len(r.Positives.Histogram) != 10 || len(r.Negatives.Histogram) != 10 {
			t.Fatalf("bins: %d and %d", len(r.Positives.Histogram), len(r.Negatives.Histogram))
		}
		if r.Positives.Histogram[0].Lo != 0 || r.Positives.Histogram[9].Hi != 100 {
			t.Errorf("bins span %v to %v", r.Positives.Histogram[0].Lo, r.Positives.Histogram[9].Hi)
		}
		np, nn := 0, 0
		for i := range 10 {
			np += r.Positives.Histogram[i].Count
			nn += r.Negatives.Histogram[i].Count
		}
		if np != r.Positives.Scored || nn != r.Negatives.Scored {
			t.Errorf("histograms hold %d and %d, scored %d and %d", np, nn, r.Positives.Scored, r.Negatives.Scored)
		}
	})
	t.Run("context ranks unlisted compromised hosts above random addresses", func(t *testing.T) {
		// The neighbourhoods and ASNs of the other two feeds predict the
		// held-out feed's unlisted addresses well above chance.
		if r.AUC == nil || *r.AUC < 0.75 || *r.AUC > 1 {
			t.Errorf("ROC AUC %v", r.AUC)
		}
		if r.TPR1 == nil || r.TPR01 == nil || *r.TPR1 <= 0 || *r.TPR1 > 1 || *r.TPR01 > *r.TPR1 {
			t.Errorf("TPR at 1%% %v, at 0.1%% %v", r.TPR1, r.TPR01)
		}
	})
	t.Run("the same seed gives the same report", func(t *testing.T) {
		if _, again := runEvalJSON(t, args...); again != raw {
			t.Errorf("second run differs:\n%s\n%s", raw, again)
		}
	})
	t.Run("without the exclusion the held-out feed lists its own addresses", func(t *testing.T) {
		r, _ := runEvalJSON(t, "--config", cfg, "--positives", held, "--unlisted-positives",
			"--random", "100")
		if r.Positives.Scored != 0 || r.AUC != nil {
			t.Errorf("scored %d positives, AUC %v; want none and null", r.Positives.Scored, r.AUC)
		}
	})
}

func testEvalNegativesFileAndText(t *testing.T, cfg string) {
	negs := filepath.Join(t.TempDir(), "negatives.txt")
	// Public resolvers and a reserved address: two scored, one skipped.
	if err := os.WriteFile(negs, []byte("# benign\n9.9.9.9\n1.1.1.1\n10.0.0.1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"eval", "--config", cfg,
		"--positives", shared.Data(t, "feeds", "firehol", "et_compromised.ipset"), "--negatives", negs}, &out, &errb)
	if code != 0 {
		t.Fatalf("eval exited %d: %s", code, errb.String())
	}
	text := out.String()
	for _, want := range []string{"ROC AUC          1.0000", "TPR at 1% FPR", "TPR at 0.1% FPR",
		"negatives: " + negs + ": 2 scored of 3 entries; skipped 1 reserved", "90-100", "mean"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

func testEvalUsage(t *testing.T, cfg string) {
	pos := shared.Data(t, "feeds", "firehol", "greensnow.ipset")
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"positives are required", []string{"--random", "10"}, 2, "--positives is required"},
		{"negatives need a file or a count", []string{"--positives", pos}, 2, "exactly one of"},
		{"a file and a count together are refused", []string{"--positives", pos, "--random", "5", "--negatives", pos}, 2, "exactly one of"},
		{"an unknown feed to exclude is named", []string{"--positives", pos, "--random", "5", "--exclude", "nosuch"}, 1, `no stored source "nosuch"`},
		{"a missing positives file is an error", []string{"--positives", "/nonexistent/list", "--random", "5"}, 1, "read positives"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), append([]string{"eval", "--config", cfg}, tt.args...), &out, &errb)
			if code != tt.code || !strings.Contains(errb.String(), tt.msg) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errb.String(), tt.code, tt.msg)
			}
		})
	}
}
