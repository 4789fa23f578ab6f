package alert

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rampart-ip/rampart/reputation"
)

func TestSectionBoundsOutsideText(t *testing.T) {
	many := make([]string, 15)
	for i := range many {
		many[i] = fmt.Sprintf("feed%02d", i)
	}
	reasons := make([]reputation.Reason, 8)
	for i := range reasons {
		reasons[i] = reputation.Reason{Factor: "feed", Detail: many[i], Weight: 0.5}
	}
	long := strings.Repeat("é", 200)
	tests := []struct {
		name  string
		alert alert
		want  string
	}{
		{name: "long lists name ten and count the rest",
			alert: alert{ip: "192.0.2.1", verdict: "dangerous", score: 0, blacklists: many, reasons: reasons},
			want: "*192.0.2.1*: dangerous, score 0.0\nBlacklists: " + strings.Join(many[:10], ", ") + " and 5 more\n" +
				"Reasons: feed feed00 (0.50); feed feed01 (0.50); feed feed02 (0.50); feed feed03 (0.50); feed feed04 (0.50); feed feed05 (0.50); and 2 more"},
		{name: "a long name is cut on a character boundary",
			alert: alert{ip: "192.0.2.1", verdict: "dangerous", blacklists: []string{long}},
			want:  "*192.0.2.1*: dangerous, score 0.0\nBlacklists: " + strings.Repeat("é", 48) + "…"},
		{name: "markup and mentions are made inert",
			alert: alert{ip: "192.0.2.1", verdict: "dangerous", types: []string{"<@U123>|<https://evil.example|x>"}},
			want:  "*192.0.2.1*: dangerous, score 0.0\nBlacklists: none\nType: &lt;@U123&gt;|&lt;https://evil.example|x&gt;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := section(&tt.alert); got != tt.want {
				t.Errorf("section:\n%q\nwant:\n%q", got, tt.want)
			}
		})
	}
}

func TestBuildMessageStaysWithinSlackLimits(t *testing.T) {
	huge := strings.Repeat("<x>", 5000)
	batch := make([]alert, MaxBatchSize)
	for i := range batch {
		names := make([]string, 40)
		for j := range names {
			names[j] = huge
		}
		batch[i] = alert{ip: fmt.Sprintf("2001:db8::%x", i), verdict: "dangerous", blacklists: names, types: names,
			asn: huge, country: huge, org: huge,
			reasons: []reputation.Reason{{Factor: huge, Detail: huge}, {Factor: huge, Detail: huge}}}
	}
	m := buildMessage(batch, []string{"dangerous"})
	if len(m.blocks) > 50 {
		t.Errorf("%d blocks, Slack allows 50", len(m.blocks))
	}
	if len(m.text) > maxFallback || !utf8.ValidString(m.text) {
		t.Errorf("fallback text of %d bytes (valid UTF-8: %v), want at most %d", len(m.text), utf8.ValidString(m.text), maxFallback)
	}
	for i := range batch {
		s := section(&batch[i])
		if len(s) > 3000 || !utf8.ValidString(s) {
			t.Errorf("section %d has %d bytes (valid UTF-8: %v), Slack allows 3000 characters", i, len(s), utf8.ValidString(s))
		}
	}
}

func TestRateWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := newRateWindow(3, time.Minute)
	steps := []struct {
		at    time.Duration
		allow bool
	}{
		{0, true}, {10 * time.Second, true}, {20 * time.Second, true},
		{30 * time.Second, false}, {59 * time.Second, false},
		{60 * time.Second, true}, {65 * time.Second, false}, {70 * time.Second, true},
		{80 * time.Second, true}, {119 * time.Second, false}, {120 * time.Second, true},
	}
	for _, s := range steps {
		now := t0.Add(s.at)
		if got := w.allows(now); got != s.allow {
			t.Fatalf("at %s: allows = %v, want %v", s.at, got, s.allow)
		}
		if s.allow {
			w.record(now)
		}
	}
}
