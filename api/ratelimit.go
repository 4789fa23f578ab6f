package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/rampart-ip/rampart/config"
)

// ErrRateLimited means the caller has used up its request budget. The
// HTTP answer is 429 with Retry-After, the gRPC one RESOURCE_EXHAUSTED.
var ErrRateLimited = errors.New("rate limit exceeded")

// defaultMaxPeers bounds the tracked client addresses when the
// configuration leaves it zero, as config.Default does.
const defaultMaxPeers = 100000

// RateLimiter holds the token buckets of auth.rate_limit: one per
// configured API key, and one per client address (an IPv6 client's /64,
// since one host holds a whole /64) for requests without a configured key.
// Trusted proxies have no per-address bucket: they speak for many clients.
// The address buckets are kept in an LRU of bounded size, so a flood of
// addresses costs bounded memory (a forgotten address starts again with a
// full bucket). RateLimiter is safe for concurrent use and shared by the
// HTTP and gRPC servers, so a key's budget covers both.
type RateLimiter struct {
	perKey, perPeer bool
	keys            []keyBucket
	peers           *lru.Cache[netip.Addr, *rate.Limiter]
	peerRate        rate.Limit
	burst           int
	trust           proxyTrust
}

type keyBucket struct {
	digest [sha256.Size]byte
	lim    *rate.Limiter // nil: the key is not limited
}

// NewRateLimiter builds the limiter of cfg over the keys of auth. It
// returns nil, and the servers install nothing, when both rates are zero:
// the request path is then exactly what it is without limits. trusted is
// http.trusted_proxies.
func NewRateLimiter(cfg config.RateLimit, auth *Auth, trusted []string) (*RateLimiter, error) {
	if cfg.PerKey <= 0 && cfg.PerPeer <= 0 {
		return nil, nil
	}
	var errs []error
	for path, v := range map[string]float64{"per_key": cfg.PerKey, "per_peer": cfg.PerPeer} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			errs = append(errs, fmt.Errorf("auth.rate_limit.%s: %g is not a rate", path, v))
		}
	}
	trust, err := newProxyTrust(trusted)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("rate limits: %w", err)
	}
	l := &RateLimiter{
		perKey:   cfg.PerKey > 0,
		perPeer:  cfg.PerPeer > 0,
		peerRate: rate.Limit(cfg.PerPeer),
		burst:    max(cfg.Burst, 1),
		trust:    trust,
	}
	if auth != nil {
		for _, k := range auth.keys {
			b := keyBucket{digest: k.digest}
			if l.perKey {
				b.lim = rate.NewLimiter(rate.Limit(cfg.PerKey), l.burst)
			}
			l.keys = append(l.keys, b)
		}
	}
	if l.perPeer {
		size := cfg.MaxPeers
		if size <= 0 {
			size = defaultMaxPeers
		}
		if l.peers, err = lru.New[netip.Addr, *rate.Limiter](size); err != nil {
			return nil, fmt.Errorf("rate limits: %w", err)
		}
	}
	return l, nil
}

// Allow takes one token for a request carrying key (may be empty) from
// peer at now. It reports whether the request may go ahead and, when not,
// how long until it would. A configured key draws from its own bucket
// (none when per_key is off); any other request from its peer's (none when
// per_peer is off, or the peer is a trusted proxy or not known).
func (l *RateLimiter) Allow(key string, peer netip.Addr, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	if key != "" && len(key) <= maxKeyLen && len(l.keys) > 0 {
		d := sha256.Sum256([]byte(key))
		found := -1
		for i := range l.keys { // every key compared, as in Auth.Role
			if subtle.ConstantTimeCompare(d[:], l.keys[i].digest[:]) == 1 {
				found = i
			}
		}
		if found >= 0 {
			return take(l.keys[found].lim, now)
		}
	}
	if !l.perPeer || !peer.IsValid() {
		return true, 0
	}
	peer = peer.Unmap()
	if l.trust.trusted(peer) {
		return true, 0
	}
	if peer.Is6() {
		peer = netip.PrefixFrom(peer, 64).Masked().Addr()
	}
	lim, ok := l.peers.Get(peer)
	if !ok {
		fresh := rate.NewLimiter(l.peerRate, l.burst)
		if prev, found, _ := l.peers.PeekOrAdd(peer, fresh); found {
			lim = prev
		} else {
			lim = fresh
		}
	}
	return take(lim, now)
}

// take takes one token from lim at now, or reports the wait without
// taking anything. A nil lim is no limit.
func take(lim *rate.Limiter, now time.Time) (bool, time.Duration) {
	if lim == nil {
		return true, 0
	}
	if lim.AllowN(now, 1) { // allocates nothing, unlike a reservation
		return true, 0
	}
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	return false, max(wait, time.Nanosecond)
}

// RetryAfter formats a wait for the Retry-After header: whole seconds,
// rounded up, at least 1.
func RetryAfter(wait time.Duration) string {
	s := int64(math.Ceil(wait.Seconds()))
	return strconv.FormatInt(max(s, 1), 10)
}

// rateExempt are the routes never limited: probes and scrapes must see the
// server as it is, not as the budget of their address.
var rateExempt = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// rateLimit is the Echo middleware of l. It runs after routing, so that
// c.Path() names the route, and answers 429 with Retry-After through the
// error handler.
func rateLimit(l *RateLimiter, now func() time.Time) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if rateExempt[c.Path()] {
				return next(c)
			}
			r := c.Request()
			// RemoteAddr is host:port from net/http; parseHop takes the
			// other forms (and allocates an error on the way).
			var peer netip.Addr
			if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
				peer = ap.Addr()
			} else {
				peer, _ = parseHop(r.RemoteAddr) // an unparsable peer has no bucket
			}
			ok, wait := l.Allow(RequestKey(r), peer, now())
			if !ok {
				c.Response().Header().Set("Retry-After", RetryAfter(wait))
				return echo.NewHTTPError(http.StatusTooManyRequests,
					fmt.Sprintf("%v: retry in %ss", ErrRateLimited, RetryAfter(wait))).SetInternal(ErrRateLimited)
			}
			return next(c)
		}
	}
}
