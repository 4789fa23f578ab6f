package api

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-ip/rampart/config"
)

const (
	queryKey   = "q-0123456789abcdef"
	bouncerKey = "b-0123456789abcdef"
	adminKey   = "a-0123456789abcdef"
)

func testKeys(open bool) config.Auth {
	return config.Auth{OpenQueries: open, APIKeys: []config.APIKey{
		{Name: "proxy", Key: queryKey, Role: RoleQuery},
		{Name: "bouncer", Key: bouncerKey, Role: RoleBouncer},
		{Name: "ops", KeyEnv: "RAMPART_TEST_ADMIN_KEY", Role: RoleAdmin},
	}}
}

func getenv(name string) string {
	if name == "RAMPART_TEST_ADMIN_KEY" {
		return adminKey
	}
	return ""
}

func TestNewAuth(t *testing.T) {
	t.Run("keys inline and from the environment get their roles", func(t *testing.T) {
		a, err := NewAuth(testKeys(false), getenv)
		if err != nil {
			t.Fatal(err)
		}
		for key, want := range map[string]string{queryKey: RoleQuery, bouncerKey: RoleBouncer, adminKey: RoleAdmin} {
			if role, ok := a.Role(key); !ok || role != want {
				t.Errorf("Role(%s...) = %q, %v; want %q", key[:2], role, ok, want)
			}
		}
		for _, key := range []string{"", "nope", queryKey + "x", queryKey[:len(queryKey)-1], strings.Repeat("k", 10000)} {
			if role, ok := a.Role(key); ok {
				t.Errorf("an unknown key got role %q", role)
			}
		}
	})
	bad := []struct {
		name string
		keys []config.APIKey
		want string
	}{
		{"an unknown role is refused", []config.APIKey{{Name: "x", Key: "k1", Role: "root"}}, "api_keys[0].role"},
		{"an empty name is refused", []config.APIKey{{Key: "k1", Role: RoleQuery}}, "api_keys[0].name"},
		{"a repeated name is refused", []config.APIKey{{Name: "x", Key: "k1", Role: RoleQuery}, {Name: "x", Key: "k2", Role: RoleQuery}}, "api_keys[1].name"},
		{"a missing key is refused", []config.APIKey{{Name: "x", Role: RoleQuery}}, "api_keys[0].key"},
		{"an unset key_env is refused", []config.APIKey{{Name: "x", KeyEnv: "RAMPART_TEST_UNSET", Role: RoleQuery}}, "RAMPART_TEST_UNSET"},
		{"key and key_env together are refused", []config.APIKey{{Name: "x", Key: "k1", KeyEnv: "E", Role: RoleQuery}}, "not both"},
		{"a key used twice is refused", []config.APIKey{{Name: "x", Key: "k1secret", Role: RoleQuery}, {Name: "y", Key: "k1secret", Role: RoleAdmin}}, "api_keys[1].key"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewAuth(config.Auth{APIKeys: tc.keys}, getenv)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			for _, k := range tc.keys {
				if k.Key != "" && strings.Contains(err.Error(), k.Key) {
					t.Errorf("error %q contains the key", err)
				}
			}
		})
	}
	t.Run("a key_env key as resolved by config.Load is accepted", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "rampart.yaml")
		yaml := "auth:\n  api_keys:\n    - {name: ops, key_env: RAMPART_TEST_ADMIN_KEY, role: admin}\n"
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path, func(k string) (string, bool) { v := getenv(k); return v, v != "" })
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewAuth(cfg.Auth, getenv)
		if err != nil {
			t.Fatalf("NewAuth over a loaded config: %v", err)
		}
		if role, ok := a.Role(adminKey); !ok || role != RoleAdmin {
			t.Errorf("Role(admin key) = %q, %v; want admin", role, ok)
		}
	})
	t.Run("every problem is reported at once", func(t *testing.T) {
		_, err := NewAuth(config.Auth{APIKeys: []config.APIKey{{Name: "x", Role: "bad"}, {Name: "", Key: "k", Role: RoleQuery}}}, getenv)
		if err == nil || !strings.Contains(err.Error(), "api_keys[0]") || !strings.Contains(err.Error(), "api_keys[1]") {
			t.Errorf("error %v", err)
		}
	})
}

func TestRoles(t *testing.T) {
	closed := newServer(t, func(o *Options) {
		o.Auth = testKeys(false)
		o.Getenv = getenv
		o.Admin = okSyncer{}
	}).Handler()
	open := newServer(t, func(o *Options) {
		o.Auth = testKeys(true)
		o.Getenv = getenv
		o.Admin = okSyncer{}
	}).Handler()
	ip := "/ip?ip=" + cleanHost
	sync := "/api/v1/feeds/blocklist_de/sync"
	cases := []struct {
		name           string
		h              http.Handler
		method, target string
		header         []string
		want           int
	}{
		{"open queries need no key", open, http.MethodGet, ip, nil, http.StatusOK},
		{"open forward-auth needs no key", open, http.MethodGet, "/authz", nil, http.StatusOK},
		{"closed queries without a key are a 401", closed, http.MethodGet, ip, nil, http.StatusUnauthorized},
		{"closed queries with an unknown key are a 403", closed, http.MethodGet, ip, []string{"X-Api-Key", "wrong"}, http.StatusForbidden},
		{"a query key in X-Api-Key may query", closed, http.MethodGet, ip, []string{"X-Api-Key", queryKey}, http.StatusOK},
		{"a query key as a bearer token may query", closed, http.MethodGet, ip, []string{"Authorization", "Bearer " + queryKey}, http.StatusOK},
		{"an admin key may query", closed, http.MethodGet, ip, []string{"X-Api-Key", adminKey}, http.StatusOK},
		{"a bouncer key may not use /ip", closed, http.MethodGet, ip, []string{"X-Api-Key", bouncerKey}, http.StatusForbidden},
		{"a closed batch needs a key too", closed, http.MethodPost, "/ip", nil, http.StatusUnauthorized},
		{"closed forward-auth takes the key from X-Api-Key", closed, http.MethodGet, "/authz", []string{"X-Api-Key", queryKey}, http.StatusOK},
		{"closed forward-auth ignores the client's Authorization header", closed, http.MethodGet, "/authz", []string{"Authorization", "Bearer " + queryKey}, http.StatusUnauthorized},
		{"closed history needs a key", closed, http.MethodGet, "/api/v1/ip/" + listedHost + "/history", nil, http.StatusUnauthorized},
		{"a feed sync without a key is a 401 even with open queries", open, http.MethodPost, sync, nil, http.StatusUnauthorized},
		{"a feed sync with a query key is a 403", open, http.MethodPost, sync, []string{"X-Api-Key", queryKey}, http.StatusForbidden},
		{"a feed sync with a bouncer key is a 403", open, http.MethodPost, sync, []string{"Authorization", "Bearer " + bouncerKey}, http.StatusForbidden},
		{"a feed sync with an admin key runs", open, http.MethodPost, sync, []string{"Authorization", "bearer " + adminKey}, http.StatusOK},
		{"health needs no key when queries are closed", closed, http.MethodGet, "/healthz", nil, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, tc.h, tc.method, tc.target, "", tc.header...)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body.String())
			}
			for _, k := range []string{queryKey, bouncerKey, adminKey} {
				if strings.Contains(w.Body.String(), k) {
					t.Errorf("answer contains a key: %s", w.Body.String())
				}
			}
			if w.Code == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}
