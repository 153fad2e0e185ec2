package bluegreen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/serve"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
)

const digest = "sha256:feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface"
const pushed = "127.0.0.1:5000/payment-service@" + digest

// scriptedRoller is a runtime.Roller whose rollout goes through the
// statuses of script, one per Watch callback, and that records its
// calls. A stand-in for the environment controller, whose state machine
// is built on another branch (envctl): these tests are about what the
// step does with the statuses it is given.
type scriptedRoller struct {
	mu      sync.Mutex
	calls   []string
	current *runtime.RolloutStatus // RolloutStatus answers this (nil: ErrNoRollout)
	started runtime.RolloutStatus  // Rollout answers this
	script  []runtime.RolloutStatus
	reqs    []runtime.RolloutRequest
}

func (r *scriptedRoller) record(c string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

func (r *scriptedRoller) Rollout(_ context.Context, req runtime.RolloutRequest) (runtime.RolloutStatus, error) {
	r.record("rollout " + req.Deploy.Environment)
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return r.started, nil
}
func (r *scriptedRoller) Promote(context.Context, string, bool, string) (runtime.RolloutStatus, error) {
	return runtime.RolloutStatus{}, errors.New("not used")
}
func (r *scriptedRoller) Abort(context.Context, string, string, string) (runtime.RolloutStatus, error) {
	return runtime.RolloutStatus{}, errors.New("not used")
}
func (r *scriptedRoller) Retry(context.Context, string, string) (runtime.RolloutStatus, error) {
	return runtime.RolloutStatus{}, errors.New("not used")
}
func (r *scriptedRoller) Undo(context.Context, string, int, string) (runtime.RolloutStatus, error) {
	return runtime.RolloutStatus{}, errors.New("not used")
}
func (r *scriptedRoller) RolloutStatus(_ context.Context, env string) (runtime.RolloutStatus, error) {
	r.record("status " + env)
	if r.current == nil {
		return runtime.RolloutStatus{}, fmt.Errorf("environment %s: %w", env, runtime.ErrNoRollout)
	}
	return *r.current, nil
}
func (r *scriptedRoller) Watch(_ context.Context, env string, f func(runtime.RolloutStatus) bool) error {
	r.record("watch " + env)
	for _, st := range r.script {
		if !f(st) {
			return nil
		}
	}
	return nil
}

func st(phase runtime.RolloutPhase, step runtime.RolloutStep) runtime.RolloutStatus {
	return runtime.RolloutStatus{Environment: "prod", Phase: phase, Step: step, Stable: 3, Desired: 4, Digest: digest,
		ActiveURL: "http://127.0.0.1:30081", PreviewURL: "http://127.0.0.1:30082"}
}

// withMeasurements adds a prePromotion analysis of one metric with the
// given measured values and phases.
func withMeasurements(s runtime.RolloutStatus, phase analysis.Phase, values ...string) runtime.RolloutStatus {
	m := analysis.MetricResult{Name: "p99-latency", Phase: phase, Count: len(values)}
	for _, v := range values {
		mp := analysis.PhaseSuccessful
		if phase == analysis.PhaseFailed {
			mp = analysis.PhaseFailed
			m.Failed++
		}
		m.Measurements = append(m.Measurements, analysis.Measurement{Phase: mp, Value: v})
	}
	s.Analyses = []runtime.AnalysisStatus{{Kind: "prePromotion", Revision: 4, Phase: phase, Runs: []*analysis.Run{{Template: "payment-service-analysis", Phase: phase, Metrics: []analysis.MetricResult{m}}}}}
	return s
}

// TestFollowToHealthy: the step prints each step change and each
// measurement once, says how to promote while paused, and ends at
// Healthy.
// TestFollowWaitsForMonitors: a promoted rollout that is Healthy while
// blue waits out its scale-down delay ends the step only once every
// monitor has passed from every location; one failing leads to Degraded.
func TestFollowWaitsForMonitors(t *testing.T) {
	monitors := []runtime.Monitor{
		{Name: "health", Locations: []string{"local"}},
		{Name: "payment-intent", Locations: []string{"local"}},
	}
	healthy := st(runtime.RolloutHealthy, runtime.StepScaleDown)
	oneOK := healthy
	oneOK.Monitors = []runtime.MonitorResult{{Monitor: "health", Location: "local", OK: true}}
	oneFailing := healthy
	oneFailing.Monitors = []runtime.MonitorResult{{Monitor: "health", Location: "local", OK: true}, {Monitor: "payment-intent", Location: "local", Message: "status 500, want 201"}}
	allOK := healthy
	allOK.Monitors = []runtime.MonitorResult{{Monitor: "health", Location: "local", OK: true}, {Monitor: "payment-intent", Location: "local", OK: true}}
	degraded := st(runtime.RolloutDegraded, runtime.StepAborted)
	degraded.Message = "monitor payment-intent from local failed: status 500, want 201"

	for _, tc := range []struct {
		name   string
		script []runtime.RolloutStatus
		want   runtime.RolloutPhase
	}{
		{"all pass", []runtime.RolloutStatus{healthy, oneOK, allOK, degraded}, runtime.RolloutHealthy},
		{"one fails", []runtime.RolloutStatus{healthy, oneOK, oneFailing, degraded, allOK}, runtime.RolloutDegraded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			got, err := Follow(context.Background(), &scriptedRoller{script: tc.script}, "prod", st(runtime.RolloutProgressing, runtime.StepPostPromotion), monitors, &out)
			if got.Phase != tc.want {
				t.Fatalf("ended at %s (err %v), want %s\n%s", got.Phase, err, tc.want, &out)
			}
			if (err == nil) != (tc.want == runtime.RolloutHealthy) {
				t.Errorf("error %v at %s", err, got.Phase)
			}
			if !strings.Contains(out.String(), "waiting for every synthetic monitor to pass") {
				t.Errorf("output does not say it waits for the monitors:\n%s", &out)
			}
		})
	}
	// Without monitors, Healthy at scale-down ends it at once.
	got, err := Follow(context.Background(), &scriptedRoller{script: []runtime.RolloutStatus{healthy, degraded}}, "prod", st(runtime.RolloutProgressing, runtime.StepPostPromotion), nil, &bytes.Buffer{})
	if err != nil || got.Phase != runtime.RolloutHealthy {
		t.Errorf("without monitors: ended at %s, %v; want Healthy", got.Phase, err)
	}
}

func TestFollowToHealthy(t *testing.T) {
	pre := st(runtime.RolloutProgressing, runtime.StepPrePromotion)
	paused := withMeasurements(st(runtime.RolloutPaused, runtime.StepPaused), analysis.PhaseSuccessful, "0.120", "0.131")
	paused.Conditions = []runtime.RolloutCondition{{Type: "Paused", Status: "True", Reason: "BlueGreenPause"}}
	healthy := withMeasurements(st(runtime.RolloutHealthy, runtime.StepScaleDown), analysis.PhaseSuccessful, "0.120", "0.131")
	healthy.Stable = 4
	r := &scriptedRoller{script: []runtime.RolloutStatus{
		pre,
		withMeasurements(pre, analysis.PhaseRunning, "0.120"),
		withMeasurements(pre, analysis.PhaseRunning, "0.120", "0.131"),
		paused, paused,
		healthy,
		st(runtime.RolloutDegraded, runtime.StepAborted), // never reached
	}}
	var out bytes.Buffer
	got, err := Follow(context.Background(), r, "prod", st(runtime.RolloutProgressing, runtime.StepPreview), nil, &out)
	if err != nil {
		t.Fatalf("Follow: %v\n%s", err, &out)
	}
	if got.Phase != runtime.RolloutHealthy || got.Stable != 4 {
		t.Errorf("ended at %s (stable %d), want Healthy with revision 4 stable", got.Phase, got.Stable)
	}
	log := out.String()
	for _, want := range []string{
		"prod: Progressing, step preview (revision 3 → 4)",
		"prod: Progressing, step prePromotion (revision 3 → 4)",
		"analysis prePromotion payment-service-analysis/p99-latency measurement 1: Successful value 0.120",
		"analysis prePromotion payment-service-analysis/p99-latency measurement 2: Successful value 0.131",
		"prod: paused, waiting for manual promotion of revision 4; to promote: gantry rollout promote prod",
		"condition Paused=True BlueGreenPause",
		"prod: Healthy, step scaleDown (revision 4 → 4)",
	} {
		if strings.Count(log, want) != 1 {
			t.Errorf("log has %q %d times, want once:\n%s", want, strings.Count(log, want), log)
		}
	}
	if strings.Contains(log, "Degraded") {
		t.Errorf("log goes past Healthy:\n%s", log)
	}
}

// TestFollowDegraded: a Degraded rollout fails the step with the failing
// metric and every value it measured.
func TestFollowDegraded(t *testing.T) {
	deg := withMeasurements(st(runtime.RolloutDegraded, runtime.StepAborted), analysis.PhaseFailed, "0.412", "0.398", "0.455")
	deg.Message = "prePromotion analysis failed"
	deg.Monitors = []runtime.MonitorResult{{Monitor: "checkout", Location: "local", OK: false, Status: 503, Message: "status 503, want 200"}}
	r := &scriptedRoller{script: []runtime.RolloutStatus{st(runtime.RolloutProgressing, runtime.StepPrePromotion), deg}}
	var out bytes.Buffer
	got, err := Follow(context.Background(), r, "prod", st(runtime.RolloutProgressing, runtime.StepPreview), nil, &out)
	if !errors.Is(err, ErrDegraded) {
		t.Fatalf("got %v, want errors.Is ErrDegraded", err)
	}
	if got.Phase != runtime.RolloutDegraded {
		t.Errorf("ended at %s, want Degraded", got.Phase)
	}
	for _, want := range []string{"prePromotion analysis failed", "payment-service-analysis/p99-latency Failed (3 failed of 3)", "measured 0.412, 0.398, 0.455", "monitor checkout from local failed (status 503"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestFollowSuperseded: another rollout of the environment ends the
// step with an error rather than reporting someone else's outcome.
func TestFollowSuperseded(t *testing.T) {
	other := st(runtime.RolloutHealthy, runtime.StepCompleted)
	other.Digest, other.Desired = "sha256:"+strings.Repeat("0", 64), 5
	r := &scriptedRoller{script: []runtime.RolloutStatus{st(runtime.RolloutProgressing, runtime.StepPrePromotion), other}}
	_, err := Follow(context.Background(), r, "prod", st(runtime.RolloutProgressing, runtime.StepPreview), nil, &bytes.Buffer{})
	if !errors.Is(err, ErrSuperseded) {
		t.Fatalf("got %v, want errors.Is ErrSuperseded", err)
	}
}

// TestStart: a rollout of the same digest already in progress (a
// resumed run) is attached to; otherwise a new one starts.
func TestStart(t *testing.T) {
	req := runtime.RolloutRequest{Deploy: runtime.DeployRequest{Environment: "prod", Workloads: []runtime.Workload{{Name: "pay", Image: pushed}}}}
	paused := st(runtime.RolloutPaused, runtime.StepPaused)
	degraded := st(runtime.RolloutDegraded, runtime.StepAborted)
	otherDigest := st(runtime.RolloutHealthy, runtime.StepCompleted)
	otherDigest.Digest = "sha256:" + strings.Repeat("0", 64)
	tests := []struct {
		name      string
		current   *runtime.RolloutStatus
		wantCalls string
	}{
		{"no rollout yet", nil, "status prod, rollout prod"},
		{"same digest paused: attach", &paused, "status prod"},
		{"same digest degraded: start again", &degraded, "status prod, rollout prod"},
		{"another digest: start", &otherDigest, "status prod, rollout prod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &scriptedRoller{current: tt.current, started: st(runtime.RolloutProgressing, runtime.StepPreview)}
			var out bytes.Buffer
			if _, err := Start(context.Background(), r, req, &out); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(r.calls, ", "); got != tt.wantCalls {
				t.Errorf("calls: got %q, want %q", got, tt.wantCalls)
			}
		})
	}
}

// TestNew checks the inputs and where their errors point.
func TestNew(t *testing.T) {
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"minimal", "environment: prod", ""},
		{"everything", "{environment: prod, image: " + pushed + ", traffic: {header: X-Canary, value: '1'}, monitors: [checkout], analysis_interval: 3s, prometheus: 'http://127.0.0.1:9090'}", ""},
		{"percent", "{environment: prod, traffic: {percent: 10}}", ""},
		{"templated interval", "{environment: prod, analysis_interval: '3s'}", ""},
		{"no environment", "{}", "with.environment is required"},
		{"tag", "{environment: prod, image: 'pay:latest'}", "never a tag"},
		{"both", "{environment: prod, traffic: {header: X-Canary, percent: 10}}", "not both"},
		{"value alone", "{environment: prod, traffic: {value: '1'}}", "needs with.traffic.header"},
		{"bad header", "{environment: prod, traffic: {header: 'X Canary'}}", "not an HTTP header name"},
		{"percent out of range", "{environment: prod, traffic: {percent: 101}}", "1 to 100"},
		{"bad interval", "{environment: prod, analysis_interval: soon}", "not a positive duration"},
		{"bad prometheus", "{environment: prod, prometheus: 'prometheus:9090'}", "not an http(s) URL"},
		{"unknown input", "{environment: prod, scale_down_delay: 300s}", "scale_down_delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(steptest.Inputs{YAML: tt.yaml}, nil)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestApply: the traffic split, the analysis interval (only of metrics
// that have one) and the Prometheus address reach the strategy.
func TestApply(t *testing.T) {
	s, err := New(steptest.Inputs{YAML: "{environment: prod, traffic: {percent: 10}, analysis_interval: 3s}"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &analysis.Template{Spec: analysis.Spec{Metrics: []analysis.Metric{{Name: "p99", Interval: "30s", Count: "10"}, {Name: "once"}}}}
	post := &analysis.Template{Spec: analysis.Spec{Metrics: []analysis.Metric{{Name: "errors", Interval: "1m"}}}}
	bg := runtime.BlueGreen{ActiveService: "pay", PrePromotionAnalysis: &runtime.RolloutAnalysis{Templates: []*analysis.Template{tmpl}},
		PostPromotionAnalysis: &runtime.RolloutAnalysis{Templates: []*analysis.Template{post}}, Notes: []string{"antiAffinity: ignored on one machine"}}
	var out bytes.Buffer
	s.(*blueGreenStep).apply(&bg, "http://127.0.0.1:19090", &out)
	checks := []struct {
		name      string
		got, want any
	}{
		{"traffic", *bg.PreviewTraffic, runtime.TrafficSplit{Percent: 10}},
		{"interval of a metric with one", tmpl.Spec.Metrics[0].Interval, "3s"},
		{"count unchanged", tmpl.Spec.Metrics[0].Count, "10"},
		{"a metric without interval keeps none", tmpl.Spec.Metrics[1].Interval, ""},
		{"post-promotion interval", post.Spec.Metrics[0].Interval, "3s"},
		{"pre prometheus", bg.PrePromotionAnalysis.PrometheusURL, "http://127.0.0.1:19090"},
		{"post prometheus", bg.PostPromotionAnalysis.PrometheusURL, "http://127.0.0.1:19090"},
		{"note shown", strings.Contains(out.String(), "note: antiAffinity: ignored on one machine"), true},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
				t.Errorf("got %v, want %v", c.got, c.want)
			}
		})
	}
}

// TestRunWithoutRollout: a chart that renders no Argo Rollout is an
// error naming the chart, before the controller is reached.
func TestRunWithoutRollout(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"chart/Chart.yaml": "apiVersion: v2\nname: plain\nversion: 0.1.0\n",
		"chart/templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: plain}
spec:
  replicas: 1
  selector: {matchLabels: {app: plain}}
  template:
    metadata: {labels: {app: plain}}
    spec:
      containers:
        - name: plain
          image: {{ .Values.image | quote }}
          ports: [{name: http, containerPort: 8080}]
`,
		"chart/values.yaml": "image: plain:latest\n",
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env, log, _ := steptest.NewEnv(t, dir, "promote-prod", "bluegreen")
	env.PipelineFile, env.PipelineSource = ".gantry/pipeline.yaml", []byte("name: plain\nenvironments:\n  prod: {chart: chart}\nstages: []\n")
	connected := false
	s, err := NewKind(func(context.Context, string) (Controller, error) {
		connected = true
		return nil, errors.New("not reached")
	}).New(steptest.Inputs{YAML: "{environment: prod, image: " + pushed + "}"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Run(context.Background(), env)
	if err == nil || !strings.Contains(err.Error(), "the chart chart of environment prod renders no Argo Rollout") {
		t.Fatalf("got %v, want the no-Rollout error\n%s", err, log)
	}
	if connected {
		t.Error("the controller was reached for a chart without a Rollout")
	}
}

var _ step.Step = (*blueGreenStep)(nil)

// controllerFixture is a Controller: scriptedRoller's rollouts and an
// environment whose Prometheus is known.
type controllerFixture struct {
	*scriptedRoller
	closed int
}

func (c *controllerFixture) Close() { c.closed++ }
func (c *controllerFixture) Deploy(context.Context, runtime.DeployRequest) (runtime.Revision, error) {
	return runtime.Revision{}, errors.New("not used")
}
func (c *controllerFixture) Rollback(context.Context, string, int, string, string) (runtime.Revision, error) {
	return runtime.Revision{}, errors.New("not used")
}
func (c *controllerFixture) Status(_ context.Context, env string) (runtime.EnvironmentStatus, error) {
	return runtime.EnvironmentStatus{Name: env, URL: "http://127.0.0.1:30081", PrometheusURL: "http://127.0.0.1:19090"}, nil
}
func (c *controllerFixture) List(context.Context) ([]runtime.EnvironmentStatus, error) {
	return nil, nil
}
func (c *controllerFixture) History(context.Context, string) ([]runtime.Revision, error) {
	return nil, nil
}
func (c *controllerFixture) Logs(context.Context, string, bool, io.Writer) error { return nil }

const examplePipeline = `name: payment-service
environments:
  prod:
    values: [deploy/chart/values-local.yaml, deploy/chart/values-prod-local.yaml]
    services: [postgres, redis, sqs]
stages: []
`

// TestRunExample rolls the example's chart out to prod: the request
// carries the chart's workloads pinned to the pushed digest and the
// strategy of its Rollout with the step's inputs applied (the
// environment's Prometheus, the interval, the traffic split), and the
// outputs come from the rollout's final status.
func TestRunExample(t *testing.T) {
	dir, err := filepath.Abs("../../../examples/payment-service")
	if err != nil {
		t.Fatal(err)
	}
	env, log, _ := steptest.NewEnv(t, dir, "promote-prod", "bluegreen")
	env.RunID = "42"
	env.PipelineFile, env.PipelineSource = ".gantry/pipeline.yaml", []byte(examplePipeline)
	healthy := st(runtime.RolloutHealthy, runtime.StepScaleDown)
	healthy.Stable = 4
	c := &controllerFixture{scriptedRoller: &scriptedRoller{started: st(runtime.RolloutProgressing, runtime.StepPreview),
		script: []runtime.RolloutStatus{st(runtime.RolloutPaused, runtime.StepPaused), healthy}}}
	s, err := NewKind(func(context.Context, string) (Controller, error) { return c, nil }).
		New(steptest.Inputs{YAML: "{environment: prod, image: " + pushed + ", traffic: {header: X-Canary, value: '1'}, analysis_interval: 3s}"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Run(context.Background(), env)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if len(c.reqs) != 1 {
		t.Fatalf("%d rollout requests, want 1", len(c.reqs))
	}
	req := c.reqs[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"environment", req.Deploy.Environment, "prod"},
		{"who", req.Deploy.Who, "run 42"},
		{"image pinned", req.Deploy.Workloads[0].Image, pushed},
		{"replicas of values-prod-local", req.Deploy.Workloads[0].Replicas, 2},
		{"services", req.Deploy.Spec.Services, []string{"postgres", "redis", "sqs"}},
		{"traffic", *req.Strategy.PreviewTraffic, runtime.TrafficSplit{Header: "X-Canary", Value: "1"}},
		{"active service", req.Strategy.ActiveService, "payment-service"},
		{"manual promotion", req.Strategy.AutoPromotionEnabled, false},
		{"interval", req.Strategy.PrePromotionAnalysis.Templates[0].Spec.Metrics[0].Interval, "3s"},
		{"count unchanged", req.Strategy.PrePromotionAnalysis.Templates[0].Spec.Metrics[0].Count, "10"},
		{"the environment's prometheus", req.Strategy.PrePromotionAnalysis.PrometheusURL, "http://127.0.0.1:19090"},
		{"no monitors declared", len(req.Monitors), 0},
		{"outputs", res.Outputs, map[string]any{"url": "http://127.0.0.1:30081", "preview_url": "http://127.0.0.1:30082", "digest": digest, "revision": 4, "phase": "Healthy"}},
		{"closed", c.closed, 1},
		{"says how to promote", strings.Contains(log.String(), "to promote: gantry rollout promote prod"), true},
	}
	for _, ch := range checks {
		t.Run(ch.name, func(t *testing.T) {
			if fmt.Sprint(ch.got) != fmt.Sprint(ch.want) {
				t.Errorf("got %v, want %v", ch.got, ch.want)
			}
		})
	}
}

// TestAnalysisSecrets: a template argument from valueFrom.secretKeyRef
// takes SECRET_<NAME>_<KEY> of the step's environment (a pipeline secret
// the step lists) into the request; one the Rollout's args give needs
// none; a missing one is an error naming the secret, before anything
// rolls out; the value is never printed.
func TestAnalysisSecrets(t *testing.T) {
	src := `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: authed}
spec:
  args:
  - name: token
    valueFrom: {secretKeyRef: {name: metrics-api, key: token}}
  - name: region
    valueFrom: {secretKeyRef: {name: metrics-api, key: region}}
  metrics:
  - name: ok
    provider: {web: {url: "http://127.0.0.1/{{args.region}}", headers: [{key: Authorization, value: "Bearer {{args.token}}"}]}}
`
	tmpl := func() *analysis.Template {
		x, err := analysis.ParseTemplate("authed.yaml", []byte(src), "authed")
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	tests := []struct {
		name    string
		vars    []string
		args    []runtime.AnalysisArg
		want    map[string]string
		wantErr string
	}{
		{name: "both from secrets", vars: []string{"PATH=/bin", "SECRET_METRICS_API_TOKEN=tok-1", "SECRET_METRICS_API_REGION=eu"},
			want: map[string]string{"SECRET_METRICS_API_TOKEN": "tok-1", "SECRET_METRICS_API_REGION": "eu"}},
		{name: "the Rollout gives one", vars: []string{"SECRET_METRICS_API_TOKEN=tok-1"}, args: []runtime.AnalysisArg{{Name: "region", Value: "us"}},
			want: map[string]string{"SECRET_METRICS_API_TOKEN": "tok-1"}},
		{name: "not listed", vars: []string{"SECRET_METRICS_API_REGION=eu"},
			wantErr: "argument token is valueFrom.secretKeyRef metrics-api/token, read from the secret SECRET_METRICS_API_TOKEN: define it in the pipeline's secrets: and list it in this step's secrets:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bg := runtime.BlueGreen{PostPromotionAnalysis: &runtime.RolloutAnalysis{Templates: []*analysis.Template{tmpl()}, Args: tt.args}}
			var out bytes.Buffer
			err := analysisSecrets(&bg, tt.vars, &out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := bg.PostPromotionAnalysis.Secrets; fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("secrets %v, want %v", got, tt.want)
			}
			if strings.Contains(out.String(), "tok-1") || !strings.Contains(out.String(), "from the secret SECRET_METRICS_API_TOKEN") {
				t.Errorf("log %q: want the secret named, its value not shown", out.String())
			}
			if err := analysis.Check(bg.PostPromotionAnalysis.Templates[0], analysis.Options{Args: map[string]string{"region": "us"}, SharedArgs: true,
				Secret: func(name, key string) (string, bool) {
					v, ok := bg.PostPromotionAnalysis.Secrets[analysis.SecretEnvName(name, key)]
					return v, ok
				}}); tt.args != nil && err != nil {
				t.Errorf("the template does not check with the resolved secrets: %v", err)
			}
		})
	}
}

// droppingRoller is a scriptedRoller whose gantry serve goes away once:
// the first watch ends after drop statuses with the stream cut, the
// next status request finds nothing listening, then it is back.
type droppingRoller struct {
	*scriptedRoller
	drop    int
	watches int
	asked   int
}

func (r *droppingRoller) Watch(ctx context.Context, env string, f func(runtime.RolloutStatus) bool) error {
	r.watches++
	script := r.script
	if r.watches == 1 {
		for _, st := range script[:r.drop] {
			if !f(st) {
				return nil
			}
		}
		return fmt.Errorf("watch the rollout of %s: gantry serve ended the stream: %w", env, runtime.ErrClosed)
	}
	for _, st := range script[r.drop:] {
		if !f(st) {
			return nil
		}
	}
	return nil
}

func (r *droppingRoller) RolloutStatus(ctx context.Context, env string) (runtime.RolloutStatus, error) {
	r.asked++
	if r.asked == 1 {
		return runtime.RolloutStatus{}, fmt.Errorf("%w for /state", serve.ErrNotRunning)
	}
	return r.script[r.drop], nil
}

// TestFollowSurvivesServeRestart: gantry serve killed while the step
// follows the rollout: the step says so, waits for a serve to answer
// again and follows the rollout, which went on from its record, to its
// end; a serve that never comes back fails the step after ReconnectFor.
func TestFollowSurvivesServeRestart(t *testing.T) {
	paused := st(runtime.RolloutPaused, runtime.StepPaused)
	healthy := st(runtime.RolloutHealthy, runtime.StepScaleDown)
	healthy.Stable = 4
	r := &droppingRoller{scriptedRoller: &scriptedRoller{script: []runtime.RolloutStatus{st(runtime.RolloutProgressing, runtime.StepPrePromotion), paused, healthy}}, drop: 1}
	var out bytes.Buffer
	got, err := Follow(context.Background(), r, "prod", st(runtime.RolloutProgressing, runtime.StepPreview), nil, &out)
	if err != nil {
		t.Fatalf("Follow: %v\n%s", err, &out)
	}
	if got.Phase != runtime.RolloutHealthy || r.watches != 2 {
		t.Errorf("ended at %s after %d watches, want Healthy after 2", got.Phase, r.watches)
	}
	for _, want := range []string{"prod: lost gantry serve", "prod: gantry serve is back; following the rollout from Paused, step paused", "prod: Healthy, step scaleDown"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, &out)
		}
	}

	defer func(d time.Duration) { ReconnectFor = d }(ReconnectFor)
	ReconnectFor = 0
	r = &droppingRoller{scriptedRoller: &scriptedRoller{script: []runtime.RolloutStatus{st(runtime.RolloutProgressing, runtime.StepPrePromotion), paused}}, drop: 1}
	if _, err := Follow(context.Background(), r, "prod", st(runtime.RolloutProgressing, runtime.StepPreview), nil, io.Discard); err == nil || !errors.Is(err, runtime.ErrClosed) || !strings.Contains(err.Error(), "did not come back") {
		t.Errorf("a serve that never comes back: error %v, want one saying so", err)
	}
}

// TestKubernetesEnvironmentNeedsNoServe: a kubernetes environment is
// rolled out through its cluster, never by the serve process's local
// runtime; an unreachable cluster is named in the error.
func TestKubernetesEnvironmentNeedsNoServe(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "chart"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "chart", "Chart.yaml"), []byte("apiVersion: v2\nname: c\nversion: 0.1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "no-kubeconfig")
	env, _, _ := steptest.NewEnv(t, dir, "promote-prod", "bluegreen")
	env.PipelineFile, env.PipelineSource = ".gantry/pipeline.yaml", []byte("name: k\nenvironments:\n  prod: {chart: chart, runtime: kubernetes, kubernetes: {kubeconfig: "+missing+"}}\nstages: []\n")
	connected := false
	s, err := NewKind(func(context.Context, string) (Controller, error) {
		connected = true
		return nil, errors.New("not reached")
	}).New(steptest.Inputs{YAML: "{environment: prod, image: " + pushed + "}"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Run(context.Background(), env)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("got %v, want the missing kubeconfig named", err)
	}
	if connected {
		t.Error("the step reached for gantry serve")
	}
}

// TestFollowSilentLocation: a location that never reports holds the gate
// with a message naming it and since when; when the post-promotion
// window ends without its pass the step fails (ErrMonitorsSilent) while
// the release stays Healthy. A first rollout (no promotion) waits for no
// monitor.
func TestFollowSilentLocation(t *testing.T) {
	monitors := []runtime.Monitor{{Name: "health", Locations: []string{"local", "eu-west"}}}
	promoted := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	healthy := st(runtime.RolloutHealthy, runtime.StepScaleDown)
	healthy.PromotedAt = promoted
	localOK := healthy
	localOK.Monitors = []runtime.MonitorResult{{Monitor: "health", Location: "local", OK: true}}
	completed := localOK
	completed.Step = runtime.StepCompleted
	bothOK := localOK
	bothOK.Monitors = append(bothOK.Monitors, runtime.MonitorResult{Monitor: "health", Location: "eu-west", OK: true})

	t.Run("silent past the window", func(t *testing.T) {
		var out bytes.Buffer
		got, err := Follow(context.Background(), &scriptedRoller{script: []runtime.RolloutStatus{healthy, localOK, completed}}, "prod",
			st(runtime.RolloutProgressing, runtime.StepPostPromotion), monitors, &out)
		wantWait := "prod: waiting for every synthetic monitor to pass from every location: health from eu-west: no result since the promotion at 2026-03-01T10:00:00Z (is gantry monitor agent --location eu-west running?)"
		if !strings.Contains(out.String(), wantWait) {
			t.Errorf("output does not name the silent location:\n%s\nwant a line %q", &out, wantWait)
		}
		if !errors.Is(err, ErrMonitorsSilent) || errors.Is(err, ErrDegraded) {
			t.Fatalf("error %v, want ErrMonitorsSilent (not Degraded)", err)
		}
		for _, want := range []string{"health from eu-west: no result since the promotion at 2026-03-01T10:00:00Z", "the release is not aborted"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		if got.Phase != runtime.RolloutHealthy || got.Step != runtime.StepCompleted {
			t.Errorf("ended at %s %s, want Healthy completed", got.Phase, got.Step)
		}
	})
	t.Run("reports in time", func(t *testing.T) {
		got, err := Follow(context.Background(), &scriptedRoller{script: []runtime.RolloutStatus{healthy, localOK, bothOK, completed}}, "prod",
			st(runtime.RolloutProgressing, runtime.StepPostPromotion), monitors, &bytes.Buffer{})
		if err != nil || got.Phase != runtime.RolloutHealthy {
			t.Errorf("ended at %s, %v; want Healthy, no error", got.Phase, err)
		}
	})
	t.Run("first rollout", func(t *testing.T) {
		first := st(runtime.RolloutHealthy, runtime.StepCompleted)
		got, err := Follow(context.Background(), &scriptedRoller{script: []runtime.RolloutStatus{first}}, "prod", first, monitors, &bytes.Buffer{})
		if err != nil || got.Phase != runtime.RolloutHealthy {
			t.Errorf("ended at %s, %v; want Healthy, no error", got.Phase, err)
		}
	})
}
