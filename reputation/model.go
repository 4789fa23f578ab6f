package reputation

import (
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/rampart-ip/rampart/config"
)

// Scored is what the model decides about one address: the answer's
// judgement and the fields that explain it.
type Scored struct {
	Judgement
	IsIoC bool
	// IsActive reports that a source lists the address at the scoring time.
	IsActive bool
	// Historical reports that the address was listed in the past and is
	// not listed now.
	Historical  bool
	Description string
	Blacklists  []string
	Type        []string
	// Reasons multiply out to the score: Score = 100 × Π Weight, within
	// rounding (docs/scoring.md).
	Reasons   []Reason
	FirstSeen time.Time
	LastSeen  time.Time
	// Strongest is the name of the source that contributed most risk
	// (empty when no source did).
	Strongest string
}

// Model turns evidence into a score (docs/scoring.md). It is immutable and
// safe for concurrent use; the same evidence at the same time gives the
// same score.
type Model struct {
	block, challenge, triage float64
	lifetime                 time.Duration
	speed                    float64
	grace                    time.Duration
	history                  float64
	discount, trust          float64
	shared                   float64
	quorum                   int
	contextCap               float64
}

// Model defaults, used for zero fields of config.Scoring.
const (
	defaultBlock      = 30
	defaultChallenge  = 60
	defaultTriage     = 90
	defaultLifetime   = 14 * 24 * time.Hour
	defaultSpeed      = 2
	defaultGrace      = 24 * time.Hour
	defaultHistory    = 0.6
	defaultDiscount   = 0.25
	defaultShared     = 0.9
	defaultTrust      = 0.95
	defaultQuorum     = 3
	defaultContextCap = 0.45
)

// NewModel returns the model for the scoring configuration. A zero field
// takes the model's default (docs/scoring.md lists them); a negative
// Grace, HistoryWeight or ContextCap turns that part off.
func NewModel(cfg config.Scoring) *Model {
	m := &Model{
		block:      cfg.Thresholds.Block,
		challenge:  cfg.Thresholds.Challenge,
		triage:     cfg.Thresholds.Triage,
		lifetime:   time.Duration(cfg.DefaultLifetime),
		speed:      cfg.DecaySpeed,
		grace:      time.Duration(cfg.Grace),
		history:    cfg.HistoryWeight,
		discount:   cfg.WarninglistDiscount,
		shared:     cfg.WarninglistSharedDiscount,
		trust:      cfg.WarninglistTrust,
		quorum:     cfg.WarninglistQuorum,
		contextCap: cfg.ContextCap,
	}
	if m.block == 0 && m.challenge == 0 {
		m.block, m.challenge = defaultBlock, defaultChallenge
	}
	if m.triage == 0 {
		m.triage = defaultTriage
	}
	m.triage = max(m.triage, m.challenge)
	if m.lifetime <= 0 {
		m.lifetime = defaultLifetime
	}
	if m.speed <= 0 {
		m.speed = defaultSpeed
	}
	m.grace = orDefault(m.grace, defaultGrace)
	m.history = min(orDefault(m.history, defaultHistory), 1)
	m.contextCap = min(orDefault(m.contextCap, defaultContextCap), maxRisk)
	if m.discount <= 0 {
		m.discount = defaultDiscount
	}
	m.discount = min(m.discount, 1)
	if m.shared <= 0 {
		m.shared = defaultShared
	}
	m.shared = min(max(m.shared, m.discount), 1)
	if m.trust <= 0 {
		m.trust = defaultTrust
	}
	if m.quorum <= 0 {
		m.quorum = defaultQuorum
	}
	return m
}

// orDefault maps zero to def and a negative value to zero.
func orDefault[T float64 | time.Duration](v, def T) T {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// Thresholds returns the block and challenge thresholds in force.
func (m *Model) Thresholds() (block, challenge float64) { return m.block, m.challenge }

// entry is one source's strongest evidence about the address.
type entry struct {
	src        *SourceInfo
	w, tags    float64 // weight and the factor tags applied to it
	basis      string
	risk       float64 // w × decay (× history weight when ended)
	decay      float64
	age        time.Duration
	lifetime   time.Duration
	active     bool // the strongest match is an open listing
	host       bool // the strongest match lists the address itself, not a range
	listed     bool // some match is an open listing
	dupOf      int  // index of the stronger source of the same provider, or -1
	discounted bool
}

// Score judges ev at time at. Sources combine as independent evidence
// (100 × Π (1 − risk)), one per provider; context counts only for
// addresses no source lists now; warninglist hits and reserved addresses
// discount what is not trusted. docs/scoring.md has the formulas.
func (m *Model) Score(ev *Evidence, at time.Time) Scored {
	var s Scored
	var ebuf [8]entry
	es := ebuf[:0]
	for i := range ev.Matches {
		mt := &ev.Matches[i]
		if mt.Source == nil || mt.Since.After(at) {
			continue
		}
		active := mt.Active(at)
		s.IsIoC = true
		s.IsActive = s.IsActive || active
		if s.FirstSeen.IsZero() || mt.Since.Before(s.FirstSeen) {
			s.FirstSeen = mt.Since
		}
		if mt.LastSeen.After(s.LastSeen) {
			s.LastSeen = mt.LastSeen
		}
		k := slices.IndexFunc(es, func(e entry) bool { return e.src == mt.Source || e.src.Name == mt.Source.Name })
		if k < 0 {
			w, basis, tags := weightOf(mt.Source)
			es = append(es, entry{src: mt.Source, w: w, basis: basis, tags: tags, risk: -1, dupOf: -1})
			k = len(es) - 1
		}
		e := &es[k]
		lifetime := mt.Source.Lifetime
		if lifetime <= 0 {
			lifetime = m.lifetime
		}
		age := evidenceAge(mt, active, at, m.grace)
		d := decay(age, lifetime, m.speed)
		r := e.w * d
		if !active {
			r *= m.history
		}
		e.listed = e.listed || active
		if r > e.risk || (r == e.risk && active && !e.active) {
			e.risk, e.decay, e.age, e.lifetime, e.active = r, d, age, lifetime, active
			e.host = mt.Prefix.Bits() == mt.Prefix.Addr().BitLen()
		}
	}
	s.Historical = s.IsIoC && !s.IsActive

	// Strongest first; names break ties so that the order of the evidence
	// does not matter.
	slices.SortFunc(es, func(a, b entry) int {
		if a.risk != b.risk {
			if a.risk > b.risk {
				return -1
			}
			return 1
		}
		return strings.Compare(a.src.Name, b.src.Name)
	})
	independent := 0
	for i := range es {
		for j := range i {
			if es[j].dupOf < 0 && sameProvider(es[i].src, es[j].src) {
				es[i].dupOf = j
				break
			}
		}
		if es[i].dupOf < 0 && es[i].risk > 0 {
			independent++
		}
	}
	if independent > 0 {
		s.Strongest = es[0].src.Name
	}

	// A reserved address (private, loopback, CGNAT...) is treated as if on
	// a warninglist: behind a misconfigured proxy chain it is the proxy's
	// own hop, and blocking it blocks everyone. Its context (unannounced
	// by nature, neighbours in a private /24) says nothing.
	reserved, reservedWhy := reservedRange(ev.Addr)
	// Warninglists of specific benign services (and reserved space) take
	// the full discount; lists of shared infrastructure (cloud, hosting,
	// VPN ranges) take the mild one on listings of the address itself,
	// and the full one on listings of ranges, which speak of other
	// tenants (docs/scoring.md, "Warninglists").
	benign, shared := warninglistKinds(ev.Warnings)
	flagged := benign || shared || reserved
	full := benign || reserved
	quorum := independent >= m.quorum
	var untrusted, discountedSafety float64 = 1, 1 // Π(1−r) and Π(1−discount×r) over discounted risks
	ndisc, nmild := 0, 0

	var dbuf [1024]byte
	b := dbuf[:0]
	type span struct{ from, to int }
	var spans [24]span
	nspans := 0
	weighContext := !s.IsActive && !reserved && m.contextCap > 0
	var sigs [maxSignals]signal
	nsigs := 0
	if weighContext {
		sigs, nsigs = contextSignals(ev, shared)
	}
	reasons := make([]Reason, 0, len(es)+nsigs+3)
	addReason := func(factor string, from int, w float64) {
		reasons = append(reasons, Reason{Factor: factor, Weight: round(w, 6)})
		if nspans < len(spans) {
			spans[nspans] = span{from, len(b)}
		}
		nspans++
	}

	s.Blacklists = make([]string, 0, len(es))
	for i := range es {
		e := &es[i]
		s.Blacklists = append(s.Blacklists, e.src.Name)
		if c := e.src.Category; c != "" && !slices.Contains(s.Type, c) {
			s.Type = append(s.Type, c)
		}
		factor := "feed"
		if e.src.Kind == "misp-event" {
			factor = "misp-event"
		}
		from := len(b)
		b = append(b, e.src.Name...)
		if e.dupOf >= 0 {
			b = append(b, ": same provider as "...)
			b = append(b, es[e.dupOf].src.Name...)
			b = append(b, ", counted once"...)
			addReason(factor, from, 1)
			continue
		}
		risk := min(e.risk, maxRisk)
		if flagged && !quorum && e.w < m.trust && risk > 0 {
			e.discounted = true
			f := m.discount
			if !full && e.host {
				f = m.shared
				nmild++
			}
			ndisc++
			untrusted *= 1 - risk
			discountedSafety *= 1 - f*risk
		}
		b = appendSourceDetail(b, e, m.history)
		addReason(factor, from, 1-risk)
	}

	// Context weighs only for addresses that no source lists now.
	if weighContext {
		// The signals combine like sources into a strength R = 1 − Π(1 − s);
		// the context's factor is 1 − ContextCap × R, so context approaches
		// the cap but never reaches it. Each signal's reason carries a share
		// of that factor in proportion to log(1 − s), so the reasons still
		// multiply out; shares are rounded up to stay above the cap.
		first := len(reasons)
		var ctxSafety float64
		if cm := ev.Context.Learned; cm != nil && ev.Addr.Is4() {
			ts, nts := learnedTerms(cm, ev)
			var ws [numFeatures + 2]float64
			base, total := m.learnedWeights(ts[:nts], ws[:nts])
			ctxSafety = total
			from := len(b)
			b = append(b, "base rate of an announced address, before its context"...)
			// Rounded up, as the fixed signals' shares are, so that
			// context alone stays above the cap.
			addReason("context", from, math.Ceil(base*1e6)/1e6)
			for i, t := range ts[:nts] {
				from := len(b)
				b = appendLearnedDetail(b, t, ev)
				addReason(t.factor, from, math.Ceil(ws[i]*1e6)/1e6)
			}
		} else {
			raw := 1.0
			for _, sig := range sigs[:nsigs] {
				raw *= 1 - sig.risk
			}
			ctxSafety = 1 - m.contextCap*(1-raw)
			alpha := math.Log(ctxSafety) / math.Log(raw)
			for _, sig := range sigs[:nsigs] {
				from := len(b)
				b = sig.appendDetail(b, ev)
				b = append(b, " (strength "...)
				b = appendFloat(b, sig.risk, 3)
				b = append(b, ')')
				addReason(sig.factor, from, math.Ceil(math.Pow(1-sig.risk, alpha)*1e6)/1e6)
			}
		}
		// On shared infrastructure the context is not discounted: that
		// space is where most listed addresses are, and its being shared
		// is itself the hosting signal.
		if full && len(reasons) > first && ev.Context.Learned == nil {
			ndisc++
			untrusted *= ctxSafety
			discountedSafety *= 1 - m.discount*(1-ctxSafety)
		}
	}

	if reserved && len(reasons) > 0 {
		from := len(b)
		b = append(b, reservedWhy...)
		w := 1.0
		if len(ev.Warnings) == 0 {
			b = appendDiscount(b, ndisc, 0, quorum, independent, m.discount, m.shared)
			w = discountedSafety / untrusted
		}
		addReason("reserved", from, w)
	}
	if len(ev.Warnings) > 0 {
		from := len(b)
		b = append(b, ev.Warnings[0].List...)
		b = append(b, ' ')
		b = append(b, ev.Warnings[0].Match...)
		if n := len(ev.Warnings) - 1; n > 0 {
			b = append(b, " and "...)
			b = appendInt(b, n)
			b = append(b, " more"...)
		}
		b = appendDiscount(b, ndisc, nmild, quorum, independent, m.discount, m.shared)
		addReason("warninglist", from, discountedSafety/untrusted)
	}

	safety := 1.0
	for _, r := range reasons {
		safety *= r.Weight
	}
	s.Score = min(max(round(100*safety, 4), 0), 100)

	descFrom := len(b)
	b = m.appendDescription(b, &s, es, reasons, ev)
	descTo := len(b)

	// One allocation holds every detail and the description.
	all := string(b)
	for i := range reasons {
		if i < len(spans) {
			reasons[i].Detail = all[spans[i].from:spans[i].to]
		}
	}
	s.Description = all[descFrom:descTo]
	s.Reasons = reasons
	if len(s.Blacklists) == 0 {
		s.Blacklists = nil
	}
	m.judge(&s)
	return s
}

// judge sets the action and verdict from the score.
func (m *Model) judge(s *Scored) {
	switch {
	case s.Score <= m.block:
		s.Action, s.Verdict = ActionBlock, VerdictDangerous
	case s.Score <= m.challenge:
		s.Action, s.Verdict = ActionChallenge, VerdictSuspicious
	case s.Score <= m.triage:
		s.Action, s.Verdict = ActionAllow, VerdictTriage
	default:
		s.Action, s.Verdict = ActionAllow, VerdictNone
	}
}

// sameProvider reports whether two sources come from one provider, so
// that they are not independent evidence. Sources without a provider are
// their own provider.
func sameProvider(a, b *SourceInfo) bool {
	if a.Provider == "" || b.Provider == "" {
		return false
	}
	return strings.EqualFold(strings.TrimSpace(a.Provider), strings.TrimSpace(b.Provider))
}

// appendSourceDetail explains a source's factor: its weight and where the
// weight comes from, the history weight, and the decay with its inputs.
func appendSourceDetail(b []byte, e *entry, history float64) []byte {
	b = append(b, ": weight "...)
	b = appendFloat(b, e.w, 2)
	b = append(b, " ("...)
	b = append(b, e.basis...)
	if e.tags != 1 {
		b = append(b, ", tags ×"...)
		b = appendFloat(b, e.tags, 2)
	}
	b = append(b, ')')
	if !e.active {
		b = append(b, " × history "...)
		b = appendFloat(b, history, 2)
	}
	b = append(b, " × decay "...)
	b = appendFloat(b, e.decay, 3)
	switch {
	case e.active && e.age == 0:
		b = append(b, " (listed now"...)
	case e.active:
		b = append(b, " (last confirmed "...)
		b = appendAge(b, e.age)
		b = append(b, " past grace"...)
	default:
		b = append(b, " (delisted "...)
		b = appendAge(b, e.age)
		b = append(b, " ago"...)
	}
	b = append(b, ", lifetime "...)
	b = appendAge(b, e.lifetime)
	return append(b, ')')
}

// appendDiscount explains whether a warninglist hit or a reserved range
// discounted the risk: ndisc signals in all, nmild of them at the shared
// infrastructure discount.
func appendDiscount(b []byte, ndisc, nmild int, quorum bool, independent int, discount, shared float64) []byte {
	switch {
	case quorum:
		b = append(b, ": not applied, "...)
		b = appendInt(b, independent)
		return append(b, " independent providers agree"...)
	case ndisc == 0:
		return append(b, ": nothing to discount"...)
	}
	b = append(b, ": risk ×"...)
	if nmild > 0 {
		b = appendFloat(b, shared, 2)
		b = append(b, " for "...)
		b = appendCount(b, nmild, "listing of the address on shared infrastructure", "listings of the address on shared infrastructure")
		if ndisc == nmild {
			return b
		}
		b = append(b, ", ×"...)
	}
	b = appendFloat(b, discount, 2)
	b = append(b, " for "...)
	return appendCount(b, ndisc-nmild, "untrusted signal", "untrusted signals")
}

// appendDescription writes the answer's one-line summary.
func (m *Model) appendDescription(b []byte, s *Scored, es []entry, reasons []Reason, ev *Evidence) []byte {
	feeds, events := 0, 0
	risky := false
	for i := range es {
		if s.IsActive && !es[i].listed {
			continue
		}
		if es[i].src.Kind == "misp-event" {
			events++
		} else {
			feeds++
		}
		risky = risky || es[i].risk > 0
	}
	switch {
	case s.IsIoC:
		if s.IsActive {
			b = append(b, "listed by "...)
		} else {
			b = append(b, "listed in the past by "...)
		}
		if feeds > 0 {
			b = appendCount(b, feeds, "feed", "feeds")
		}
		if events > 0 {
			if feeds > 0 {
				b = append(b, " and "...)
			}
			b = appendCount(b, events, "MISP event", "MISP events")
		}
		if !risky {
			b = append(b, ", evidence expired"...)
		}
	case s.Score < 100:
		b = append(b, "not listed; "...)
		// The strongest context signal says why.
		best, bw := -1, 1.0
		for i, r := range reasons {
			if r.Factor != "warninglist" && r.Factor != "reserved" && r.Factor != "context" && r.Weight < bw {
				best, bw = i, r.Weight
			}
		}
		if best >= 0 {
			b = appendContextSummary(b, reasons[best].Factor, ev)
		} else {
			b = append(b, "no evidence of threat"...)
		}
	default:
		b = append(b, "no evidence of threat"...)
	}
	if len(ev.Warnings) > 0 {
		b = append(b, "; on warninglist "...)
		b = append(b, ev.Warnings[0].List...)
	} else if r, why := reservedRange(ev.Addr); r && s.IsIoC {
		b = append(b, "; "...)
		b = append(b, why...)
	}
	return b
}

// reservedRange reports whether addr is in address space that is not
// routed on the Internet (private, loopback, link-local, multicast,
// unspecified, shared CGNAT space, "this network", class E), and which.
// Documentation ranges are not reserved here: examples list them.
func reservedRange(addr netip.Addr) (bool, string) {
	a := addr.Unmap()
	switch {
	case !a.IsValid():
		return false, ""
	case a.IsPrivate():
		return true, "private address space"
	case a.IsLoopback():
		return true, "loopback address"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return true, "link-local address"
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return true, "multicast address"
	case a.IsUnspecified():
		return true, "unspecified address"
	}
	if a.Is4() {
		v := a.As4()
		switch {
		case v[0] == 0:
			return true, "\"this network\" address space"
		case v[0] == 100 && v[1]&0xc0 == 64:
			return true, "shared address space (CGNAT)"
		case v[0] >= 240:
			return true, "reserved address space (240.0.0.0/4)"
		}
	}
	return false, ""
}

// round rounds v to n decimals.
func round(v float64, n int) float64 {
	p := math.Pow10(n)
	return math.Round(v*p) / p
}
