package analysis

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// startPrometheus runs Debian's prometheus scraping target every 100 ms and
// returns its address once the target's metrics are queryable.
func startPrometheus(t *testing.T, target string) string {
	return startPrometheusWith(t, target, "", "gantry_test_p99_good")
}

// startPrometheusWith is startPrometheus with the target's extra labels
// (a YAML flow map, "" for none) and the query that must return a sample
// before it returns.
func startPrometheusWith(t *testing.T, target, labels, ready string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		testenv.Missing(t, "prometheus", "apt-get install prometheus")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 100ms\n  scrape_timeout: 100ms\nscrape_configs:\n  - job_name: target\n    static_configs:\n      - targets: [%q]\n", target)
	if labels != "" {
		cfg += "        labels: " + labels + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := proc.Command(ctx, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(ready))
		if err == nil {
			var buf [512]byte
			n, _ := resp.Body.Read(buf[:])
			_ = resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(buf[:n]), `"value":[`) {
				return base
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("prometheus did not scrape the target within 30s")
	return ""
}

func TestPrometheusProviderPhases(t *testing.T) {
	reg := prometheus.NewRegistry()
	for name, v := range map[string]float64{"gantry_test_p99_good": 0.1, "gantry_test_p99_bad": 0.5, "gantry_test_nan": math.NaN()} {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: name})
		g.Set(v)
		reg.MustRegister(g)
	}
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer target.Close()
	prom := startPrometheus(t, target.Listener.Addr().String())

	tmpl := func(metric string) *Template {
		src := "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: t}\nspec:\n  args: [{name: prometheus}]\n  metrics:\n" + metric
		tm, err := ParseTemplate("t.yaml", []byte(src), "")
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	prov := `provider: {prometheus: {address: "{{args.prometheus}}", query: %s}}`
	tests := []struct {
		name    string
		metric  string
		timeout time.Duration
		want    Phase
	}{
		{"successful", `  - {name: p99, interval: 200ms, count: 3, successCondition: "result[0] < 0.25", ` + fmt.Sprintf(prov, "gantry_test_p99_good") + "}\n", 0, PhaseSuccessful},
		{"failed", `  - {name: p99, interval: 200ms, count: 3, successCondition: "result[0] < 0.25", ` + fmt.Sprintf(prov, "gantry_test_p99_bad") + "}\n", 0, PhaseFailed},
		{"inconclusive", `  - {name: p99, interval: 200ms, count: 3, successCondition: "result[0] < 0.05", failureCondition: "result[0] > 0.4", ` + fmt.Sprintf(prov, "gantry_test_p99_good") + "}\n", 0, PhaseInconclusive},
		{"error on empty vector", `  - {name: p99, interval: 100ms, count: 3, consecutiveErrorLimit: 1, successCondition: "result[0] < 0.25", ` + fmt.Sprintf(prov, "gantry_test_missing") + "}\n", 0, PhaseError},
		{"error on bad query", `  - {name: p99, interval: 100ms, count: 3, consecutiveErrorLimit: 0, ` + fmt.Sprintf(prov, `"sum(("`) + "}\n", 0, PhaseError},
		{"scalar and isNaN", `  - {name: nan, successCondition: "isNaN(result[0]) && len(result) == 1", ` + fmt.Sprintf(prov, "gantry_test_nan") + "}\n" +
			`  - {name: scalar, successCondition: "result == 2", ` + fmt.Sprintf(prov, `"scalar(vector(2))"`) + "}\n", 0, PhaseSuccessful},
		{"stopped", `  - {name: p99, interval: 200ms, count: 10, successCondition: "result[0] < 0.25", ` + fmt.Sprintf(prov, "gantry_test_p99_good") + "}\n", 500 * time.Millisecond, PhaseStopped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			run, err := Execute(ctx, tmpl(tt.metric), Options{Args: map[string]string{"prometheus": prom}})
			if err != nil {
				t.Fatal(err)
			}
			if run.Phase != tt.want {
				t.Errorf("phase = %s, want %s: %s (%+v)", run.Phase, tt.want, run.Message, run.Metrics)
			}
			for _, m := range run.Metrics {
				for _, ms := range m.Measurements {
					t.Logf("%s %s %s %s", m.Name, ms.Phase, ms.Value, ms.Message)
				}
			}
		})
	}
}

func TestPrometheusURLReplacesAddress(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "gantry_test_p99_good", Help: "p99"})
	g.Set(0.1)
	reg.MustRegister(g)
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer target.Close()
	prom := startPrometheus(t, target.Listener.Addr().String())

	// The chart's template names an in-cluster Prometheus that does not
	// exist here (and one through an argument); the override answers for
	// both.
	src := "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: t}\nspec:\n  args: [{name: prom}]\n  metrics:\n" +
		"  - {name: fixed, count: 2, interval: 100ms, successCondition: \"result[0] < 0.25\", provider: {prometheus: {address: \"http://prometheus-operated.monitoring.svc.cluster.local:9090\", query: gantry_test_p99_good}}}\n" +
		"  - {name: from-arg, successCondition: \"result[0] < 0.25\", provider: {prometheus: {address: \"{{args.prom}}\", query: gantry_test_p99_good}}}\n"
	tmpl, err := ParseTemplate("t.yaml", []byte(src), "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		url  string
		want Phase
	}{
		{"override", prom, PhaseSuccessful},
		// Without it the in-cluster name does not resolve: every
		// measurement errors (consecutiveErrorLimit 4 by default).
		{"no override", "", PhaseError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run, err := Execute(context.Background(), tmpl, Options{Args: map[string]string{"prom": "http://127.0.0.1:1"}, PrometheusURL: tt.url})
			if err != nil {
				t.Fatal(err)
			}
			if run.Phase != tt.want {
				t.Errorf("phase = %s, want %s: %s", run.Phase, tt.want, run.Message)
			}
		})
	}
	if err := Check(tmpl, Options{Args: map[string]string{"prom": "x"}, PrometheusURL: "::not a url"}); err == nil {
		t.Error("Check with a bad PrometheusURL: want an error")
	}
}

// TestExampleAnalysisAgainstPrometheus runs the example chart's
// AnalysisTemplate, unchanged, against a real Prometheus through the
// address override: its queries select the preview Service's requests by
// the service label, as Prometheus labels a target scraped through a
// Service. A fast service passes both metrics' first measurement; a slow
// one fails the latency metric.
func TestExampleAnalysisAgainstPrometheus(t *testing.T) {
	const file = "../../examples/payment-service/deploy/chart/templates/analysis-template.yaml"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := ParseTemplate(file, data, "payment-service-analysis")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		latency float64 // seconds, of every request
		want    map[string]Phase
	}{
		{"fast", 0.05, map[string]Phase{"p99-latency": PhaseSuccessful, "error-rate": PhaseSuccessful}},
		{"slow", 0.5, map[string]Phase{"p99-latency": PhaseFailed, "error-rate": PhaseSuccessful}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "http_request_duration_seconds", Help: "requests"}, []string{"code"})
			reg.MustRegister(h)
			// Requests keep arriving, so that rate() has something to
			// see; the test waits for the goroutine before it ends.
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				tick := time.NewTicker(5 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
						h.WithLabelValues("200").Observe(tt.latency)
					}
				}
			}()
			defer func() { stop(); <-done }()
			target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
			defer target.Close()
			prom := startPrometheusWith(t, target.Listener.Addr().String(), "{service: payment-service-preview}",
				`sum(rate(http_request_duration_seconds_count{service="payment-service-preview"}[1m])) > 0`)

			// The template takes 10 measurements over 5 minutes; the
			// first of each metric is enough here, then the run stops.
			runCtx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var mu sync.Mutex
			first := map[string]Measurement{}
			run, err := Execute(runCtx, tmpl, Options{PrometheusURL: prom, OnMeasurement: func(metric string, m Measurement) {
				mu.Lock()
				defer mu.Unlock()
				if _, ok := first[metric]; !ok {
					first[metric] = m
				}
				if len(first) == len(tt.want) {
					cancel()
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			if run.Phase != PhaseStopped {
				t.Errorf("run phase = %s, want Stopped (cut short before 10 measurements)", run.Phase)
			}
			for metric, want := range tt.want {
				if got := first[metric]; got.Phase != want {
					t.Errorf("%s: first measurement %s (value %s, %s), want %s", metric, got.Phase, got.Value, got.Message, want)
				}
			}
		})
	}
}
