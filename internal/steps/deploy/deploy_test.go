package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
)

const pushed = "127.0.0.1:5000/payment-service@sha256:feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface"

// recorder is a runtime.Deployer that records what it is asked and
// answers like a controller with one serving revision.
type recorder struct {
	mu       sync.Mutex
	requests []runtime.DeployRequest
	current  *runtime.Revision
	// deployErr, when set, is what Deploy fails with.
	deployErr error
	// closed counts the calls of Close.
	closed int
}

func (r *recorder) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed++
}

var _ runtime.Deployer = (*recorder)(nil)

func (r *recorder) Deploy(_ context.Context, req runtime.DeployRequest) (runtime.Revision, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, req)
	if r.deployErr != nil {
		return runtime.Revision{}, r.deployErr
	}
	n := 1
	if r.current != nil {
		n = r.current.Number + 1
	}
	digest := req.Workloads[0].Image[strings.Index(req.Workloads[0].Image, "@")+1:]
	rev := runtime.Revision{Environment: req.Environment, Number: n, Digest: digest, Workloads: req.Workloads, Who: req.Who, Run: req.Run, Status: "serving", Created: time.Unix(0, 0)}
	r.current = &rev
	return rev, nil
}

func (r *recorder) Rollback(context.Context, string, int, string, string) (runtime.Revision, error) {
	return runtime.Revision{}, errors.New("not used")
}

func (r *recorder) Status(_ context.Context, env string) (runtime.EnvironmentStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := runtime.EnvironmentStatus{Name: env, URL: "http://127.0.0.1:18080", Current: r.current,
		SinkURL: "http://127.0.0.1:18081/sink/" + env, PrometheusURL: "http://127.0.0.1:18082"}
	if r.current != nil {
		st.Instances = []runtime.InstanceStatus{{ID: env + "-1-0", Addr: "127.0.0.1:40001", State: "ready", Isolation: runtime.Process}}
	}
	return st, nil
}

func (r *recorder) List(context.Context) ([]runtime.EnvironmentStatus, error) { return nil, nil }
func (r *recorder) History(context.Context, string) ([]runtime.Revision, error) {
	return nil, nil
}
func (r *recorder) Logs(context.Context, string, bool, io.Writer) error { return nil }

const examplePipeline = `name: payment-service
env: {TEAM: payments}
environments:
  staging:
    values: [deploy/chart/values-local.yaml]
    set: {config.LOG_LEVEL: debug}
    services: [postgres, redis, sqs]
    env: {RELEASE: "${git.short_sha}", OWNER: "${env.TEAM}"}
    policy: [kubernetes/deployments/kyverno-image-verification.yaml]
    require: [tests, vuln-scan]
    prometheus: {rules: [deploy/prometheus/alerts.yaml]}
stages: []
`

// runView is a run whose build-test/push step pushed the image and whose
// security/sign step signed it with key.
func runView(key string) func() step.RunView {
	return func() step.RunView {
		return step.RunView{Pipeline: "payment-service", Stages: []step.StageView{
			{Name: "build-test", Status: "passed", Steps: []step.StepView{
				{Name: "image", Kind: "image-build", Status: "passed", Outputs: map[string]any{"image": "payment-service:latest"}},
				{Name: "push", Kind: "image-push", Status: "passed", Outputs: map[string]any{"image": pushed, "digest": pushed[strings.Index(pushed, "@")+1:]}},
			}},
			{Name: "security", Status: "passed", Steps: []step.StepView{
				{Name: "sign", Kind: "sign", Status: "passed", Outputs: map[string]any{"image": pushed, "signature": "sha256-x.sig", "key": key}},
			}},
			{Name: "deploy-staging", Status: "running"},
		}}
	}
}

func exampleEnv(t *testing.T) (*step.Env, *bytes.Buffer) {
	t.Helper()
	dir, err := filepath.Abs("../../../examples/payment-service")
	if err != nil {
		t.Fatal(err)
	}
	env, log, _ := steptest.NewEnv(t, dir, "deploy-staging", "deploy")
	env.RunID = "42"
	env.Vars = []string{"TEAM=payments"}
	env.Git = step.Git{SHA: "0123456789abcdef0123456789abcdef01234567", Branch: "main", Event: "push"}
	env.PipelineFile, env.PipelineSource = ".gantry/pipeline.yaml", []byte(examplePipeline)
	env.Run = runView("/keys/cosign.pub")
	return env, log
}

// TestDeployExample deploys the example's chart and checks the request
// the controller gets.
func TestDeployExample(t *testing.T) {
	env, log := exampleEnv(t)
	rec := &recorder{current: &runtime.Revision{Number: 3, Digest: "sha256:0ld"}}
	var gotState string
	s, err := NewKind(func(_ context.Context, stateDir string) (runtime.Deployer, error) {
		gotState = stateDir
		return rec, nil
	}).New(steptest.Inputs{YAML: "environment: staging"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Run(context.Background(), env)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if rec.closed != 1 {
		t.Errorf("the deployer was closed %d times, want once", rec.closed)
	}
	if gotState != env.StateDir {
		t.Errorf("connect: got state dir %q, want %q", gotState, env.StateDir)
	}
	if len(rec.requests) != 1 {
		t.Fatalf("%d deploy requests, want 1", len(rec.requests))
	}
	req := rec.requests[0]
	if len(req.Workloads) != 1 {
		t.Fatalf("%d workloads, want 1", len(req.Workloads))
	}
	w := req.Workloads[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"environment", req.Environment, "staging"},
		{"who", req.Who, "run 42"},
		{"run", req.Run, int64(42)},
		{"image by digest", w.Image, pushed},
		{"replicas", w.Replicas, 2},
		{"port env", w.PortEnv, "PORT"},
		{"ports", w.Ports, []runtime.Port{{Name: "http", ContainerPort: 8080}}},
		{"readiness", w.Readiness.HTTPGet, &runtime.HTTPGetAction{Path: "/readyz", Port: "http"}},
		{"liveness", w.Liveness.HTTPGet, &runtime.HTTPGetAction{Path: "/healthz", Port: "http"}},
		{"memory", w.Resources.MemoryLimit, int64(256 << 20)},
		{"read-only root", w.Security.ReadOnlyRootFilesystem, true},
		{"services", req.Spec.Services, []string{"postgres", "redis", "sqs"}},
		{"require", req.Spec.Require, []string{"tests", "vuln-scan"}},
		{"key from the sign step", req.Spec.Key, "/keys/cosign.pub"},
		{"policy file", fileNames(req.Spec.Policies), []string{"kubernetes/deployments/kyverno-image-verification.yaml"}},
		{"alert rules", fileNames(req.Spec.AlertRules), []string{"deploy/prometheus/alerts.yaml"}},
		{"outputs", res.Outputs, map[string]any{"url": "http://127.0.0.1:18080", "revision": 4, "digest": pushed[strings.Index(pushed, "@")+1:], "previous_digest": "sha256:0ld",
			"sink_url": "http://127.0.0.1:18081/sink/staging", "prometheus_url": "http://127.0.0.1:18082"}},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
				t.Errorf("got %v, want %v", c.got, c.want)
			}
		})
	}
	for _, kv := range []string{"PORT=8080", "LOG_LEVEL=debug", "STORAGE=external", "RELEASE=0123456789ab", "OWNER=payments"} {
		if !slices.Contains(w.Env, kv) {
			t.Errorf("env %q lacks %s", w.Env, kv)
		}
	}
	for _, k := range []string{"SQS_QUEUE_URL=", "AWS_REGION="} {
		if slices.ContainsFunc(w.Env, func(e string) bool { return strings.HasPrefix(e, k) }) {
			t.Errorf("env %q sets %s: the local values leave it to the sqs service", w.Env, k)
		}
	}
	for _, want := range []string{
		"deploying " + pushed + " to staging (image from security/sign)",
		`note: deploy/chart/templates/rollout.yaml: spec.template.spec.containers[0].envFrom[1].secretRef: Secret "payment-service-credentials" is not in the chart; skipped`,
		"instances run as plain processes",
		"instance staging-1-0: ready at 127.0.0.1:40001 (process)",
		"revision 4 serves sha256:feedfacefeed at http://127.0.0.1:18080",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func fileNames(fs []runtime.File) []string {
	var out []string
	for _, f := range fs {
		if len(f.Data) == 0 {
			out = append(out, f.Name+" (empty)")
			continue
		}
		out = append(out, f.Name)
	}
	return out
}

func TestDeployFailures(t *testing.T) {
	connectErr := errors.New("socket refused")
	tests := []struct {
		name    string
		with    string
		prepare func(env *step.Env, rec *recorder)
		connect error
		is      error
		want    string
	}{
		{name: "not ready", with: "environment: staging", prepare: func(_ *step.Env, rec *recorder) {
			rec.deployErr = fmt.Errorf("%w: GET /readyz: 503", runtime.ErrNotReady)
		}, is: runtime.ErrNotReady, want: "deploy to staging: revision did not become ready: GET /readyz: 503"},
		{name: "refused", with: "environment: staging", prepare: func(_ *step.Env, rec *recorder) {
			rec.deployErr = fmt.Errorf("%w: verifyImages: unsigned", runtime.ErrAdmission)
		}, is: runtime.ErrAdmission, want: "deploy to staging: admission refused: verifyImages: unsigned"},
		{name: "another deploy in progress", with: "environment: staging", prepare: func(_ *step.Env, rec *recorder) {
			rec.deployErr = fmt.Errorf("deploy staging: %w", runtime.ErrDeployInProgress)
		}, is: runtime.ErrDeployInProgress, want: "deploy to staging: deploy staging: another deploy of this environment is in progress"},
		{name: "policy file missing", with: "environment: staging", prepare: func(env *step.Env, _ *recorder) {
			env.PipelineSource = []byte(strings.Replace(examplePipeline, "kubernetes/deployments/kyverno-image-verification.yaml", "kubernetes/deployments/nope.yaml", 1))
		}, want: "deploy: .gantry/pipeline.yaml:9:14: environment staging: policy: kubernetes/deployments/nope.yaml does not exist in the repository"},
		{name: "unknown environment", with: "environment: prod", want: `deploy: environment not declared: .gantry/pipeline.yaml has no environment "prod" (it declares staging)`},
		{name: "nothing pushed", with: "environment: staging", prepare: func(env *step.Env, _ *recorder) {
			env.Run = func() step.RunView { return step.RunView{} }
		}, want: "deploy: no step of this run pushed an image by digest"},
		{name: "no controller", with: "environment: staging", connect: connectErr, is: connectErr, want: "deploy: reach the environment controller (gantry serve): socket refused"},
		{name: "chart broken", with: "environment: staging", prepare: func(env *step.Env, _ *recorder) {
			env.PipelineSource = []byte(strings.Replace(examplePipeline, "set: {config.LOG_LEVEL: debug}", "set: {fullnameOverride.x: y}", 1))
		}, want: "deploy: environment staging: render deploy/chart: bad values path: set fullnameOverride.x: fullnameOverride is a string, not a map"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, _ := exampleEnv(t)
			rec := &recorder{}
			if tc.prepare != nil {
				tc.prepare(env, rec)
			}
			s, err := NewKind(func(context.Context, string) (runtime.Deployer, error) {
				if tc.connect != nil {
					return nil, tc.connect
				}
				return rec, nil
			}).New(steptest.Inputs{YAML: tc.with})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Run(context.Background(), env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\ngot  %v\nwant %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v) false for %v", tc.is, err)
			}
		})
	}
}

func TestNewInputs(t *testing.T) {
	tests := []struct {
		name, with, want string
	}{
		{"no environment", "image: " + pushed, "with.environment is required"},
		{"tag", "{environment: staging, image: 'payment-service:1.2.0'}", "is not REPO@sha256:...: a deploy runs an image by digest, never a tag"},
		{"negative timeout", "{environment: staging, timeout: -1s}", `duration "-1s" must not be negative`},
		{"unknown input", "{environment: staging, chart: x}", `unknown field "chart"`},
	}
	kind := NewKind(nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kind.New(steptest.Inputs{YAML: tc.with})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error: got %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := kind.New(steptest.Inputs{YAML: "{environment: staging, image: " + pushed + ", timeout: 2m}"}); err != nil {
		t.Errorf("good inputs: %v", err)
	}
}

// TestPolicyFromStateDir: a policy file of the environment that the state
// dir holds at STATE_DIR/policies/PATH is read from there instead of the
// repository (an operator's copy, as STATE_DIR/approvers.yaml is), and the
// step says so; the others still come from the repository.
func TestPolicyFromStateDir(t *testing.T) {
	env, log := exampleEnv(t)
	const name = "kubernetes/deployments/kyverno-image-verification.yaml"
	override := filepath.Join(env.StateDir, "policies", filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(override), 0o755); err != nil {
		t.Fatal(err)
	}
	const operators = "# the operator's copy, trusting the state dir's key\n"
	if err := os.WriteFile(override, []byte(operators), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{current: &runtime.Revision{Number: 3, Digest: "sha256:0ld"}}
	s, err := NewKind(func(context.Context, string) (runtime.Deployer, error) { return rec, nil }).New(steptest.Inputs{YAML: "environment: staging"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(context.Background(), env); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	ps := rec.requests[0].Spec.Policies
	if len(ps) != 1 || string(ps[0].Data) != operators || ps[0].Name != override {
		t.Errorf("policies %v, want the state dir's copy %s", fileNames(ps), override)
	}
	if want := "note: policy " + name + ": read from " + override; !strings.Contains(log.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
}

// TestDeployKubernetesNeedsNoServe: a runtime: kubernetes environment is
// deployed by the step itself; the serve process is never asked, and a
// kubeconfig that cannot be read is the error.
func TestDeployKubernetesNeedsNoServe(t *testing.T) {
	env, _ := exampleEnv(t)
	missing := filepath.Join(t.TempDir(), "no-kubeconfig")
	env.PipelineSource = []byte(`name: payment-service
environments:
  staging:
    runtime: kubernetes
    kubernetes: {kubeconfig: ` + missing + `, namespace: payments}
stages: []
`)
	connected := false
	s, err := NewKind(func(context.Context, string) (runtime.Deployer, error) {
		connected = true
		return &recorder{}, nil
	}).New(steptest.Inputs{YAML: "environment: staging"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Run(context.Background(), env)
	if err == nil || !strings.Contains(err.Error(), "environment staging: kubernetes: load the client configuration (kubeconfig \""+missing+"\"") {
		t.Errorf("got %v, want the kubeconfig named in the error", err)
	}
	if connected {
		t.Error("the step reached for gantry serve for a kubernetes environment")
	}
}
