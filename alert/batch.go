package alert

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// Bounds on what one alert shows. Feed names and MISP event titles are
// outside input: they are escaped and cut, so no alert can break or bloat
// a message (Slack refuses a section text over 3000 characters).
const (
	maxListed      = 10   // blacklists or types named per alert
	maxReasons     = 6    // reasons shown per alert
	maxName        = 100  // bytes of one name, reason detail or network field
	maxSectionText = 2900 // bytes of one alert's section
	maxFallback    = 3000 // bytes of the message's plain-text fallback
)

// message is one chat.postMessage: the notification text (shown where
// blocks are not, and in push notifications) and the blocks.
type message struct {
	text   string
	blocks []slack.Block
}

// buildMessage renders a batch: a header counting the alerts by verdict
// (in the configured order), then one section per alert.
func buildMessage(batch []alert, verdicts []string) message {
	var head strings.Builder
	head.WriteString("Rampart: ")
	first := true
	for _, v := range verdicts {
		c := 0
		for i := range batch {
			if batch[i].verdict == v {
				c++
			}
		}
		if c == 0 {
			continue
		}
		if !first {
			head.WriteString(", ")
		}
		first = false
		head.WriteString(strconv.Itoa(c))
		head.WriteByte(' ')
		head.WriteString(v)
	}
	header := head.String()

	var fb strings.Builder
	fb.WriteString(header)
	fb.WriteString(": ")
	for i := range batch {
		if i > 0 {
			fb.WriteString(", ")
		}
		fb.WriteString(escape(batch[i].ip))
	}

	blocks := make([]slack.Block, 0, 1+len(batch))
	blocks = append(blocks, slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, header, false, false)))
	for i := range batch {
		blocks = append(blocks, slack.NewSectionBlock(
			slack.NewTextBlockObject(slack.MarkdownType, section(&batch[i]), false, false), nil, nil))
	}
	return message{text: truncate(fb.String(), maxFallback), blocks: blocks}
}

// section renders one alert as Slack mrkdwn:
//
//	*203.0.113.7*: dangerous, score 12.5, action block
//	Blacklists: blocklist_de, ipsum
//	Type: bruteforce
//	Network: AS64500, DE, Example Hosting
//	Reasons: feed blocklist_de (0.80); feed ipsum (0.90)
func section(a *alert) string {
	var b strings.Builder
	b.WriteByte('*')
	b.WriteString(escape(cut(a.ip)))
	b.WriteString("*: ")
	b.WriteString(escape(a.verdict))
	b.WriteString(", score ")
	b.WriteString(strconv.FormatFloat(a.score, 'f', 1, 64))
	if a.action != "" {
		b.WriteString(", action ")
		b.WriteString(escape(cut(a.action)))
	}
	b.WriteString("\nBlacklists: ")
	if len(a.blacklists) == 0 {
		b.WriteString("none")
	}
	list(&b, a.blacklists)
	if len(a.types) > 0 {
		b.WriteString("\nType: ")
		list(&b, a.types)
	}
	var network []string
	for _, f := range []string{a.asn, a.country, a.org} {
		if f != "" {
			network = append(network, f)
		}
	}
	if len(network) > 0 {
		b.WriteString("\nNetwork: ")
		list(&b, network)
	}
	if len(a.reasons) > 0 {
		b.WriteString("\nReasons: ")
		for i, r := range a.reasons {
			if i == maxReasons {
				b.WriteString("; and ")
				b.WriteString(strconv.Itoa(len(a.reasons) - i))
				b.WriteString(" more")
				break
			}
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(escape(cut(r.Factor)))
			if r.Detail != "" {
				b.WriteByte(' ')
				b.WriteString(escape(cut(r.Detail)))
			}
			b.WriteString(" (")
			b.WriteString(strconv.FormatFloat(r.Weight, 'f', 2, 64))
			b.WriteByte(')')
		}
	}
	return truncate(b.String(), maxSectionText)
}

// list writes names separated by commas, at most maxListed of them.
func list(b *strings.Builder, names []string) {
	for i, s := range names {
		if i == maxListed {
			b.WriteString(" and ")
			b.WriteString(strconv.Itoa(len(names) - i))
			b.WriteString(" more")
			return
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(escape(cut(s)))
	}
}

// escape makes outside text inert in Slack mrkdwn: &, < and > are the
// characters Slack asks to escape (they form links and mentions such as
// <!channel>), and control characters become spaces so a name cannot add
// lines.
func escape(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r == '&' || r == '<' || r == '>' || r < ' ' || r == 0x7f }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r < ' ' || r == 0x7f:
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// cut bounds one name before escaping.
func cut(s string) string { return truncate(s, maxName) }

// truncate shortens s to at most n bytes on a character boundary, marking
// the cut with an ellipsis.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	end := n - len(ellipsis)
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end] + ellipsis
}

// rateWindow allows at most limit events in any span of length per. It
// remembers the last limit event times in a ring.
type rateWindow struct {
	per   time.Duration
	times []time.Time // ring of the most recent events
	next  int         // where the next event goes; the oldest when full
	full  bool
}

func newRateWindow(limit int, per time.Duration) *rateWindow {
	return &rateWindow{per: per, times: make([]time.Time, limit)}
}

// allows reports whether an event at now stays within the limit.
func (w *rateWindow) allows(now time.Time) bool {
	return !w.full || now.Sub(w.times[w.next]) >= w.per
}

// record notes an event at now.
func (w *rateWindow) record(now time.Time) {
	w.times[w.next] = now
	w.next++
	if w.next == len(w.times) {
		w.next = 0
		w.full = true
	}
}
