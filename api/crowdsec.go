package api

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/rampart-ip/rampart/reputation"
)

// DecisionSource is what the CrowdSec endpoints and the blocklist export
// need of the reputation service (*reputation.Service implements it).
// Methods are safe for concurrent use and do not block on I/O.
type DecisionSource interface {
	// Judge returns the judgement of one address.
	Judge(addr netip.Addr) reputation.Judgement
	// BlockSet returns the prefixes whose action is block, each once, as
	// of a moment close to now (reputation.BlockSetMaxAge): the same set
	// while neither the index nor that moment changes, so that what is
	// derived from it can be kept per set.
	BlockSet(now time.Time) *reputation.BlockSet
	// Generation changes whenever a new index is swapped in.
	Generation() uint64
	// Ready reports whether an index is loaded.
	Ready() bool
}

var _ DecisionSource = (*reputation.Service)(nil)

const (
	csOrigin = "rampart"
	// csForever is the duration given to a decision that does not expire
	// on its own: bouncers use the duration as a local timeout.
	csForever = 10 * 365 * 24 * time.Hour
	// csUnknownUntil is the duration given when the service blocks an
	// address that no blocked prefix explains (context-based blocks).
	csUnknownUntil   = time.Hour
	csMaxMetricsBody = 1 << 20
	csBufSize        = 64 << 10
)

// CrowdSecOptions configure the CrowdSec-compatible endpoints.
type CrowdSecOptions struct {
	// Service supplies the decisions.
	Service DecisionSource
	// Role resolves an X-Api-Key to its role; bouncer and admin keys may
	// use the endpoints. Nil lets no one in.
	Role func(key string) (role string, ok bool)
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Logger receives the endpoints' logs; nil discards them.
	Logger *slog.Logger
}

// CrowdSec serves the bouncer part of CrowdSec's Local API, so that an
// existing CrowdSec bouncer pointed at Rampart works unchanged: decisions
// are the prefixes whose action is block, origin "rampart", type "ban".
type CrowdSec struct {
	opts CrowdSecOptions
	log  *slog.Logger

	mu       sync.Mutex
	bouncers map[[32]byte]*bouncerMemory // by hash of the API key

	lookupMu sync.Mutex
	lookup   *decisionTable
}

// bouncerMemory is what one bouncer was last sent. Its mutex serializes a
// bouncer's concurrent stream calls.
type bouncerMemory struct {
	mu   sync.Mutex
	sent *sentSet // nil until a stream was fully written
}

// NewCrowdSec returns the CrowdSec endpoints.
func NewCrowdSec(opts CrowdSecOptions) *CrowdSec {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &CrowdSec{opts: opts, log: log.With("component", "crowdsec"), bouncers: map[[32]byte]*bouncerMemory{}}
}

// Register adds the CrowdSec routes to e.
func (cs *CrowdSec) Register(e *echo.Echo) {
	e.GET("/v1/decisions", cs.decisions)
	e.HEAD("/v1/decisions", cs.head)
	e.GET("/v1/decisions/stream", cs.stream)
	e.HEAD("/v1/decisions/stream", cs.head)
	e.POST("/v1/usage-metrics", cs.usageMetrics)
}

// csError answers in CrowdSec's error shape, which bouncers parse.
func csError(c echo.Context, code int, msg string) error {
	return c.JSON(code, map[string]string{"message": msg})
}

// auth returns the hash of the request's key when it has a bouncer or
// admin role.
func (cs *CrowdSec) auth(c echo.Context) ([32]byte, bool) {
	key := c.Request().Header.Get("X-Api-Key")
	if key == "" || cs.opts.Role == nil {
		return [32]byte{}, false
	}
	role, ok := cs.opts.Role(key)
	if !ok || (role != "bouncer" && role != "admin") {
		return [32]byte{}, false
	}
	return sha256.Sum256([]byte(key)), true
}

func (cs *CrowdSec) head(c echo.Context) error {
	if _, ok := cs.auth(c); !ok {
		return csError(c, http.StatusForbidden, "access forbidden")
	}
	return c.NoContent(http.StatusOK)
}

// usageMetrics accepts the metrics current bouncers push and drops them.
func (cs *CrowdSec) usageMetrics(c echo.Context) error {
	if _, ok := cs.auth(c); !ok {
		return csError(c, http.StatusForbidden, "access forbidden")
	}
	n, err := io.Copy(io.Discard, io.LimitReader(c.Request().Body, csMaxMetricsBody+1))
	if err != nil {
		return csError(c, http.StatusBadRequest, "reading body failed")
	}
	if n > csMaxMetricsBody {
		return csError(c, http.StatusRequestEntityTooLarge, "body too large")
	}
	return c.NoContent(http.StatusCreated)
}

// csFilter is which decisions a bouncer asked for (stream's scopes,
// origins and scenario filters).
type csFilter struct {
	ip, rng             bool
	anyOrigin           bool
	containing, without []string
}

func parseCSFilter(q func(string) string) csFilter {
	f := csFilter{ip: true, rng: true, anyOrigin: true}
	if s := q("scopes"); s != "" {
		f.ip, f.rng = false, false
		for _, sc := range strings.Split(s, ",") {
			switch strings.ToLower(strings.TrimSpace(sc)) {
			case "ip":
				f.ip = true
			case "range":
				f.rng = true
			}
		}
	}
	if s := q("origins"); s != "" {
		f.anyOrigin = false
		for _, o := range strings.Split(s, ",") {
			if strings.TrimSpace(o) == csOrigin {
				f.anyOrigin = true
			}
		}
	}
	split := func(s string) []string {
		var out []string
		for _, w := range strings.Split(s, ",") {
			if w = strings.TrimSpace(w); w != "" {
				out = append(out, w)
			}
		}
		return out
	}
	f.containing = split(q("scenarios_containing"))
	f.without = split(q("scenarios_not_containing"))
	return f
}

func (f *csFilter) keep(p netip.Prefix, scenario string) bool {
	if !f.anyOrigin {
		return false
	}
	if p.IsSingleIP() && !f.ip || !p.IsSingleIP() && !f.rng {
		return false
	}
	if len(f.containing) > 0 && !slices.ContainsFunc(f.containing, func(w string) bool { return strings.Contains(scenario, w) }) {
		return false
	}
	return !slices.ContainsFunc(f.without, func(w string) bool { return strings.Contains(scenario, w) })
}

// stream serves GET /v1/decisions/stream. startup=true (or a bouncer's
// first call) sends every current decision as new and resets what the
// bouncer is remembered to have; later calls send only what changed since
// its previous fully written answer. The body is written as it is made,
// from the service's shared block set.
func (cs *CrowdSec) stream(c echo.Context) error {
	id, ok := cs.auth(c)
	if !ok {
		return csError(c, http.StatusForbidden, "access forbidden")
	}
	q := c.QueryParam
	var startup bool
	switch q("startup") {
	case "", "false":
	case "true":
		startup = true
	default:
		return csError(c, http.StatusBadRequest, "startup: must be true or false")
	}
	filter := parseCSFilter(q)
	filterKey := q("scopes") + "\x00" + q("origins") + "\x00" + q("scenarios_containing") + "\x00" + q("scenarios_not_containing")

	cs.mu.Lock()
	mem := cs.bouncers[id]
	if mem == nil {
		mem = &bouncerMemory{}
		cs.bouncers[id] = mem
	}
	cs.mu.Unlock()

	mem.mu.Lock()
	defer mem.mu.Unlock()
	old := mem.sent
	if startup {
		old = nil
	}
	now := cs.opts.Now()
	gen := cs.opts.Service.Generation()

	resp := c.Response()
	resp.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	resp.WriteHeader(http.StatusOK)
	w := bufio.NewWriterSize(resp, csBufSize)
	if old != nil && old.unchanged(gen, filterKey, now) {
		_, err := w.WriteString(`{"new":[],"deleted":[]}`)
		if err == nil {
			err = w.Flush()
		}
		return cs.streamDone(err)
	}
	// The set is shared by every bouncer and request; what this bouncer
	// holds is the only per-bouncer copy, 24 bytes a decision, sized once.
	set := cs.opts.Service.BlockSet(now)
	next, err := writeStream(w, set.All(), old, set.Len(), &filter, set.Generation(), now)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		next.filter = filterKey
		mem.sent = next
	}
	return cs.streamDone(err)
}

// streamDone logs a failed write: the status line is gone, so the error
// cannot be answered, and the bouncer's memory stays as it was.
func (cs *CrowdSec) streamDone(err error) error {
	if err != nil {
		cs.log.Debug("decision stream not completed", "err", err)
	}
	return nil
}

// writeStream writes {"new":[...],"deleted":[...]} and returns what the
// bouncer holds once it has read it all. A current decision is new when
// the bouncer does not hold it, or when what it holds will time out before
// half of the decision's remaining time (bouncers drop a decision when its
// duration runs out, so a lengthened one must be sent again). size is
// the number of decisions, at most.
func writeStream(w *bufio.Writer, decisions iter.Seq[reputation.Decision], old *sentSet, size int, f *csFilter, gen uint64, now time.Time) (*sentSet, error) {
	next := &sentSet{gen: gen, entries: make([]sentEntry, 0, size)}
	buf := make([]byte, 0, 512)
	buf = append(buf, `{"new":[`...)
	first := true
	for d := range decisions {
		if !d.Prefix.IsValid() || !f.keep(d.Prefix, d.Source) {
			continue
		}
		k := pkeyOf(d.Prefix)
		until := unixUntil(d.Until)
		send := true
		if old != nil {
			if held, ok := old.find(k); ok {
				remaining := int64(until) - now.Unix()
				heldLeft := int64(held) - now.Unix()
				if heldLeft >= remaining/2 {
					send = false
					until = held
				}
			}
		}
		next.add(k, until)
		if !send {
			continue
		}
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = appendDecision(buf, d.Prefix, d.Source, d.Until, now)
		if len(buf) >= csBufSize/2 {
			if _, err := w.Write(buf); err != nil {
				return nil, fmt.Errorf("write decision stream: %w", err)
			}
			buf = buf[:0]
		}
	}
	buf = append(buf, `],"deleted":[`...)
	next.sort()
	if old != nil {
		first = true
		for _, e := range old.entries {
			if _, ok := next.find(e.key); ok {
				continue
			}
			if !first {
				buf = append(buf, ',')
			}
			first = false
			buf = appendDeleted(buf, e.key.prefix())
			if len(buf) >= csBufSize/2 {
				if _, err := w.Write(buf); err != nil {
					return nil, fmt.Errorf("write decision stream: %w", err)
				}
				buf = buf[:0]
			}
		}
	}
	buf = append(buf, "]}"...)
	if _, err := w.Write(buf); err != nil {
		return nil, fmt.Errorf("write decision stream: %w", err)
	}
	return next, nil
}

// decisions serves GET /v1/decisions: the decisions that apply to an
// address or range (ip=, range=, or scope= with value=; contains=false
// asks for the decisions inside the range instead), or all of them without
// a filter. No decision is the body null, as CrowdSec answers and bouncers
// expect.
func (cs *CrowdSec) decisions(c echo.Context) error {
	if _, ok := cs.auth(c); !ok {
		return csError(c, http.StatusForbidden, "access forbidden")
	}
	q := c.QueryParam
	if t := q("type"); t != "" && !strings.EqualFold(t, "ban") {
		return c.JSONBlob(http.StatusOK, []byte("null"))
	}
	scope, value := strings.ToLower(q("scope")), q("value")
	switch {
	case q("ip") != "":
		scope, value = "ip", q("ip")
	case q("range") != "":
		scope, value = "range", q("range")
	}
	if scope == "" && value == "" {
		return cs.writeAll(c, parseCSFilter(q))
	}
	contains := true
	switch q("contains") {
	case "", "true":
	case "false":
		contains = false
	default:
		return csError(c, http.StatusBadRequest, "contains: must be true or false")
	}
	var p netip.Prefix
	switch scope {
	case "ip":
		a, err := parseCSAddr(value)
		if err != nil {
			return csError(c, http.StatusBadRequest, err.Error())
		}
		p = netip.PrefixFrom(a, a.BitLen())
	case "range":
		var err error
		if p, err = parseCSRange(value); err != nil {
			return csError(c, http.StatusBadRequest, err.Error())
		}
	default:
		// Rampart only decides on addresses and ranges.
		return c.JSONBlob(http.StatusOK, []byte("null"))
	}
	now := cs.opts.Now()
	var found []tableHit
	if p.IsSingleIP() && contains {
		if cs.opts.Service.Judge(p.Addr()).Action != reputation.ActionBlock {
			return c.JSONBlob(http.StatusOK, []byte("null"))
		}
		found = cs.table(now).supernets(p, now)
		if len(found) == 0 {
			found = []tableHit{{prefix: p, scenario: csOrigin, until: now.Add(csUnknownUntil)}}
		}
	} else if contains {
		found = cs.table(now).supernets(p, now)
	} else {
		found = cs.table(now).subnets(p, now)
	}
	if len(found) == 0 {
		return c.JSONBlob(http.StatusOK, []byte("null"))
	}
	buf := []byte{'['}
	for i, h := range found {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendDecision(buf, h.prefix, h.scenario, h.until, now)
	}
	buf = append(buf, ']')
	return c.JSONBlob(http.StatusOK, buf)
}

// writeAll streams every current decision as a JSON array (null if none).
func (cs *CrowdSec) writeAll(c echo.Context, f csFilter) error {
	now := cs.opts.Now()
	resp := c.Response()
	resp.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	resp.WriteHeader(http.StatusOK)
	w := bufio.NewWriterSize(resp, csBufSize)
	buf := make([]byte, 0, 512)
	n := 0
	for d := range cs.opts.Service.BlockSet(now).All() {
		if !d.Prefix.IsValid() || !f.keep(d.Prefix, d.Source) {
			continue
		}
		if n == 0 {
			buf = append(buf, '[')
		} else {
			buf = append(buf, ',')
		}
		n++
		buf = appendDecision(buf, d.Prefix, d.Source, d.Until, now)
		if len(buf) >= csBufSize/2 {
			if _, err := w.Write(buf); err != nil {
				return cs.streamDone(err)
			}
			buf = buf[:0]
		}
	}
	if n == 0 {
		buf = append(buf, "null"...)
	} else {
		buf = append(buf, ']')
	}
	_, err := w.Write(buf)
	if err == nil {
		err = w.Flush()
	}
	return cs.streamDone(err)
}

var errCSValue = errors.New("invalid value")

func parseCSAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if len(s) > 64 || err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("ip: %w: not an IPv4 or IPv6 address", errCSValue)
	}
	return a.Unmap(), nil
}

func parseCSRange(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if len(s) > 64 || err != nil {
		if a, aerr := parseCSAddr(s); aerr == nil {
			return netip.PrefixFrom(a, a.BitLen()), nil
		}
		return netip.Prefix{}, fmt.Errorf("range: %w: not a CIDR range", errCSValue)
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// csDuration is the time left until until, in Go's duration syntax, as
// CrowdSec writes it; a zero until never expires.
func csDuration(until, now time.Time) time.Duration {
	if until.IsZero() {
		return csForever
	}
	d := until.Sub(now).Truncate(time.Second)
	if d < time.Second {
		d = time.Second
	}
	return d
}

// decisionID is a stable, positive id for a prefix that fits in a JSON
// number without loss (53 bits).
func decisionID(p netip.Prefix) uint64 {
	k := pkeyOf(p)
	h := uint64(14695981039346656037)
	for _, v := range [3]uint64{k.hi, k.lo, uint64(k.bits)} {
		for i := 0; i < 8; i++ {
			h ^= (v >> (8 * i)) & 0xff
			h *= 1099511628211
		}
	}
	return h&(1<<53-1) | 1
}

func appendScopeValue(dst []byte, p netip.Prefix) []byte {
	if p.IsSingleIP() {
		dst = append(dst, `"scope":"Ip","value":"`...)
		dst = p.Addr().AppendTo(dst)
	} else {
		dst = append(dst, `"scope":"Range","value":"`...)
		dst = p.AppendTo(dst)
	}
	return append(dst, '"')
}

func appendDecision(dst []byte, p netip.Prefix, scenario string, until, now time.Time) []byte {
	d := csDuration(until, now)
	dst = append(dst, `{"id":`...)
	dst = csAppendUint(dst, decisionID(p))
	dst = append(dst, `,"origin":"rampart","type":"ban",`...)
	dst = appendScopeValue(dst, p)
	dst = append(dst, `,"duration":"`...)
	dst = append(dst, d.String()...)
	dst = append(dst, `","until":"`...)
	dst = now.Add(d).UTC().AppendFormat(dst, time.RFC3339)
	dst = append(dst, `","scenario":`...)
	dst = csAppendJSONString(dst, scenario)
	return append(dst, `,"simulated":false}`...)
}

func appendDeleted(dst []byte, p netip.Prefix) []byte {
	dst = append(dst, `{"id":`...)
	dst = csAppendUint(dst, decisionID(p))
	dst = append(dst, `,"origin":"rampart","type":"ban",`...)
	dst = appendScopeValue(dst, p)
	return append(dst, `,"duration":"0s","scenario":"","simulated":false}`...)
}

func csAppendUint(dst []byte, v uint64) []byte {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}

// csAppendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func csAppendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
