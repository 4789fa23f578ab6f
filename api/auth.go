package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/rampart-ip/rampart/config"
)

// API key roles.
const (
	// RoleQuery may ask about addresses: /ip, /authz, history, feed and job status.
	RoleQuery = "query"
	// RoleBouncer may use the CrowdSec-compatible endpoints and blocklists.
	RoleBouncer = "bouncer"
	// RoleAdmin may do everything, including feed management.
	RoleAdmin = "admin"
)

// maxKeyLen bounds a presented API key; longer ones are rejected unhashed.
const maxKeyLen = 512

// Auth holds the configured API keys and decides what a request may do.
// Keys are kept only as SHA-256 digests and compared in constant time;
// they never appear in logs, errors or answers. Auth is immutable and safe
// for concurrent use.
type Auth struct {
	open bool
	keys []apiKey
}

type apiKey struct {
	name   string
	role   string
	digest [sha256.Size]byte
}

// NewAuth builds the key set of cfg. A key may be given inline (key) or
// read from an environment variable (key_env) with getenv (os.Getenv in
// production). Every problem is reported at once, each naming its key
// path; no error message contains a key.
func NewAuth(cfg config.Auth, getenv func(string) string) (*Auth, error) {
	a := &Auth{open: cfg.OpenQueries}
	var errs []error
	names := map[string]bool{}
	digests := map[[sha256.Size]byte]string{}
	for i, k := range cfg.APIKeys {
		path := fmt.Sprintf("auth.api_keys[%d]", i)
		switch {
		case k.Name == "":
			errs = append(errs, fmt.Errorf("%s.name: must not be empty", path))
		case names[k.Name]:
			errs = append(errs, fmt.Errorf("%s.name: %q is used by another key", path, k.Name))
		}
		names[k.Name] = true
		switch k.Role {
		case RoleQuery, RoleBouncer, RoleAdmin:
		default:
			errs = append(errs, fmt.Errorf("%s.role: %q is not one of query, bouncer, admin", path, k.Role))
		}
		key := k.Key
		switch {
		case k.Key != "" && k.KeyEnv != "":
			// config.Load resolves key_env into key; only a key that
			// differs from the variable's value was written twice.
			if k.Key != getenv(k.KeyEnv) {
				errs = append(errs, fmt.Errorf("%s: set key or key_env, not both", path))
				continue
			}
		case k.KeyEnv != "":
			key = getenv(k.KeyEnv)
			if key == "" {
				errs = append(errs, fmt.Errorf("%s.key_env: environment variable %s is empty or unset", path, k.KeyEnv))
				continue
			}
		case k.Key == "":
			errs = append(errs, fmt.Errorf("%s.key: must not be empty (or set key_env)", path))
			continue
		}
		if len(key) > maxKeyLen {
			errs = append(errs, fmt.Errorf("%s.key: longer than %d bytes", path, maxKeyLen))
			continue
		}
		d := sha256.Sum256([]byte(key))
		if other, dup := digests[d]; dup {
			errs = append(errs, fmt.Errorf("%s.key: same key as %q", path, other))
			continue
		}
		digests[d] = k.Name
		a.keys = append(a.keys, apiKey{name: k.Name, role: k.Role, digest: d})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("auth config: %w", err)
	}
	return a, nil
}

// Role returns the role of an API key, and false when the key is not
// configured. Every configured key is compared, in constant time, so the
// time taken says nothing about which key or how much of it matched.
func (a *Auth) Role(key string) (role string, ok bool) {
	if a == nil || key == "" || len(key) > maxKeyLen {
		return "", false
	}
	d := sha256.Sum256([]byte(key))
	for i := range a.keys {
		if subtle.ConstantTimeCompare(d[:], a.keys[i].digest[:]) == 1 {
			role, ok = a.keys[i].role, true
		}
	}
	return role, ok
}

// OpenQueries reports whether queries need no key.
func (a *Auth) OpenQueries() bool { return a != nil && a.open }

// RequestKey returns the API key a request carries: "Authorization: Bearer
// KEY" or "X-Api-Key: KEY" (the CrowdSec bouncers' header).
func RequestKey(r *http.Request) string {
	if v := r.Header.Get("Authorization"); v != "" {
		if scheme, key, ok := strings.Cut(v, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(key)
		}
	}
	return strings.TrimSpace(r.Header.Get("X-Api-Key"))
}

// allows reports whether role may act where want is required: admin may do
// everything, the others only what they are named for.
func allows(role, want string) bool {
	return role == want || role == RoleAdmin
}

// check decides a request that needs role want. It returns nil, or an error
// wrapping ErrUnauthorized (no key) or ErrForbidden (unknown key, or a
// role that does not allow it).
func (a *Auth) check(r *http.Request, want string) error {
	if want == RoleQuery && a.OpenQueries() {
		return nil
	}
	key := RequestKey(r)
	if key == "" {
		return fmt.Errorf("%w: this endpoint needs a %s key (Authorization: Bearer KEY or X-Api-Key: KEY)", ErrUnauthorized, want)
	}
	role, ok := a.Role(key)
	if !ok {
		return fmt.Errorf("%w: unknown api key", ErrForbidden)
	}
	if !allows(role, want) {
		return fmt.Errorf("%w: a %s key may not do this; it needs %s", ErrForbidden, role, want)
	}
	return nil
}

// guard wraps h so that it runs only for requests allowed the role want.
// It wraps at registration, so a route costs no extra allocation per
// request; with open queries a query route is not wrapped at all.
func (a *Auth) guard(want string, h echo.HandlerFunc) echo.HandlerFunc {
	if want == RoleQuery && a.OpenQueries() {
		return h
	}
	return func(c echo.Context) error {
		if err := a.check(c.Request(), want); err != nil {
			return err
		}
		return h(c)
	}
}
