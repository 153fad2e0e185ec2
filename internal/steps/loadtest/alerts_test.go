package loadtest

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
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/promenv"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/testenv"
)

const alertRules = `groups:
- name: test
  rules:
  - alert: QueueTooDeep
    expr: test_queue_depth > 10
    labels: {severity: critical}
  - alert: QueueSlowlyGrowing
    expr: test_queue_depth > 5
    for: 1h
`

// TestAlertsGate: the real Prometheus (promenv) scrapes a test service
// that is also the load test's target; a firing alert fails the step with
// its name and labels, a pending one is reported and passes.
func TestAlertsGate(t *testing.T) {
	prom := testenv.RequireTool(t, "prometheus", "apt-get install prometheus (scripts/deps.sh does)")
	promtool := testenv.RequireTool(t, "promtool", "apt-get install prometheus (scripts/deps.sh does)")
	var depth atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			fmt.Fprintf(w, "# TYPE test_queue_depth gauge\ntest_queue_depth %d\n", depth.Load())
			return
		}
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	t.Cleanup(srv.Close)
	ps, err := promenv.Start(t.Context(), promenv.Config{
		Environment: "staging", Job: "svc", Dir: t.TempDir(), Interval: time.Second,
		Prometheus: prom, Promtool: promtool,
		Rules: []runtime.File{{Name: "alerts.yaml", Data: []byte(alertRules)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ps.Stop(context.Background()) })
	if err := ps.SetTargets([]string{strings.TrimPrefix(srv.URL, "http://")}); err != nil {
		t.Fatal(err)
	}
	instance := strings.TrimPrefix(srv.URL, "http://")

	for _, tc := range []struct {
		name    string
		depth   int64
		ready   func(firing, pending []string) bool // Prometheus reached the state
		wantErr string
		firing  int
		pending int
	}{
		{
			name: "firing alert fails the gate", depth: 100,
			ready:   func(f, p []string) bool { return len(f) == 1 },
			wantErr: `1 alert(s) fired: QueueTooDeep{instance="` + instance + `", job="svc", namespace="staging", severity="critical"}`,
			firing:  1, pending: 1,
		},
		{
			name: "pending alert is reported and passes", depth: 7,
			ready:  func(f, p []string) bool { return len(f) == 0 && len(p) == 1 },
			firing: 0, pending: 1,
		},
		{
			name: "no alert", depth: 1,
			ready: func(f, p []string) bool { return len(f) == 0 && len(p) == 0 },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			depth.Store(tc.depth)
			waitFor(t, ps, tc.ready)
			st, err := New(with(t, fmt.Sprintf("{url: %q, rate: 20, duration: 1s, alerts: {url: %q, poll: 200ms}}", srv.URL, ps.URL())))
			if err != nil {
				t.Fatal(err)
			}
			e, _, log := env(t)
			res, err := st.Run(t.Context(), e)
			var ae *AlertsError
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Run: %v\n%s", err, log)
			case tc.wantErr != "" && (!errors.As(err, &ae) || err.Error() != tc.wantErr):
				t.Fatalf("Run error:\ngot  %v\nwant %s", err, tc.wantErr)
			}
			if res.Outputs["alerts_firing"] != tc.firing || res.Outputs["alerts_pending"] != tc.pending {
				t.Errorf("outputs: got firing %v pending %v, want %d %d", res.Outputs["alerts_firing"], res.Outputs["alerts_pending"], tc.firing, tc.pending)
			}
			if tc.pending > 0 && !strings.Contains(log.String(), "alert pending: QueueSlowlyGrowing{") {
				t.Errorf("log does not report the pending alert:\n%s", log)
			}
		})
	}
}

// waitFor polls the alerts until Prometheus has scraped and evaluated the
// new value; the bound only stops a broken setup.
func waitFor(t *testing.T, ps *promenv.Server, ready func(firing, pending []string) bool) {
	t.Helper()
	var f, p []string
	for range 120 {
		alerts, err := ps.Alerts(t.Context())
		if err == nil {
			f, p = nil, nil
			for _, a := range alerts {
				if a.State == promenv.StateFiring {
					f = append(f, a.Name)
				} else {
					p = append(p, a.Name)
				}
			}
			if ready(f, p) {
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("Prometheus never reached the state: firing %v, pending %v", f, p)
}

// TestAlertsUnreachable: a gate that cannot read the alerts fails.
func TestAlertsUnreachable(t *testing.T) {
	srv := server(t, 0)
	st, err := New(with(t, fmt.Sprintf("{url: %q, rate: 10, duration: 1s, alerts: {url: 'http://127.0.0.1:1'}}", srv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	e, _, _ := env(t)
	_, err = st.Run(t.Context(), e)
	if err == nil || !strings.Contains(err.Error(), "check alerts (no alert may fire): read alerts from http://127.0.0.1:1/api/v1/alerts") {
		t.Fatalf("got %v, want an error saying the alerts could not be read", err)
	}
}

// TestAlertsRules: with rule files instead of a URL, the step runs its own
// real Prometheus that scrapes the target's /metrics and evaluates them.
func TestAlertsRules(t *testing.T) {
	testenv.RequireTool(t, "prometheus", "apt-get install prometheus (scripts/deps.sh does)")
	testenv.RequireTool(t, "promtool", "apt-get install prometheus (scripts/deps.sh does)")
	var depth atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			fmt.Fprintf(w, "# TYPE test_queue_depth gauge\ntest_queue_depth %d\n", depth.Load())
			return
		}
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	t.Cleanup(srv.Close)
	instance := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		name, alerts string
		depth        int64
		wantErr      string
	}{
		{"short form, nothing fires", "alerts.yaml", 1, ""},
		{"firing", "{rules: [alerts.yaml], job: payment-service, interval: 1s}", 100,
			`1 alert(s) fired: QueueTooDeep{instance="` + instance + `", job="payment-service", namespace="staging", severity="critical"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			depth.Store(tc.depth)
			st, err := New(with(t, fmt.Sprintf("{url: %q, rate: 10, duration: 1s, alerts: %s}", srv.URL, tc.alerts)))
			if err != nil {
				t.Fatal(err)
			}
			e, _, log := env(t)
			e.Stage, e.TempDir = "staging", t.TempDir()
			if err := os.WriteFile(filepath.Join(e.Dir, "alerts.yaml"), []byte(alertRules), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = st.Run(t.Context(), e)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Run: %v\n%s", err, log)
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Fatalf("Run error:\ngot  %v\nwant %s\n%s", err, tc.wantErr, log)
			}
			if !strings.Contains(log.String(), "alerts: Prometheus http://127.0.0.1:") {
				t.Errorf("log does not say which Prometheus evaluated the rules:\n%s", log)
			}
		})
	}
	st, err := New(with(t, fmt.Sprintf("{url: %q, rate: 10, duration: 1s, alerts: broken.yaml}", srv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	e, _, _ := env(t)
	e.TempDir = t.TempDir()
	if err := os.WriteFile(filepath.Join(e.Dir, "broken.yaml"), []byte("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var re *promenv.RulesError
	if _, err := st.Run(t.Context(), e); !errors.As(err, &re) || re.File != "broken.yaml" {
		t.Errorf("broken rules: got %v, want a *promenv.RulesError naming broken.yaml", err)
	}
}

func TestPathsNameAlertRules(t *testing.T) {
	st, err := New(with(t, "{url: 'http://x', rate: 1, duration: 1s, alerts: {rules: [a.yaml, b.yaml]}}"))
	if err != nil {
		t.Fatal(err)
	}
	got := st.(*loadStep).Paths()
	want := []string{"spec=", "alerts.rules.0=a.yaml", "alerts.rules.1=b.yaml"}
	if len(got) != len(want) {
		t.Fatalf("Paths: got %+v, want %v", got, want)
	}
	for i, r := range got {
		if r.Field+"="+r.Value != want[i] {
			t.Errorf("Paths[%d]: got %s=%s, want %s", i, r.Field, r.Value, want[i])
		}
	}
}
