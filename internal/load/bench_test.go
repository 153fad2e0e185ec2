package load

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkOpenModel sends b.N requests at 5000/s to an in-process server;
// run with -cpuprofile to see the generator's cost per request.
func BenchmarkOpenModel(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer srv.Close()
	const rate = 5000
	lt, err := New(Config{Requests: []Request{{URL: srv.URL}}, Rate: rate, Duration: time.Duration(b.N) * time.Second / rate})
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
