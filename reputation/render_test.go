package reputation

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// nastyStrings exercise every escape path of encoding/json.
var nastyStrings = []string{
	"", "plain", "blocklist_de", `quote " and backslash \`, "tab\tnewline\nreturn\r",
	"bell\a backspace\b formfeed\f nul\x00 unit\x1f del\x7f", "<script>&amp;</script>",
	"unicode: Grüße, 日本語, emoji 🛡️", "line\u2028para\u2029sep", "invalid \xff\xfe utf-8 \xc3",
	"truncated \xe6\x97", "surrogate \xed\xa0\x80", "max \U0010ffff", "json {\"a\":[1,2]}",
}

var testFloats = []float64{
	0, 100, 12.5, 1.0 / 3, 99.99999, 1e-7, -1e-7, 1e-6, 123456789012345678901234.0, 1e21, 1e20, 5e-324,
	math.MaxFloat64, -0.0, 0.000001234, 42,
}

func randomAnswer(r *rand.Rand) Answer {
	str := func() string { return nastyStrings[r.IntN(len(nastyStrings))] }
	strs := func() []string {
		switch r.IntN(4) {
		case 0:
			return nil
		case 1:
			return []string{}
		}
		out := make([]string, 1+r.IntN(3))
		for i := range out {
			out[i] = str()
		}
		return out
	}
	tm := func() *time.Time {
		if r.IntN(3) == 0 {
			return nil
		}
		t := time.Unix(r.Int64N(4e9), r.Int64N(1e9)*int64(r.IntN(2))).UTC()
		if r.IntN(4) == 0 {
			t = t.In(time.FixedZone("X", 3600*int(r.IntN(5))-7200))
		}
		return &t
	}
	a := Answer{
		IP: str(), IsIoC: r.IntN(2) == 0, IsActive: r.IntN(2) == 0, Historical: r.IntN(2) == 0,
		Score: testFloats[r.IntN(len(testFloats))], Verdict: str(), Action: str(), Description: str(),
		Blacklists: strs(), Type: strs(), FirstSeen: tm(), LastSeen: tm(),
	}
	if r.IntN(2) == 0 {
		a.Metadata = Metadata{ASN: str(), Country: str(), Org: str(), City: str(), Anonymous: r.IntN(2) == 0,
			VPN: r.IntN(2) == 0, Tor: r.IntN(2) == 0, Hosting: r.IntN(2) == 0, PublicProxy: r.IntN(2) == 0}
	}
	switch r.IntN(3) {
	case 0:
	case 1:
		a.Reasons = []Reason{}
	default:
		for range 1 + r.IntN(3) {
			a.Reasons = append(a.Reasons, Reason{Factor: str(), Detail: str(), Weight: testFloats[r.IntN(len(testFloats))]})
		}
	}
	switch r.IntN(3) {
	case 0:
	case 1:
		a.Warnings = []Warning{}
	default:
		for range 1 + r.IntN(2) {
			a.Warnings = append(a.Warnings, Warning{List: str(), Match: str()})
		}
	}
	return a
}

func TestAppendAnswerJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		a := randomAnswer(r)
		want, err := json.Marshal(&a)
		if err != nil {
			t.Fatal(err)
		}
		got := AppendAnswerJSON(nil, &a)
		if !bytes.Equal(got, want) {
			t.Fatalf("answer %d differs from encoding/json:\n got %s\nwant %s", i, got, want)
		}
	}
}

func TestAppendAnswerJSONAppends(t *testing.T) {
	a := Answer{IP: "192.0.2.1", Blacklists: []string{}, Type: []string{}, Reasons: []Reason{}}
	got := AppendAnswerJSON([]byte("prefix:"), &a)
	if !bytes.HasPrefix(got, []byte(`prefix:{"ip":"192.0.2.1"`)) {
		t.Errorf("AppendAnswerJSON does not append to dst: %s", got)
	}
}

func TestAppendAnswerJSONNaNIsValidJSON(t *testing.T) {
	a := Answer{Score: math.NaN(), Reasons: []Reason{{Weight: math.Inf(1)}}}
	got := AppendAnswerJSON(nil, &a)
	if !json.Valid(got) {
		t.Errorf("NaN renders as invalid JSON: %s", got)
	}
}

func TestAppendAnswerJSONGolden(t *testing.T) {
	first := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	last := time.Date(2026, 11, 23, 10, 0, 0, 500, time.UTC)
	answers := []Answer{
		{
			IP: "203.0.113.7", IsIoC: true, IsActive: true, Score: 12.5, Verdict: VerdictDangerous, Action: ActionBlock,
			Description: "listed by 2 feeds", Blacklists: []string{"blocklist_de", "ipsum"}, Type: []string{"bruteforce"},
			Metadata: Metadata{ASN: "AS64500", Country: "DE", Org: "Example Hosting"}, FirstSeen: &first, LastSeen: &last,
			Reasons: []Reason{{Factor: "feed", Detail: "blocklist_de", Weight: 0.2}, {Factor: "feed", Detail: "ipsum", Weight: 0.625}},
		},
		{
			IP: "2001:db8::1", Score: 100, Verdict: VerdictNone, Action: ActionAllow, Description: "no evidence of threat",
			Blacklists: []string{}, Type: []string{}, Reasons: []Reason{},
		},
		{
			IP: "198.51.100.1", IsIoC: true, Historical: true, Score: 46, Verdict: VerdictSuspicious, Action: ActionChallenge,
			Description: "feed \"ünïcode\" <b>&</b>", Blacklists: []string{"tab\there"}, Type: []string{},
			Metadata: Metadata{Tor: true, Hosting: true}, Reasons: []Reason{{Factor: "feed", Detail: "x", Weight: 0.46}},
			Warnings: []Warning{{List: "List of known Google IP ranges", Match: "198.51.100.0/24"}},
		},
	}
	var got bytes.Buffer
	for i := range answers {
		got.Write(AppendAnswerJSON(nil, &answers[i]))
		got.WriteByte('\n')
	}
	path := filepath.Join("testdata", "answers.golden.jsonl")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("rendered answers differ from %s:\n got %s\nwant %s", path, got.Bytes(), want)
	}
}

func FuzzAppendAnswerJSON(f *testing.F) {
	for _, s := range nastyStrings {
		f.Add(s, 12.5)
	}
	f.Fuzz(func(t *testing.T, s string, score float64) {
		if math.IsNaN(score) || math.IsInf(score, 0) {
			return
		}
		a := Answer{IP: s, Score: score, Verdict: s, Blacklists: []string{s}, Type: []string{}, Reasons: []Reason{{Detail: s, Weight: score}}}
		want, err := json.Marshal(&a)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendAnswerJSON(nil, &a); !bytes.Equal(got, want) {
			t.Fatalf("differs:\n got %s\nwant %s", got, want)
		}
	})
}
