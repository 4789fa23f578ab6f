package api

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rampart-ip/rampart/reputation"
)

// unmatchedRoute labels requests that matched no route, so that scanners
// cannot grow the label set.
const unmatchedRoute = "unmatched"

// commonCodes are the statuses whose counters are resolved in advance, so
// that counting them costs no label lookup and no allocation.
var commonCodes = []int{200, 204, 400, 401, 403, 404, 405, 413, 429, 499, 500, 501, 503, 504}

// metrics are the server's Prometheus collectors. Per-route children are
// resolved once, when the routes are known, into an immutable map that
// requests read without locks.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	answers  *prometheus.CounterVec

	routes   map[string]*routeMetrics // set once by setRoutes, then read-only
	verdicts map[string]prometheus.Counter
}

type routeMetrics struct {
	name     string
	codes    map[int]prometheus.Counter
	duration prometheus.Observer
}

func defaultRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rampart_http_requests_total",
			Help: "HTTP requests answered, by route template and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rampart_http_request_duration_seconds",
			Help: "Time from routing to the handler's return, by route template.",
			// 25µs to ~1.6s: /ip answers in microseconds, syncs take seconds.
			Buckets: prometheus.ExponentialBuckets(25e-6, 4, 9),
		}, []string{"route"}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rampart_answers_total",
			Help: "Reputation answers given over HTTP (/ip, /authz), by verdict.",
		}, []string{"verdict"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.answers} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	m.verdicts = map[string]prometheus.Counter{}
	for _, v := range append(knownVerdicts, otherVerdict) {
		m.verdicts[v] = m.answers.WithLabelValues(v)
	}
	m.setRoutes(nil)
	return m, nil
}

// setRoutes resolves the per-route children. It runs before the server
// serves, so the map it builds is never written concurrently with reads.
func (m *metrics) setRoutes(paths []string) {
	routes := map[string]*routeMetrics{}
	for _, p := range append(paths, unmatchedRoute) {
		if routes[p] != nil {
			continue
		}
		rm := &routeMetrics{name: p, codes: map[int]prometheus.Counter{}, duration: m.duration.WithLabelValues(p)}
		for _, code := range commonCodes {
			rm.codes[code] = m.requests.WithLabelValues(p, strconv.Itoa(code))
		}
		routes[p] = rm
	}
	m.routes = routes
}

// otherVerdict labels verdicts outside the known set, so that the label
// set stays bounded whatever a model returns.
const otherVerdict = "other"

var knownVerdicts = []string{reputation.VerdictDangerous, reputation.VerdictSuspicious, reputation.VerdictTriage, reputation.VerdictNone}

// verdict counts one answer.
func (m *metrics) verdict(v string) {
	c, ok := m.verdicts[v]
	if !ok {
		c = m.verdicts[otherVerdict]
	}
	c.Inc()
}

var verdictKey = []byte(`"verdict":"`)

// verdictOf reads the verdict of a rendered answer without decoding it.
// The key cannot occur inside a JSON string (its quotes would be
// escaped), and no nested object of an answer has a verdict, so the
// first match is the answer's.
func verdictOf(body []byte) string {
	i := bytes.Index(body, verdictKey)
	if i < 0 {
		return otherVerdict
	}
	rest := body[i+len(verdictKey):]
	for _, v := range knownVerdicts {
		if len(rest) > len(v) && rest[len(v)] == '"' && string(rest[:len(v)]) == v {
			return v
		}
	}
	return otherVerdict
}

// middleware counts and times every request and turns a panic into a 500
// (logged with its stack) instead of a dropped connection. It also hands
// errors to the error handler itself, so that the status it counts is the
// one the client got.
func (m *metrics) middleware(logger *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			start := time.Now()
			defer func() {
				if r := recover(); r != nil {
					if r == http.ErrAbortHandler {
						panic(r)
					}
					logger.Error("handler panicked", "route", c.Path(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
					err = fmt.Errorf("handler panicked: %v", r)
				}
				if err != nil {
					c.Error(err)
					err = nil
				}
				m.observe(c.Path(), c.Response().Status, time.Since(start))
			}()
			return next(c)
		}
	}
}

func (m *metrics) observe(route string, code int, d time.Duration) {
	rm, ok := m.routes[route]
	if !ok {
		rm = m.routes[unmatchedRoute]
	}
	rm.duration.Observe(d.Seconds())
	if c, ok := rm.codes[code]; ok {
		c.Inc()
		return
	}
	m.requests.WithLabelValues(rm.name, strconv.Itoa(code)).Inc()
}

// handler serves the registry in Prometheus' exposition formats.
func (m *metrics) handler(reg *prometheus.Registry) echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
}
