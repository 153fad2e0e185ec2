package engine_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/artifact"
	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/notify"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/shell"
	"github.com/gantry-ci/gantry/internal/store"
)

// countKind is a cacheable test kind that counts its runs and sets an
// output from its input file.
type countKind struct {
	runs atomic.Int64
}

type countConfig struct {
	File  string  `yaml:"file"`
	Value float64 `yaml:"value"`
}

type countStep struct {
	k   *countKind
	cfg countConfig
}

func (k *countKind) kind() step.Kind {
	return step.Kind{
		Name:    "count",
		Outputs: []string{"value", "content"},
		New: func(in step.Inputs) (step.Step, error) {
			var cfg countConfig
			if err := in.Decode(&cfg); err != nil {
				return nil, err
			}
			return &countStep{k: k, cfg: cfg}, nil
		},
	}
}

func (s *countStep) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	s.k.runs.Add(1)
	out := map[string]any{"value": s.cfg.Value}
	if s.cfg.File != "" {
		b, err := os.ReadFile(filepath.Join(env.Dir, s.cfg.File))
		if err != nil {
			return nil, err
		}
		out["content"] = strings.TrimSpace(string(b))
		if err := env.Artifacts.PutBytes(ctx, "copy.txt", b, ""); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(env.Stdout, "counted %v\n", s.cfg.Value)
	return &step.Result{Outputs: out, Summary: "counted"}, nil
}

func (s *countStep) CacheKey(context.Context, *step.Env) (step.CacheKey, error) {
	files := []string{}
	if s.cfg.File != "" {
		files = []string{s.cfg.File}
	}
	return step.CacheKey{Files: files}, nil
}

type fixture struct {
	t     testing.TB
	dir   string
	store *store.Store
	arts  *artifact.Store
	eng   *engine.Engine
	count *countKind
	mu    sync.Mutex
	logs  []string
}

func newFixture(t testing.TB, opts ...engine.Option) *fixture {
	t.Helper()
	state := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(state, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	arts, err := artifact.New(filepath.Join(state, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, dir: t.TempDir(), store: st, arts: arts, count: &countKind{}}
	base := []engine.Option{
		engine.WithKinds([]step.Kind{f.count.kind()}),
		engine.WithScriptKind(shell.Kind),
		engine.WithJobs(2),
		engine.WithObserver(engine.ObserverFunc(func(e engine.Event) {
			if e.Type == engine.StepLog {
				f.mu.Lock()
				f.logs = append(f.logs, e.Line)
				f.mu.Unlock()
			}
		})),
	}
	eng, err := engine.New(st, arts, state, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f.eng = eng
	return f
}

func (f *fixture) write(name, content string) {
	f.t.Helper()
	path := filepath.Join(f.dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) pipeline(yaml string) *spec.Pipeline {
	f.t.Helper()
	p, err := spec.Parse("pipeline.yaml", []byte(yaml), f.eng.Registry())
	if err != nil {
		f.t.Fatalf("parse pipeline: %v", err)
	}
	return p
}

func (f *fixture) run(ctx context.Context, p *spec.Pipeline, req engine.Request) *engine.Result {
	f.t.Helper()
	req.Dir = f.dir
	if req.Git.Event == "" {
		req.Git = step.Git{SHA: "0123456789abcdef", Branch: "main", Event: "push"}
	}
	res, err := f.eng.Run(ctx, p, req)
	if err != nil {
		f.t.Fatalf("Run: %v", err)
	}
	return res
}

func (f *fixture) steps(runID int64) map[string]store.Step {
	f.t.Helper()
	steps, err := f.store.Steps(context.Background(), runID)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]store.Step{}
	for _, s := range steps {
		out[s.Stage+"/"+s.Name] = s
	}
	return out
}

func (f *fixture) allLogs(runID int64) string {
	f.t.Helper()
	lines, err := f.store.Logs(context.Background(), runID, "", "", 0)
	if err != nil {
		f.t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Text + "\n")
	}
	return b.String()
}

func TestDAGOutputsAndGate(t *testing.T) {
	tests := []struct {
		name     string
		coverage string
		want     store.Status
	}{
		{"gate passes at 80", "80", store.StatusPassed},
		{"gate fails at 79.9", "79.9", store.StatusFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			p := f.pipeline(`name: demo
stages:
  - name: build
    steps:
      - {name: a, run: 'echo "coverage=` + tt.coverage + `" >> "$GANTRY_OUTPUT"', outputs: [coverage]}
      - {name: b, run: 'echo "got $COVERAGE"', env: {COVERAGE: "${steps.a.outputs.coverage}"}, needs: [a]}
      - {name: c, uses: count, with: {value: "${steps.a.outputs.coverage}"}, needs: [a]}
    gate: steps.a.outputs.coverage >= 80
  - name: after
    steps:
      - {name: d, run: 'echo "$VALUE"', env: {VALUE: "${stages.build.steps.c.outputs.value}"}}
`)
			res := f.run(context.Background(), p, engine.Request{})
			if res.Status != tt.want {
				t.Fatalf("status: got %s (%s), want %s", res.Status, res.Message, tt.want)
			}
			steps := f.steps(res.RunID)
			if got, want := steps["build/c"].Outputs["value"], mustFloat(t, tt.coverage); got != want {
				t.Errorf("c.value: got %v, want %v", got, want)
			}
			if !strings.Contains(f.allLogs(res.RunID), "got "+tt.coverage) {
				t.Errorf("b did not see a's output; logs:\n%s", f.allLogs(res.RunID))
			}
			stages, err := f.store.Stages(context.Background(), res.RunID)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == store.StatusFailed {
				if got, want := stages[0].Message, "gate steps.a.outputs.coverage >= 80 failed (steps.a.outputs.coverage = 79.9)"; got != want {
					t.Errorf("gate message: got %q, want %q", got, want)
				}
				if got, want := stages[1].Status, store.StatusSkipped; got != want {
					t.Errorf("stage after a failed gate: got %s, want %s", got, want)
				}
			} else if got, want := steps["after/d"].Status, store.StatusPassed; got != want {
				t.Errorf("after/d: got %s, want %s", got, want)
			}
		})
	}
}

func mustFloat(t *testing.T, s string) float64 {
	var f float64
	if _, err := fmt.Sscan(s, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFailedNeedSkipsDependents(t *testing.T) {
	f := newFixture(t)
	p := f.pipeline(`name: demo
stages:
  - name: s
    steps:
      - {name: bad, run: 'echo boom; exit 3'}
      - {name: dep, run: 'echo never', needs: [bad]}
      - {name: free, run: 'echo independent'}
      - {name: flaky, run: 'exit 1', allow_failure: true}
`)
	res := f.run(context.Background(), p, engine.Request{})
	if res.Status != store.StatusFailed {
		t.Fatalf("status: got %s, want failed", res.Status)
	}
	steps := f.steps(res.RunID)
	for name, want := range map[string]store.Status{"s/bad": store.StatusFailed, "s/dep": store.StatusSkipped, "s/free": store.StatusPassed, "s/flaky": store.StatusFailed} {
		if got := steps[name].Status; got != want {
			t.Errorf("%s: got %s, want %s", name, got, want)
		}
	}
	if got, want := steps["s/bad"].Message, "script exited with status 3"; got != want {
		t.Errorf("message: got %q, want %q", got, want)
	}
	if got, want := steps["s/dep"].Message, "needs: bad failed"; got != want {
		t.Errorf("skip reason: got %q, want %q", got, want)
	}
	if got, want := res.Message, `stage "s" failed`; got != want {
		t.Errorf("run message: got %q, want %q", got, want)
	}
}

func TestStepCache(t *testing.T) {
	f := newFixture(t)
	f.write("input.txt", "one\n")
	p := f.pipeline(`name: demo
stages:
  - name: s
    steps:
      - {name: c, uses: count, with: {file: input.txt, value: 1}}
      - {name: r, run: 'echo ran-script; echo "n=$(cat input.txt)" >> "$GANTRY_OUTPUT"', inputs: ["*.txt"], outputs: [n]}
`)
	first := f.run(context.Background(), p, engine.Request{})
	second := f.run(context.Background(), p, engine.Request{})
	if got, want := f.count.runs.Load(), int64(1); got != want {
		t.Fatalf("count runs after a cached re-run: got %d, want %d", got, want)
	}
	steps := f.steps(second.RunID)
	for _, name := range []string{"s/c", "s/r"} {
		if got := steps[name]; got.Status != store.StatusCached || got.CachedFrom != first.RunID {
			t.Errorf("%s: got status %s from run %d, want cached from run %d", name, got.Status, got.CachedFrom, first.RunID)
		}
	}
	if got, want := steps["s/c"].Outputs["content"], "one"; got != want {
		t.Errorf("cached outputs: got %v, want %v", got, want)
	}
	arts, err := f.store.StepArtifacts(context.Background(), second.RunID, "s", "c")
	if err != nil || len(arts) != 1 || arts[0].Name != "copy.txt" {
		t.Errorf("cached artifacts: got %v, %v; want copy.txt", arts, err)
	}

	f.write("input.txt", "two\n")
	third := f.run(context.Background(), p, engine.Request{})
	if got, want := f.count.runs.Load(), int64(2); got != want {
		t.Errorf("count runs after an input changed: got %d, want %d", got, want)
	}
	if got, want := f.steps(third.RunID)["s/r"].Outputs["n"], "two"; got != want {
		t.Errorf("r output after change: got %v, want %v", got, want)
	}

	f.run(context.Background(), p, engine.Request{NoCache: true})
	if got, want := f.count.runs.Load(), int64(3); got != want {
		t.Errorf("count runs with NoCache: got %d, want %d", got, want)
	}
}

func TestSecretsAreMasked(t *testing.T) {
	const secret = "hunter2-very-secret"
	t.Setenv("TEST_SECRET_VALUE", secret)
	f := newFixture(t)
	p := f.pipeline(`name: demo
secrets:
  TOKEN: {env: TEST_SECRET_VALUE}
stages:
  - name: s
    steps:
      - name: leak
        secrets: [TOKEN]
        outputs: [out]
        run: |
          echo "plain $TOKEN"
          printf '%s' "$TOKEN" | base64
          echo "url ` + url.QueryEscape(secret+"/x") + `"
          echo "out=$TOKEN" >> "$GANTRY_OUTPUT"
          echo "failing with $TOKEN" >&2
          exit 1
`)
	res := f.run(context.Background(), p, engine.Request{})
	logs := f.allLogs(res.RunID)
	for _, leak := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret))} {
		if strings.Contains(logs, leak) {
			t.Errorf("stored logs leak %q:\n%s", leak, logs)
		}
	}
	if !strings.Contains(logs, "plain ***") {
		t.Errorf("logs lack the masked line:\n%s", logs)
	}
	f.mu.Lock()
	observed := strings.Join(f.logs, "\n")
	f.mu.Unlock()
	if strings.Contains(observed, secret) {
		t.Errorf("observer saw the secret:\n%s", observed)
	}
}

// TestSecretSourcesStayOutOfSteps: the variables secrets are read from
// reach only the steps that list the secret, and then under the secret's
// name.
func TestSecretSourcesStayOutOfSteps(t *testing.T) {
	const pw, token = "cosign-password-value", "token-value-1234"
	t.Setenv("GANTRY_TEST_COSIGN_PW", pw)
	t.Setenv("GANTRY_TEST_TOKEN", token)
	t.Setenv("GANTRY_TEST_PLAIN", "kept")
	f := newFixture(t)
	p := f.pipeline(`name: demo
secrets:
  COSIGN_PASSWORD: {env: GANTRY_TEST_COSIGN_PW}
  GANTRY_TEST_TOKEN: {env: GANTRY_TEST_TOKEN}
stages:
  - name: s
    steps:
      - {name: user, run: env}
      - name: signer
        secrets: [COSIGN_PASSWORD, GANTRY_TEST_TOKEN]
        outputs: [pwlen]
        run: |
          env
          echo "pwlen=$${#COSIGN_PASSWORD}" >> "$GANTRY_OUTPUT"
`)
	res := f.run(context.Background(), p, engine.Request{})
	if res.Status != store.StatusPassed {
		t.Fatalf("status: got %s (%s), want passed", res.Status, res.Message)
	}
	envOf := func(stepName string) map[string][]string {
		lines, err := f.store.Logs(context.Background(), res.RunID, "s", stepName, 0)
		if err != nil {
			t.Fatal(err)
		}
		vars := map[string][]string{}
		for _, l := range lines {
			if k, v, ok := strings.Cut(l.Text, "="); ok {
				vars[k] = append(vars[k], v)
			}
		}
		return vars
	}
	tests := []struct {
		step, name string
		want       []string // nil: absent
	}{
		{"user", "GANTRY_TEST_COSIGN_PW", nil},
		{"user", "COSIGN_PASSWORD", nil},
		{"user", "GANTRY_TEST_TOKEN", nil},
		{"user", "GANTRY_TEST_PLAIN", []string{"kept"}},
		{"signer", "GANTRY_TEST_COSIGN_PW", nil},
		{"signer", "COSIGN_PASSWORD", []string{"***"}},
		{"signer", "GANTRY_TEST_TOKEN", []string{"***"}},
		{"signer", "GANTRY_TEST_PLAIN", []string{"kept"}},
	}
	envs := map[string]map[string][]string{"user": envOf("user"), "signer": envOf("signer")}
	for _, tt := range tests {
		if got := envs[tt.step][tt.name]; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %s: got %q, want %q", tt.step, tt.name, got, tt.want)
		}
	}
	if got, want := f.steps(res.RunID)["s/signer"].Outputs["pwlen"], float64(len(pw)); got != want {
		t.Errorf("signer's COSIGN_PASSWORD length: got %v, want %v", got, want)
	}
	if logs := f.allLogs(res.RunID); strings.Contains(logs, pw) || strings.Contains(logs, token) {
		t.Errorf("logs leak a secret:\n%s", logs)
	}
}

func TestCancelKillsChildren(t *testing.T) {
	f := newFixture(t)
	pidFile := filepath.Join(f.dir, "child.pid")
	p := f.pipeline(`name: demo
stages:
  - name: s
    steps:
      - {name: slow, run: 'sleep 300 & echo $! > child.pid; wait'}
      - {name: later, run: 'echo never', needs: [slow]}
  - name: t
    steps:
      - {name: x, run: 'echo never'}
`)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *engine.Result)
	go func() { done <- f.run(ctx, p, engine.Request{}) }()
	waitFor(t, func() bool { _, err := os.Stat(pidFile); return err == nil })
	time.Sleep(100 * time.Millisecond)
	cancel()
	var res *engine.Result
	select {
	case res = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("run did not stop after cancel")
	}
	if res.Status != store.StatusCancelled {
		t.Errorf("status: got %s, want cancelled", res.Status)
	}
	b, _ := os.ReadFile(pidFile)
	var pid int
	fmt.Sscan(string(b), &pid)
	waitFor(t, func() bool { return syscall.Kill(pid, 0) != nil })
	steps := f.steps(res.RunID)
	if got := steps["s/slow"].Status; got != store.StatusCancelled {
		t.Errorf("slow: got %s, want cancelled", got)
	}
	if got := steps["s/later"].Status; got != store.StatusCancelled {
		t.Errorf("later: got %s, want cancelled", got)
	}
	run, err := f.store.GetRun(context.Background(), res.RunID)
	if err != nil || run.Status != store.StatusCancelled {
		t.Errorf("stored run: got %v %v, want cancelled", run, err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTimeoutAndRetries(t *testing.T) {
	f := newFixture(t)
	p := f.pipeline(`name: demo
stages:
  - name: s
    steps:
      - {name: slow, run: 'sleep 30', timeout: 200ms}
      - name: flaky
        retries: 2
        run: |
          n=$(cat attempts 2>/dev/null || echo 0); n=$((n+1)); echo $n > attempts
          [ "$n" -ge 2 ]
`)
	res := f.run(context.Background(), p, engine.Request{})
	steps := f.steps(res.RunID)
	if got, want := steps["s/slow"].Message, "timed out after 200ms"; got != want {
		t.Errorf("slow: got %q, want %q", got, want)
	}
	if got := steps["s/flaky"]; got.Status != store.StatusPassed || got.Attempt != 2 {
		t.Errorf("flaky: got %s after %d attempts, want passed after 2", got.Status, got.Attempt)
	}
}

func TestArtifacts(t *testing.T) {
	f := newFixture(t)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(f.dir, "escape")); err != nil {
		t.Fatal(err)
	}
	p := f.pipeline(`name: demo
stages:
  - name: s
    steps:
      - {name: report, run: 'mkdir -p out && echo "<testsuites/>" > out/junit.xml', artifacts: [out/*.xml]}
      - {name: sneaky, run: 'true', artifacts: [escape/secret]}
`)
	res := f.run(context.Background(), p, engine.Request{})
	steps := f.steps(res.RunID)
	if got := steps["s/report"].Status; got != store.StatusPassed {
		t.Errorf("report: got %s", got)
	}
	arts, err := f.store.StepArtifacts(context.Background(), res.RunID, "s", "report")
	if err != nil || len(arts) != 1 || arts[0].Name != "out/junit.xml" || arts[0].MediaType != "application/xml" {
		t.Errorf("artifacts: got %+v %v", arts, err)
	}
	if got := steps["s/sneaky"]; got.Status != store.StatusFailed || !strings.Contains(got.Message, "escape") {
		t.Errorf("sneaky: got %s %q, want failed naming the escaping path", got.Status, got.Message)
	}
}

func TestFailureActionNotifies(t *testing.T) {
	var got atomic.Value
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
	}))
	defer srv.Close()
	t.Setenv("TEST_HOOK", srv.URL+"/hook")
	f := newFixture(t, engine.WithNotifier(notify.NewWebhook(notify.WithRetries(3, 10*time.Millisecond))))
	p := f.pipeline(`name: demo
secrets:
  HOOK: {env: TEST_HOOK}
notify:
  slack: {webhook: "${secrets.HOOK}"}
stages:
  - name: security
    steps:
      - {name: scan, run: 'exit 1'}
    on_failure: [{notify: slack}]
`)
	res := f.run(context.Background(), p, engine.Request{})
	if res.Status != store.StatusFailed {
		t.Fatalf("status: got %s", res.Status)
	}
	body, _ := got.Load().(string)
	var msg struct {
		Text   string           `json:"text"`
		Blocks []map[string]any `json:"blocks"`
	}
	if err := json.Unmarshal([]byte(body), &msg); err != nil {
		t.Fatalf("payload %q: %v", body, err)
	}
	if !strings.Contains(msg.Text, "stage security failed") || len(msg.Blocks) < 3 {
		t.Errorf("payload: got %s", body)
	}
	// The failed step is named with why it failed (its recorded message).
	steps, err := f.store.Steps(context.Background(), res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	why, _ := json.Marshal("scan: " + steps[0].Message)
	if steps[0].Message == "" || !strings.Contains(body, strings.Trim(string(why), `"`)) {
		t.Errorf("payload does not say why scan failed (%q): %s", steps[0].Message, body)
	}
	if got, want := calls.Load(), int64(2); got != want {
		t.Errorf("webhook calls: got %d, want %d (one retry)", got, want)
	}
	events, err := f.store.Events(context.Background(), res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range events {
		if e.Type == "failure_action" && e.Data["ok"] == true {
			found = true
		}
	}
	if !found {
		t.Errorf("no successful failure_action event in %+v", events)
	}
}

func TestWhenApprovalAndSelection(t *testing.T) {
	f := newFixture(t)
	p := f.pipeline(`name: demo
stages:
  - name: one
    steps: [{name: a, run: 'true'}]
  - name: staging
    when: branch == "main" && stages.one.passed
    steps: [{name: b, run: 'true'}]
  - name: prod
    approval: {required: true, roles: [oncall-lead]}
    steps: [{name: c, run: 'true'}]
`)
	res := f.run(context.Background(), p, engine.Request{Git: step.Git{Event: "push", Branch: "feature/x"}})
	if res.Status != store.StatusWaiting {
		t.Fatalf("status: got %s, want waiting", res.Status)
	}
	stages, _ := f.store.Stages(context.Background(), res.RunID)
	byName := map[string]store.Stage{}
	for _, s := range stages {
		byName[s.Name] = s
	}
	if got := byName["staging"]; got.Status != store.StatusSkipped || !strings.Contains(got.Message, "is false") {
		t.Errorf("staging on a feature branch: got %s %q, want skipped by when", got.Status, got.Message)
	}
	if got := byName["prod"].Status; got != store.StatusWaiting {
		t.Errorf("prod: got %s, want waiting", got)
	}
	approvals, _ := f.store.Approvals(context.Background(), res.RunID)
	if len(approvals) != 1 || approvals[0].RequestedRoles != "oncall-lead" {
		t.Errorf("approvals: got %+v", approvals)
	}

	audit, err := f.store.AuditLog(context.Background(), 10)
	if err != nil || len(audit) != 1 || audit[0].Action != "run.start" || audit[0].Subject != fmt.Sprintf("run %d", res.RunID) {
		t.Errorf("audit log: got %+v %v, want one run.start entry", audit, err)
	}

	only := f.run(context.Background(), p, engine.Request{Stages: []string{"one"}})
	if only.Status != store.StatusPassed {
		t.Errorf("--stage one: got %s", only.Status)
	}
	if _, err := f.eng.Run(context.Background(), p, engine.Request{Dir: f.dir, From: "nope"}); err == nil {
		t.Error("--from with an unknown stage must fail")
	}
}
