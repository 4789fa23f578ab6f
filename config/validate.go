package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rampart-ip/rampart/misp"
)

// Validate checks the whole configuration and returns every problem at
// once, each prefixed with its key path.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	checkListen := func(path, v string) {
		if _, port, err := net.SplitHostPort(v); err != nil {
			bad(path, "must be host:port, got %q", v)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			bad(path, "port must be 0 to 65535, got %q", port)
		}
	}
	atLeast := func(path string, v Duration, min time.Duration) {
		if v.Std() < min {
			bad(path, "must be at least %s, got %s", min, v)
		}
	}

	checkListen("http.listen", c.HTTP.Listen)
	checkListen("grpc.listen", c.GRPC.Listen)
	atLeast("http.read_timeout", c.HTTP.ReadTimeout, time.Second)
	atLeast("http.write_timeout", c.HTTP.WriteTimeout, time.Second)
	if c.HTTP.MaxBatch < 1 || c.HTTP.MaxBatch > 1_000_000 {
		bad("http.max_batch", "must be 1 to 1000000, got %d", c.HTTP.MaxBatch)
	}
	if c.HTTP.MaxBodyBytes < 1024 {
		bad("http.max_body_bytes", "must be at least 1024, got %d", c.HTTP.MaxBodyBytes)
	}
	for i, p := range c.HTTP.TrustedProxies {
		if _, err := ParsePrefixOrAddr(p); err != nil {
			bad(fmt.Sprintf("http.trusted_proxies[%d]", i), "%v", err)
		}
	}
	if v := c.HTTP.AuthzChallenge; v != "allow" && v != "deny" {
		bad("http.authz_challenge", "must be allow or deny, got %q", v)
	}
	if c.GRPC.ExtAuthz.TrustedHops < 0 || c.GRPC.ExtAuthz.TrustedHops > 16 {
		bad("grpc.ext_authz.trusted_hops", "must be 0 to 16, got %d", c.GRPC.ExtAuthz.TrustedHops)
	}
	if v := c.GRPC.ExtAuthz.Challenge; v != "allow" && v != "deny" {
		bad("grpc.ext_authz.challenge", "must be allow or deny, got %q", v)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", "must not be empty")
	}
	if u := c.Storage.MongoDBURI; u != "" && !strings.HasPrefix(u, "mongodb://") && !strings.HasPrefix(u, "mongodb+srv://") {
		bad("storage.mongodb_uri", "must start with mongodb:// or mongodb+srv://")
	}
	if c.Storage.Database == "" {
		bad("storage.database", "must not be empty")
	}

	if c.MISP.URL != "" {
		if u, err := url.Parse(c.MISP.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("misp.url", "must be an http:// or https:// URL")
		}
		if c.MISP.Key == "" {
			bad("misp.key", "is required when misp.url is set (or set RAMPART_MISP_KEY)")
		}
	}
	atLeast("misp.timeout", c.MISP.Timeout, time.Second)
	atLeast("misp.poll_interval", c.MISP.PollInterval, 10*time.Second)
	atLeast("misp.attributes.reconcile", c.MISP.Attributes.Reconcile, time.Minute)
	if n := c.MISP.Attributes.PageSize; n < 1 || n > 100000 {
		bad("misp.attributes.page_size", "must be 1 to 100000, got %d", n)
	}
	for i, t := range c.MISP.Attributes.Types {
		if !ipTypes[t] {
			bad(fmt.Sprintf("misp.attributes.types[%d]", i), "unknown IP attribute type %q (known: ip-src, ip-dst, ip-src|port, ip-dst|port, domain|ip)", t)
		}
	}

	atLeast("sync.interval", c.Sync.Interval, time.Minute)
	atLeast("sync.timeout", c.Sync.Timeout, time.Second)
	if c.Sync.MaxBytes < 1024 {
		bad("sync.max_bytes", "must be at least 1024, got %d", c.Sync.MaxBytes)
	}
	if c.Sync.Concurrency < 1 || c.Sync.Concurrency > 64 {
		bad("sync.concurrency", "must be 1 to 64, got %d", c.Sync.Concurrency)
	}
	atLeast("history.retention", c.History.Retention, time.Hour)
	atLeast("history.stale_after", c.History.StaleAfter, time.Minute)

	names := map[string]int{}
	for i, f := range c.Feeds {
		errs = append(errs, validateFeed(fmt.Sprintf("feeds[%d]", i), f)...)
		if j, dup := names[f.Name]; dup && f.Name != "" {
			bad(fmt.Sprintf("feeds[%d].name", i), "%q is already the name of feeds[%d]", f.Name, j)
		}
		names[f.Name] = i
	}

	sc := c.Scoring
	if sc.Thresholds.Block < 0 || sc.Thresholds.Block > 100 {
		bad("scoring.thresholds.block", "must be 0 to 100, got %g", sc.Thresholds.Block)
	}
	if sc.Thresholds.Challenge < 0 || sc.Thresholds.Challenge > 100 {
		bad("scoring.thresholds.challenge", "must be 0 to 100, got %g", sc.Thresholds.Challenge)
	}
	if sc.Thresholds.Block > sc.Thresholds.Challenge {
		bad("scoring.thresholds", "block (%g) must not be above challenge (%g)", sc.Thresholds.Block, sc.Thresholds.Challenge)
	}
	atLeast("scoring.default_lifetime", sc.DefaultLifetime, time.Minute)
	if sc.DecaySpeed <= 0 || sc.DecaySpeed > 100 {
		bad("scoring.decay_speed", "must be above 0 and at most 100, got %g", sc.DecaySpeed)
	}
	if sc.WarninglistDiscount < 0 || sc.WarninglistDiscount > 1 {
		bad("scoring.warninglist_discount", "must be 0 to 1, got %g", sc.WarninglistDiscount)
	}
	if sc.WarninglistTrust < 0 || sc.WarninglistTrust > 1 {
		bad("scoring.warninglist_trust", "must be 0 to 1, got %g", sc.WarninglistTrust)
	}
	if t := sc.Thresholds.Triage; t < sc.Thresholds.Challenge || t > 100 {
		bad("scoring.thresholds.triage", "must be from challenge (%g) to 100, got %g", sc.Thresholds.Challenge, t)
	}
	if sc.WarninglistQuorum < 1 {
		bad("scoring.warninglist_quorum", "must be at least 1, got %d", sc.WarninglistQuorum)
	}
	if sc.HistoryWeight < 0 || sc.HistoryWeight > 1 {
		bad("scoring.history_weight", "must be 0 to 1, got %g", sc.HistoryWeight)
	}
	if sc.ContextCap < 0 || sc.ContextCap > 1 {
		bad("scoring.context_cap", "must be 0 to 1, got %g", sc.ContextCap)
	}
	if c.Cache.Size < 0 {
		bad("cache.size", "must not be negative, got %d", c.Cache.Size)
	}

	keyNames := map[string]bool{}
	for i, k := range c.Auth.APIKeys {
		p := fmt.Sprintf("auth.api_keys[%d]", i)
		if k.Name == "" {
			bad(p+".name", "must not be empty")
		} else if keyNames[k.Name] {
			bad(p+".name", "%q is used twice", k.Name)
		}
		keyNames[k.Name] = true
		switch {
		case k.Key == "" && k.KeyEnv != "":
			bad(p+".key_env", "environment variable %s is empty or unset", k.KeyEnv)
		case k.Key == "":
			bad(p+".key", "must be set (or use key_env)")
		case len(k.Key) < 16:
			bad(p+".key", "must be at least 16 characters")
		}
		if k.Role != "query" && k.Role != "bouncer" && k.Role != "admin" {
			bad(p+".role", "must be query, bouncer or admin, got %q", k.Role)
		}
	}
	if rl := c.Auth.RateLimit; rl.PerKey < 0 || rl.PerKey > 1e6 || rl.PerKey != rl.PerKey {
		bad("auth.rate_limit.per_key", "must be 0 (off) to 1000000 requests per second, got %g", rl.PerKey)
	}
	if rl := c.Auth.RateLimit; rl.PerPeer < 0 || rl.PerPeer > 1e6 || rl.PerPeer != rl.PerPeer {
		bad("auth.rate_limit.per_peer", "must be 0 (off) to 1000000 requests per second, got %g", rl.PerPeer)
	}
	if b := c.Auth.RateLimit.Burst; b < 1 || b > 1_000_000 {
		bad("auth.rate_limit.burst", "must be 1 to 1000000, got %d", b)
	}
	if n := c.Auth.RateLimit.MaxPeers; n < 1 || n > 10_000_000 {
		bad("auth.rate_limit.max_peers", "must be 1 to 10000000, got %d", n)
	}
	if s := c.Alerts.Slack; s.Token != "" || s.Channel != "" {
		if s.Token == "" {
			bad("alerts.slack.token", "is required when alerts.slack.channel is set (or use token_env / RAMPART_SLACK_TOKEN)")
		}
		if s.Channel == "" {
			bad("alerts.slack.channel", "is required when a Slack token is set")
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}
	return errors.Join(errs...)
}

var ipTypes = map[string]bool{"ip-src": true, "ip-dst": true, "ip-src|port": true, "ip-dst|port": true, "domain|ip": true}

var columnList = regexp.MustCompile(`^\s*\d+(\s*,\s*\d+)*\s*$`)

func validateFeed(path string, f misp.Feed) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", path, key, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(f.Name) == "" {
		bad("name", "must not be empty")
	}
	if f.URL == "" {
		bad("url", "must not be empty")
	} else if u, err := url.Parse(f.URL); err == nil && u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file" && len(u.Scheme) > 1 {
		bad("url", "scheme %q is not supported (use http, https, file:// or a path)", u.Scheme)
	}
	switch f.SourceFormat {
	case misp.FormatFreetext, misp.FormatMISP:
	case misp.FormatCSV:
		v := f.Settings.CSV.Value
		if v == "" {
			v = "1"
		}
		if !columnList.MatchString(v) {
			bad("settings.csv.value", "columns must be positive integers separated by commas, got %q", f.Settings.CSV.Value)
		} else {
			for _, c := range strings.Split(v, ",") {
				if n, _ := strconv.Atoi(strings.TrimSpace(c)); n < 1 {
					bad("settings.csv.value", "column must be a positive integer, got %q", strings.TrimSpace(c))
				}
			}
		}
	default:
		bad("source_format", "must be freetext, csv or misp, got %q", f.SourceFormat)
	}
	if f.Weight != nil && (*f.Weight < 0 || *f.Weight > 1) {
		bad("weight", "must be 0 to 1, got %g", *f.Weight)
	}
	if f.Lifetime.Std() < 0 {
		bad("lifetime", "must not be negative")
	}
	if r := f.Refresh.Std(); r != 0 && r < time.Minute {
		bad("refresh", "must be at least 1m, got %s", f.Refresh)
	}
	return errs
}

// ParsePrefixOrAddr parses "203.0.113.7" or "203.0.113.0/24" (IPv4 or
// IPv6) into a masked prefix.
func ParsePrefixOrAddr(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid address or range %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid address or range %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
