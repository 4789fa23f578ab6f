package api

import (
	"net/http"
	"strings"
	"testing"
)

func TestMetrics(t *testing.T) {
	h := newServer(t, nil).Handler()
	do(t, h, http.MethodGet, "/ip?ip="+listedHost, "")
	do(t, h, http.MethodGet, "/ip?ip=bogus", "")
	do(t, h, http.MethodGet, "/no/such/"+strings.Repeat("x", 20), "")
	do(t, h, http.MethodPost, "/api/v1/feeds/x/sync", "", "X-Api-Key", "wrong")
	w := do(t, h, http.MethodGet, "/metrics", "")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	body := w.Body.String()
	for _, want := range []string{
		`rampart_http_requests_total{code="200",route="/ip"} 1`,
		`rampart_http_requests_total{code="400",route="/ip"} 1`,
		`rampart_http_requests_total{code="404",route="unmatched"} 1`,
		`rampart_http_requests_total{code="403",route="/api/v1/feeds/:name/sync"} 1`,
		`rampart_answers_total{verdict="dangerous"} 1`,
		`rampart_http_request_duration_seconds_count{route="/ip"} 2`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "xxxxxxxx") {
		t.Error("an unmatched path became a label")
	}
}
