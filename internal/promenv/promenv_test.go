package promenv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/testenv"
)

func requireProm(t *testing.T) (prom, promtool string) {
	t.Helper()
	return testenv.RequireTool(t, "prometheus", "apt-get install prometheus (scripts/deps.sh does)"),
		testenv.RequireTool(t, "promtool", "apt-get install prometheus (scripts/deps.sh does)")
}

// TestExampleAlertRules runs promtool's unit tests of the example's alert
// rules: the rules the staging soak gate loads do what their tests say.
func TestExampleAlertRules(t *testing.T) {
	_, promtool := requireProm(t)
	cmd := proc.Command(t.Context(), promtool, "test", "rules", "alerts_test.yaml")
	cmd.Dir = "../../examples/payment-service/deploy/prometheus"
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool test rules alerts_test.yaml: %v\n%s", err, out)
	}
}

func TestCheckRules(t *testing.T) {
	_, promtool := requireProm(t)
	good, err := os.ReadFile("../../examples/payment-service/deploy/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		rules []runtime.File
		want  string // "" for no error; else the *RulesError's start
	}{
		{"example rules", []runtime.File{{Name: "deploy/prometheus/alerts.yaml", Data: good}}, ""},
		{"bad expression", []runtime.File{{Name: "deploy/prometheus/bad.yaml", Data: []byte("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: rate(x[5m]\n")}},
			"alert rules deploy/prometheus/bad.yaml: "},
		{"not YAML rules", []runtime.File{{Name: "rules/x.yaml", Data: []byte("groups: {oops\n")}}, "alert rules rules/x.yaml: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CheckRules(t.Context(), promtool, tc.rules, t.TempDir())
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			var re *RulesError
			if !errors.As(err, &re) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v, want a *RulesError starting %q", err, tc.want)
			}
			if strings.Contains(re.Detail, os.TempDir()) {
				t.Errorf("the error shows the temporary path: %s", re.Detail)
			}
		})
	}
}

const testRules = `groups:
- name: test
  rules:
  - alert: QueueTooDeep
    expr: test_queue_depth{job="payment-service"} > 10
    labels: {severity: critical}
  - alert: QueueSlowlyGrowing
    expr: test_queue_depth > 5
    for: 1h
`

// metricServer exposes test_queue_depth with the value in depth.
func metricServer(t *testing.T, depth *atomic.Int64) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE test_queue_depth gauge\ntest_queue_depth %d\n", depth.Load())
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// waitAlerts polls until cond holds on the alerts (Prometheus scrapes and
// evaluates every second here); the bound only stops a broken setup.
func waitAlerts(t *testing.T, s *Server, what string, cond func([]Alert) bool) []Alert {
	t.Helper()
	var last []Alert
	var err error
	for range 120 {
		last, err = s.Alerts(t.Context())
		if err == nil && cond(last) {
			return last
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("waiting for %s: last alerts %v, err %v", what, last, err)
	return nil
}

func state(alerts []Alert, name string) string {
	for _, a := range alerts {
		if a.Name == name {
			return a.State
		}
	}
	return ""
}

// TestAlertFires: the real Prometheus scrapes a test service; the alert
// fires when its metric is high, stays pending for its for:, and goes
// away when the metric drops. It also restarts after a kill -9 on the
// same URL.
func TestAlertFires(t *testing.T) {
	prom, promtool := requireProm(t)
	var depth atomic.Int64
	depth.Store(1)
	addr := metricServer(t, &depth)
	dir := t.TempDir()
	s, err := Start(t.Context(), Config{
		Environment: "staging", Job: "payment-service", Dir: dir, Interval: time.Second,
		Prometheus: prom, Promtool: promtool,
		Rules: []runtime.File{{Name: "deploy/prometheus/test.yaml", Data: []byte(testRules)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	if err := s.SetTargets([]string{addr}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if down, err := s.WaitScraped(ctx, 1); err != nil || len(down) != 0 {
		t.Fatalf("WaitScraped: down %v, err %v", down, err)
	}
	if got, _ := s.Alerts(t.Context()); len(got) != 0 {
		t.Errorf("alerts at start: got %v, want none", got)
	}
	depth.Store(100)
	alerts := waitAlerts(t, s, "QueueTooDeep firing", func(a []Alert) bool { return state(a, "QueueTooDeep") == StateFiring })
	if got := state(alerts, "QueueSlowlyGrowing"); got != StatePending {
		t.Errorf("QueueSlowlyGrowing: got state %q, want pending (for: 1h)", got)
	}
	if alerts[0].Name != "QueueTooDeep" {
		t.Errorf("firing alerts come first: got %v", alerts)
	}
	want := `QueueTooDeep{instance="` + addr + `", job="payment-service", namespace="staging", severity="critical"}`
	if got := alerts[0].String(); got != want {
		t.Errorf("alert: got %s, want %s", got, want)
	}
	depth.Store(1)
	waitAlerts(t, s, "no alert", func(a []Alert) bool { return len(a) == 0 })

	url, pid := s.URL(), s.Pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	depth.Store(100)
	waitAlerts(t, s, "QueueTooDeep firing after the restart", func(a []Alert) bool { return state(a, "QueueTooDeep") == StateFiring })
	if s.URL() != url || s.Pid() == pid {
		t.Errorf("after kill -9: URL %s (was %s), pid %d (was %d)", s.URL(), url, s.Pid(), pid)
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "port")); err != nil {
		t.Errorf("port not recorded: %v", err)
	}
}

func TestStartRefusesBadRules(t *testing.T) {
	prom, promtool := requireProm(t)
	_, err := Start(t.Context(), Config{
		Environment: "staging", Dir: t.TempDir(), Prometheus: prom, Promtool: promtool,
		Rules: []runtime.File{{Name: "deploy/prometheus/alerts.yaml", Data: []byte("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(\n")}},
	})
	var re *RulesError
	if !errors.As(err, &re) || re.File != "deploy/prometheus/alerts.yaml" {
		t.Fatalf("got %v, want a *RulesError naming deploy/prometheus/alerts.yaml", err)
	}
}

func TestClientErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"server error", 503, `{"status":"error","error":"not ready"}`, "HTTP 503: not ready"},
		{"not JSON", 200, `<html>`, "HTTP 200: <html>"},
		{"bad status", 200, `{"status":"error","error":"bad query"}`, "bad query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			_, err := Client{URL: srv.URL}.Alerts(t.Context())
			var ae *APIError
			if !errors.As(err, &ae) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an *APIError containing %q", err, tc.want)
			}
		})
	}
	if _, err := (Client{URL: "localhost:9090"}).Alerts(t.Context()); err == nil || !strings.Contains(err.Error(), "want http(s)://") {
		t.Errorf("URL without scheme: got %v", err)
	}
}

// TestStartRelativeDir: a relative Dir works (Prometheus runs inside it).
func TestStartRelativeDir(t *testing.T) {
	prom, promtool := requireProm(t)
	t.Chdir(t.TempDir())
	s, err := Start(t.Context(), Config{Environment: "dev", Dir: "prom", Prometheus: prom, Promtool: promtool})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	if got, err := s.Alerts(t.Context()); err != nil || len(got) != 0 {
		t.Errorf("Alerts: got %v, %v; want none", got, err)
	}
}
