package envctl

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/promenv"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// promTemplate is an AnalysisTemplate as a chart has it: a prometheus
// metric on the preview Service at an in-cluster address that means
// nothing here (the rollout's PrometheusURL replaces it). The initial
// delay covers Prometheus taking up the new targets (its discovery is
// applied every 5 s) and dropping those gone.
func promTemplate(t *testing.T) *analysis.Template {
	t.Helper()
	src := `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: green-ok
spec:
  args:
  - name: service
  metrics:
  - name: ok
    initialDelay: 7s
    interval: 1s
    count: 3
    successCondition: result[0] == 1
    provider:
      prometheus:
        address: http://prometheus.monitoring.svc.cluster.local:9090
        query: app_ok{service="{{args.service}}"}
`
	tmpl, err := analysis.ParseTemplate("green-ok.yaml", []byte(src), "green-ok")
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// TestPrometheusMeasuresGreenThroughPreviewLabel: the environment's real
// Prometheus labels green's targets service="PREVIEW" and blue's
// service="ACTIVE", so a pre-promotion analysis on the preview Service
// measures green: a good green under a bad blue passes, a bad green under
// a good blue is aborted.
func TestPrometheusMeasuresGreenThroughPreviewLabel(t *testing.T) {
	prom := testenv.RequireTool(t, "prometheus", "apt-get install prometheus (scripts/deps.sh does)")
	promtool := testenv.RequireTool(t, "promtool", "apt-get install prometheus (scripts/deps.sh does)")
	srv, err := promenv.Start(t.Context(), promenv.Config{Environment: "prod", Job: "app", Dir: t.TempDir(), Interval: time.Second,
		Prometheus: prom, Promtool: promtool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	f := newFixture(t)
	f.configure = func(c *Config) {
		c.ServingServices = func(ctx context.Context, env string, spec runtime.EnvironmentSpec, groups []ServiceTargets) error {
			var gs []promenv.TargetGroup
			for _, g := range groups {
				gs = append(gs, promenv.TargetGroup{Targets: g.Addrs, Labels: map[string]string{"service": g.Service}})
			}
			return srv.SetTargetGroups(gs)
		}
	}
	f.open()
	f.run()
	strategy := runtime.BlueGreen{ActiveService: "app", PreviewService: "app-preview", AutoPromotionEnabled: true, ScaleDownDelaySeconds: intp(0),
		PrePromotionAnalysis: &runtime.RolloutAnalysis{Templates: []*analysis.Template{promTemplate(t)},
			Args: []runtime.AnalysisArg{{Name: "service", Value: "app-preview"}}, PrometheusURL: srv.URL()}}
	f.mustRollout("prod", strategy, f.okWorkload("v1", 1, false))
	f.mustRollout("prod", strategy, f.okWorkload("v2", 1, true))
	st := waitRollout(t, f.ctl, "prod", "promotion of the good green", func(st runtime.RolloutStatus) bool {
		return st.Step == runtime.StepCompleted || st.Step == runtime.StepAborted
	})
	if st.Step != runtime.StepCompleted || st.Stable != 2 {
		t.Fatalf("good green under a bad blue: step %s stable %d (%s), want completed 2", st.Step, st.Stable, st.Message)
	}
	f.mustRollout("prod", strategy, f.okWorkload("v3", 1, false))
	st = waitRollout(t, f.ctl, "prod", "abort of the bad green", func(st runtime.RolloutStatus) bool {
		return st.Desired == 3 && (st.Step == runtime.StepCompleted || st.Step == runtime.StepAborted)
	})
	if st.Step != runtime.StepAborted || st.Stable != 2 || !strings.Contains(st.Message, "pre-promotion analysis Failed") {
		t.Errorf("bad green under a good blue: step %s stable %d (%s), want aborted, stable 2", st.Step, st.Stable, st.Message)
	}
	a := st.Analyses[len(st.Analyses)-1]
	if m := a.Runs[0].Metrics[0].Measurements; len(m) == 0 || m[len(m)-1].Value != "[0]" {
		t.Errorf("bad green's measurements %+v, want its app_ok 0", m)
	}
}

// TestAnalysisWaitsForPrometheusToScrapeGreen: a pre-promotion analysis
// whose metrics query the environment's Prometheus starts once that
// Prometheus has scraped every green instance twice (what a rate() needs),
// so a template without initialDelay, measuring every 500ms and allowing
// no error, does not fail for lack of data while green's targets are
// being taken up.
func TestAnalysisWaitsForPrometheusToScrapeGreen(t *testing.T) {
	prom := testenv.RequireTool(t, "prometheus", "apt-get install prometheus (scripts/deps.sh does)")
	promtool := testenv.RequireTool(t, "promtool", "apt-get install prometheus (scripts/deps.sh does)")
	srv, err := promenv.Start(t.Context(), promenv.Config{Environment: "prod", Job: "app", Dir: t.TempDir(), Interval: time.Second,
		Prometheus: prom, Promtool: promtool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	src := `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: green-ok
spec:
  args:
  - name: service
  metrics:
  - name: ok
    interval: 500ms
    count: 3
    consecutiveErrorLimit: 0
    successCondition: result[0] == 1
    provider:
      prometheus:
        address: http://prometheus.monitoring.svc.cluster.local:9090
        query: max(max_over_time(app_ok{service="{{args.service}}"}[1m])) and on() (count(count_over_time(app_ok{service="{{args.service}}"}[1m]) >= 2) > 0)
`
	tmpl, err := analysis.ParseTemplate("green-ok.yaml", []byte(src), "green-ok")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.configure = func(c *Config) {
		c.ServingServices = func(ctx context.Context, env string, spec runtime.EnvironmentSpec, groups []ServiceTargets) error {
			var gs []promenv.TargetGroup
			for _, g := range groups {
				gs = append(gs, promenv.TargetGroup{Targets: g.Addrs, Labels: map[string]string{"service": g.Service}})
			}
			return srv.SetTargetGroups(gs)
		}
	}
	f.open()
	f.run()
	strategy := runtime.BlueGreen{ActiveService: "app", PreviewService: "app-preview", AutoPromotionEnabled: true, ScaleDownDelaySeconds: intp(0),
		PrePromotionAnalysis: &runtime.RolloutAnalysis{Templates: []*analysis.Template{tmpl},
			Args: []runtime.AnalysisArg{{Name: "service", Value: "app-preview"}}, PrometheusURL: srv.URL()}}
	f.mustRollout("prod", strategy, f.okWorkload("v1", 1, true))
	f.mustRollout("prod", strategy, f.okWorkload("v2", 1, true))
	st := waitRollout(t, f.ctl, "prod", "the end of the cycle", func(st runtime.RolloutStatus) bool {
		return st.Step == runtime.StepCompleted || st.Step == runtime.StepAborted
	})
	if st.Step != runtime.StepCompleted {
		t.Fatalf("a good green measured from its first scrapes: step %s (%s), want completed", st.Step, st.Message)
	}
	m := st.Analyses[0].Runs[0].Metrics[0]
	if m.Error != 0 || m.Successful != 3 {
		t.Errorf("measurements %+v: want 3 successful, none erring for lack of data", m.Measurements)
	}
}
