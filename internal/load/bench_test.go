package load

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"
)

// BenchmarkOpenModel sends b.N requests at 5000/s to an in-process server;
// run with -cpuprofile to see the generator's cost per request.
func BenchmarkOpenModel(b *testing.B) {
	// GANTRY_BENCH_URL points at a server in another process, so the
	// profile shows the generator alone.
	target := os.Getenv("GANTRY_BENCH_URL")
	if target == "" {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
		defer srv.Close()
		target = srv.URL
	}
	rate := 5000.0
	if r, err := strconv.ParseFloat(os.Getenv("GANTRY_BENCH_RATE"), 64); err == nil {
		rate = r
	}
	lt, err := New(Config{Requests: []Request{{URL: target}}, Rate: rate, Duration: time.Duration(float64(b.N) * float64(time.Second) / rate)})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	res, err := lt.Run(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(res.Metrics.Dropped), "dropped")
}
