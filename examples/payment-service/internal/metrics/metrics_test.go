package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestInstrument(t *testing.T) {
	reg := NewRegistry()
	m := NewHTTP(reg)
	mux := http.NewServeMux()
	mux.Handle("GET /v1/things/{id}", m.Instrument("/v1/things/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "missing" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})))
	mux.Handle("POST /v1/empty", m.Instrument("/v1/empty", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	for _, p := range []string{"/v1/things/a", "/v1/things/b", "/v1/things/missing"} {
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, p, nil))
	}
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/v1/empty", nil))

	body := scrape(t, Handler(reg))
	for _, want := range []string{
		`http_request_duration_seconds_count{code="200",method="GET",route="/v1/things/{id}"} 2`,
		`http_request_duration_seconds_count{code="404",method="GET",route="/v1/things/{id}"} 1`,
		`http_request_duration_seconds_bucket{code="200",method="POST",route="/v1/empty",le="0.25"} 1`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestPoolCollector(t *testing.T) {
	c := NewPoolCollector(func() PoolStats {
		return PoolStats{AcquiredConns: 3, IdleConns: 2, MaxConns: 10, TotalConns: 5, ConstructingConns: 0,
			AcquireCount: 42, AcquireDuration: 1500 * time.Millisecond, EmptyAcquireCount: 7,
			EmptyAcquireWaitTime: 250 * time.Millisecond, CanceledAcquireCount: 1, NewConnsCount: 5}
	})
	want := `
# HELP pgxpool_acquire_count_total Successful acquires from the pool.
# TYPE pgxpool_acquire_count_total counter
pgxpool_acquire_count_total 42
# HELP pgxpool_acquired_conns Connections currently acquired from the pool.
# TYPE pgxpool_acquired_conns gauge
pgxpool_acquired_conns 3
# HELP pgxpool_empty_acquire_count_total Successful acquires that had to wait for a connection because the pool was empty.
# TYPE pgxpool_empty_acquire_count_total counter
pgxpool_empty_acquire_count_total 7
# HELP pgxpool_empty_acquire_wait_seconds_total Total time spent waiting in acquires from an empty pool.
# TYPE pgxpool_empty_acquire_wait_seconds_total counter
pgxpool_empty_acquire_wait_seconds_total 0.25
# HELP pgxpool_idle_conns Idle connections in the pool.
# TYPE pgxpool_idle_conns gauge
pgxpool_idle_conns 2
# HELP pgxpool_max_conns Maximum size of the pool.
# TYPE pgxpool_max_conns gauge
pgxpool_max_conns 10
# HELP pgxpool_total_conns Total connections in the pool (acquired, idle and constructing).
# TYPE pgxpool_total_conns gauge
pgxpool_total_conns 5
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"pgxpool_acquire_count_total", "pgxpool_acquired_conns", "pgxpool_empty_acquire_count_total",
		"pgxpool_empty_acquire_wait_seconds_total", "pgxpool_idle_conns", "pgxpool_max_conns", "pgxpool_total_conns"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c); n != 11 {
		t.Fatalf("collected %d metrics, want 11", n)
	}
	reg := NewRegistry()
	reg.MustRegister(c) // Describe must be consistent with Collect
	if lint, err := testutil.CollectAndLint(c); err != nil || len(lint) != 0 {
		t.Fatalf("lint problems: %v %v", lint, err)
	}
}
