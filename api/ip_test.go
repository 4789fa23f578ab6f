package api

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampart-ip/rampart/config"
)

func TestGetIP(t *testing.T) {
	h := newServer(t, nil).Handler()
	cases := []struct {
		name       string
		query      string
		wantIP     string
		wantIoC    bool
		wantActive bool
		wantList   string // a source expected in blacklists, if any
	}{
		{"a listed IPv4 host is an active IoC", listedHost, listedHost, true, true, "blocklist_de"},
		{"an address inside a listed CIDR range is listed", rangeInside, rangeInside, true, true, "spamhaus_drop"},
		{"an address inside a listed IPv6 range is listed", listedV6, listedV6, true, true, "blocklist_de"},
		{"an unlisted IPv4 address is clean", cleanHost, cleanHost, false, false, ""},
		{"an unlisted IPv6 address is clean", cleanV6, cleanV6, false, false, ""},
		{"an IPv4-mapped IPv6 address answers for its IPv4 address", "::ffff:" + listedHost, listedHost, true, true, "blocklist_de"},
		{"a percent-encoded IPv6 address is decoded", url.QueryEscape(listedV6), listedV6, true, true, "blocklist_de"},
		{"an address that was listed in the past is historical", historicHost, historicHost, true, false, "blocklist_de"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, h, http.MethodGet, "/ip?ip="+tc.query, "")
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body.String())
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			v := decode(t, w)
			if v["ip"] != tc.wantIP {
				t.Errorf("ip = %v, want %s", v["ip"], tc.wantIP)
			}
			if v["is_IoC"] != tc.wantIoC || v["is_Active"] != tc.wantActive {
				t.Errorf("is_IoC=%v is_Active=%v, want %v %v", v["is_IoC"], v["is_Active"], tc.wantIoC, tc.wantActive)
			}
			lists, ok := v["blacklists"].([]any)
			if !ok {
				t.Fatalf("blacklists is %T, want an array", v["blacklists"])
			}
			if _, ok := v["type"].([]any); !ok {
				t.Errorf("type is %T, want an array", v["type"])
			}
			if _, ok := v["metadata"].(map[string]any); !ok {
				t.Errorf("metadata is %T, want an object", v["metadata"])
			}
			if tc.wantList != "" && !slices.Contains(lists, any(tc.wantList)) {
				t.Errorf("blacklists %v lacks %s", lists, tc.wantList)
			}
			if tc.wantList == "" && len(lists) != 0 {
				t.Errorf("blacklists %v, want none", lists)
			}
		})
	}
}

func TestGetIPRejectsBadInput(t *testing.T) {
	h := newServer(t, nil).Handler()
	cases := []struct {
		name, target, want string
	}{
		{"a missing ip parameter is a 400", "/ip", "missing"},
		{"an empty ip parameter is a 400", "/ip?ip=", "missing"},
		{"garbage is a 400", "/ip?ip=garbage", "garbage"},
		{"an octet over 255 is a 400", "/ip?ip=1.2.3.256", ">255"},
		{"a trailing newline is a 400", "/ip?ip=1.2.3.4%0A", "whitespace"},
		{"an overlong address is a 400", "/ip?ip=" + strings.Repeat("a", 5000), "too long"},
		{"an injection string is a 400", "/ip?ip=" + url.QueryEscape("1.1.1.1;DROP TABLE x"), "DROP"},
		{"an IPv6 zone id is a 400", "/ip?ip=" + url.QueryEscape("fe80::1%eth0"), "zone"},
		{"a CIDR range is a 400", "/ip?ip=" + url.QueryEscape("1.10.16.0/20"), "range"},
		{"a repeated ip parameter is a 400", "/ip?ip=1.1.1.1&ip=" + listedHost, "more than once"},
		{"a broken percent-encoding is a 400", "/ip?ip=1.1.1.1%zz", "encoding"},
		{"a malformed at is a 400", "/ip?ip=" + listedHost + "&at=yesterday", "RFC 3339"},
		{"an at in the future is a 400", "/ip?ip=" + listedHost + "&at=" + testNow.Add(time.Hour).Format(time.RFC3339), "future"},
		{"an at older than the retention is a 400", "/ip?ip=" + listedHost + "&at=" + testNow.Add(-30*24*time.Hour).Format(time.RFC3339), "retention"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, do(t, h, http.MethodGet, tc.target, ""), http.StatusBadRequest, tc.want)
		})
	}
}

func TestGetIPAt(t *testing.T) {
	h := newServer(t, nil).Handler()
	t.Run("an address is active at a time inside its past episode", func(t *testing.T) {
		at := testNow.Add(-72 * time.Hour).Format(time.RFC3339)
		w := do(t, h, http.MethodGet, "/ip?ip="+historicHost+"&at="+at, "")
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		v := decode(t, w)
		if v["is_Active"] != true || v["ip"] != historicHost {
			t.Errorf("answer %s, want an active listing", w.Body.String())
		}
	})
	t.Run("the same address is not active now", func(t *testing.T) {
		v := decode(t, do(t, h, http.MethodGet, "/ip?ip="+historicHost, ""))
		if v["is_Active"] != false {
			t.Errorf("is_Active = %v now", v["is_Active"])
		}
	})
}

func TestPostIP(t *testing.T) {
	h := newServer(t, nil).Handler()
	t.Run("answers come in the order asked with per-entry errors", func(t *testing.T) {
		body := fmt.Sprintf(`{"ips": [%q, "bogus", %q, 42, %q, null, "::ffff:%s"]}`, listedV6, cleanHost, rangeInside, listedHost)
		w := do(t, h, http.MethodPost, "/ip", body, "Content-Type", "application/json")
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		results, ok := decode(t, w)["results"].([]any)
		if !ok || len(results) != 7 {
			t.Fatalf("results: %s", w.Body.String())
		}
		want := []struct {
			ip  string
			err bool
		}{{listedV6, false}, {"bogus", true}, {cleanHost, false}, {"42", true}, {rangeInside, false}, {"null", true}, {listedHost, false}}
		for i, r := range results {
			m := r.(map[string]any)
			if m["ip"] != want[i].ip {
				t.Errorf("results[%d].ip = %v, want %s", i, m["ip"], want[i].ip)
			}
			_, hasErr := m["error"]
			if hasErr != want[i].err {
				t.Errorf("results[%d] error present %v, want %v: %v", i, hasErr, want[i].err, m)
			}
			if !want[i].err {
				if _, ok := m["verdict"].(string); !ok {
					t.Errorf("results[%d] has no verdict: %v", i, m)
				}
			}
		}
		if results[4].(map[string]any)["is_IoC"] != true {
			t.Errorf("a CIDR interior in a batch is not listed: %v", results[4])
		}
	})
	t.Run("an empty batch answers an empty list", func(t *testing.T) {
		w := do(t, h, http.MethodPost, "/ip", `{"ips": []}`)
		if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != `{"results":[]}` {
			t.Errorf("status %d body %s", w.Code, w.Body.String())
		}
	})
	bad := []struct {
		name, body string
		code       int
		want       string
	}{
		{"malformed JSON is a 400", `{"ips": [`, http.StatusBadRequest, "malformed"},
		{"an empty body is a 400", ``, http.StatusBadRequest, "malformed"},
		{"an array body is a 400", `["1.1.1.1"]`, http.StatusBadRequest, "ips"},
		{"an unknown field is a 400", `{"ips": [], "ip": "1.1.1.1"}`, http.StatusBadRequest, "unknown field"},
		{"a missing ips field is a 400", `{}`, http.StatusBadRequest, "missing"},
		{"ips that is not an array is a 400", `{"ips": "1.1.1.1"}`, http.StatusBadRequest, "array"},
		{"data after the object is a 400", `{"ips": []} {"ips": []}`, http.StatusBadRequest, "after"},
		{"a repeated ips field is a 400", `{"ips": [], "ips": []}`, http.StatusBadRequest, "more than once"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, do(t, h, http.MethodPost, "/ip", tc.body), tc.code, tc.want)
		})
	}
}

func TestPostIPLimits(t *testing.T) {
	h := newServer(t, func(o *Options) {
		o.HTTP.MaxBatch = 3
		o.HTTP.MaxBodyBytes = 200
	}).Handler()
	t.Run("a batch at the limit is answered", func(t *testing.T) {
		w := do(t, h, http.MethodPost, "/ip", `{"ips": ["1.1.1.1", "1.1.1.2", "1.1.1.3"]}`)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
	})
	t.Run("a batch over the limit is a 413", func(t *testing.T) {
		w := do(t, h, http.MethodPost, "/ip", `{"ips": ["1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4"]}`)
		wantError(t, w, http.StatusRequestEntityTooLarge, "at most 3")
	})
	t.Run("a body over the size limit is a 413", func(t *testing.T) {
		w := do(t, h, http.MethodPost, "/ip", `{"ips": ["`+strings.Repeat("1", 300)+`"]}`)
		wantError(t, w, http.StatusRequestEntityTooLarge, "200 bytes")
	})
}

func TestPostIPDefaultBatchLimit(t *testing.T) {
	h := newServer(t, func(o *Options) { o.HTTP = config.HTTP{} }).Handler()
	var b strings.Builder
	b.WriteString(`{"ips": [`)
	for i := range defaultMaxBatch + 1 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"10.%d.%d.%d"`, i>>16&255, i>>8&255, i&255)
	}
	b.WriteString(`]}`)
	wantError(t, do(t, h, http.MethodPost, "/ip", b.String()), http.StatusRequestEntityTooLarge, "10000")
}

func TestQueryValue(t *testing.T) {
	cases := []struct {
		name, raw, key, want string
		err                  bool
	}{
		{"a plain value is returned as it is", "ip=1.2.3.4", "ip", "1.2.3.4", false},
		{"other parameters are skipped", "a=b&ip=::1&c", "ip", "::1", false},
		{"an absent key gives an empty value", "a=b", "ip", "", false},
		{"an escaped key is matched", "%69p=1.2.3.4", "ip", "1.2.3.4", false},
		{"a plus is a space", "ip=1.2.3.4+", "ip", "1.2.3.4 ", false},
		{"a repeated key is an error", "ip=1&ip=2", "ip", "", true},
		{"a bad escape in the value is an error", "ip=%g1", "ip", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := queryValue(tc.raw, tc.key)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("queryValue(%q, %q) = %q, %v", tc.raw, tc.key, got, err)
			}
		})
	}
}
