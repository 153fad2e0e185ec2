package serve

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/artifact"
	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/store"
)

// benchClients is how many clients call the API at once.
const benchClients = 50

// BenchmarkAPIConcurrent measures the latency of the run list (200
// runs, first page of 50) and of a run's detail and its 1,000-line log,
// each with 50 clients at once over real HTTP, and reports p50 and p99:
//
//	go test ./internal/serve -run '^$' -bench BenchmarkAPIConcurrent -benchtime 2000x
func BenchmarkAPIConcurrent(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	st, err := store.Open(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	arts, err := artifact.New(filepath.Join(dir, "artifacts"))
	if err != nil {
		b.Fatal(err)
	}
	var last int64
	for i := range 200 {
		r := &store.Run{Pipeline: "payments", Event: "push", Branch: "main", SHA: fmt.Sprintf("%040d", i)}
		if err := st.CreateRun(ctx, r); err != nil {
			b.Fatal(err)
		}
		last = r.ID
	}
	for _, s := range []string{"lint", "unit", "image"} {
		if err := st.PutStep(ctx, &store.Step{RunID: last, Stage: "build", Name: s, Kind: "script", Status: store.StatusPassed}); err != nil {
			b.Fatal(err)
		}
	}
	lines := make([]store.LogLine, 1000)
	for i := range lines {
		lines[i] = store.LogLine{Text: fmt.Sprintf("=== RUN TestPayment/%04d --- PASS (0.01s) with some realistic length of output text", i)}
	}
	if err := st.AppendLogs(ctx, last, "build", "unit", lines); err != nil {
		b.Fatal(err)
	}
	a := NewAPI(newRecorder(), func() Health { return Health{} }, func() {}, ctx, slog.New(slog.DiscardHandler))
	a.SetRuns(Runs{Store: st, Artifacts: arts})
	id := auth.Identity{Name: "bench", Role: auth.RoleViewer, Method: auth.MethodToken}
	h := a.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(auth.WithIdentity(r.Context(), id)))
	}))
	defer srv.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients}}

	for _, tc := range []struct{ name, path string }{
		{"runs", "/api/v1/runs"},
		{"run", fmt.Sprintf("/api/v1/runs/%d", last)},
		{"log1000", fmt.Sprintf("/api/v1/runs/%d/logs?stage=build&step=unit&limit=500", last)},
		// The first page of the whole run's log: 500 of its 1,000 lines.
		{"wholelog500", fmt.Sprintf("/api/v1/runs/%d/logs", last)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var mu sync.Mutex
			lat := make([]time.Duration, 0, b.N)
			work := make(chan struct{})
			var wg sync.WaitGroup
			b.ResetTimer()
			for range benchClients {
				wg.Go(func() {
					for range work {
						t0 := time.Now()
						resp, err := hc.Get(srv.URL + tc.path)
						if err != nil {
							b.Error(err)
							continue
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 {
							b.Errorf("GET %s: %s", tc.path, resp.Status)
						}
						d := time.Since(t0)
						mu.Lock()
						lat = append(lat, d)
						mu.Unlock()
					}
				})
			}
			for range b.N {
				work <- struct{}{}
			}
			close(work)
			wg.Wait()
			b.StopTimer()
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}
