package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/serve"
	"github.com/gantry-ci/gantry/internal/store"
)

// rollerFixture is a runtime.Roller with fixed answers that records the
// verbs reaching gantry serve. A stand-in for the environment
// controller's rollouts, which are built on another branch (envctl):
// these tests are about the commands — the role check, the audit, what
// is sent and what is printed. "none" has no rollout; "done" is Healthy
// and refuses promote; "bad" is Degraded.
type rollerFixture struct {
	mu    sync.Mutex
	calls []string
}

func (f *rollerFixture) record(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *rollerFixture) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

const rolloutDigest = "sha256:4444444444444444444444444444444444444444444444444444444444444444"

func fixtureRollout(env string, phase runtime.RolloutPhase, step runtime.RolloutStep) runtime.RolloutStatus {
	return runtime.RolloutStatus{Environment: env, Phase: phase, Step: step, Stable: 3, Desired: 4, Digest: rolloutDigest,
		ActiveURL: "http://127.0.0.1:30081", PreviewURL: "http://127.0.0.1:30082"}
}

func degradedRollout(env string) runtime.RolloutStatus {
	st := fixtureRollout(env, runtime.RolloutDegraded, runtime.StepAborted)
	st.Message = "prePromotion analysis failed"
	st.AbortedBy = "gantry"
	st.Analyses = []runtime.AnalysisStatus{{Kind: "prePromotion", Revision: 4, Phase: analysis.PhaseFailed, Runs: []*analysis.Run{{
		Template: "payment-service-analysis", Phase: analysis.PhaseFailed,
		Metrics: []analysis.MetricResult{{Name: "p99-latency", Phase: analysis.PhaseFailed, Count: 2, Failed: 2,
			Measurements: []analysis.Measurement{{Phase: analysis.PhaseFailed, Value: "0.412"}, {Phase: analysis.PhaseFailed, Value: "0.455"}}}}}}}}
	return st
}

func (f *rollerFixture) state(env string) (runtime.RolloutStatus, error) {
	switch env {
	case "none":
		return runtime.RolloutStatus{}, fmt.Errorf("environment %s: %w", env, runtime.ErrNoRollout)
	case "done":
		return fixtureRollout(env, runtime.RolloutHealthy, runtime.StepCompleted), nil
	case "bad":
		return degradedRollout(env), nil
	}
	return fixtureRollout(env, runtime.RolloutPaused, runtime.StepPaused), nil
}

func (f *rollerFixture) Rollout(context.Context, runtime.RolloutRequest) (runtime.RolloutStatus, error) {
	return runtime.RolloutStatus{}, errors.New("not in this test")
}
func (f *rollerFixture) Promote(_ context.Context, env string, full bool, who string) (runtime.RolloutStatus, error) {
	f.record(fmt.Sprintf("promote %s full=%v who-set=%v", env, full, who != ""))
	if _, err := f.state(env); err != nil {
		return runtime.RolloutStatus{}, err
	}
	if env == "done" {
		return runtime.RolloutStatus{}, fmt.Errorf("promote %s: step completed: %w", env, runtime.ErrRolloutState)
	}
	return fixtureRollout(env, runtime.RolloutProgressing, runtime.StepPostPromotion), nil
}
func (f *rollerFixture) Abort(_ context.Context, env, who, reason string) (runtime.RolloutStatus, error) {
	f.record(fmt.Sprintf("abort %s reason=%s who-set=%v", env, reason, who != ""))
	return degradedRollout(env), nil
}
func (f *rollerFixture) Retry(_ context.Context, env, who string) (runtime.RolloutStatus, error) {
	f.record(fmt.Sprintf("retry %s who-set=%v", env, who != ""))
	return fixtureRollout(env, runtime.RolloutProgressing, runtime.StepPreview), nil
}
func (f *rollerFixture) Undo(_ context.Context, env string, to int, who string) (runtime.RolloutStatus, error) {
	f.record(fmt.Sprintf("undo %s to=%d who-set=%v", env, to, who != ""))
	return fixtureRollout(env, runtime.RolloutProgressing, runtime.StepPreview), nil
}
func (f *rollerFixture) RolloutStatus(_ context.Context, env string) (runtime.RolloutStatus, error) {
	return f.state(env)
}

// Watch goes through a pause and two measurements to Healthy, or (for
// "bad") to Degraded.
func (f *rollerFixture) Watch(_ context.Context, env string, fn func(runtime.RolloutStatus) bool) error {
	pre := fixtureRollout(env, runtime.RolloutProgressing, runtime.StepPrePromotion)
	measured := pre
	measured.Analyses = []runtime.AnalysisStatus{{Kind: "prePromotion", Revision: 4, Phase: analysis.PhaseRunning, Runs: []*analysis.Run{{
		Template: "payment-service-analysis", Phase: analysis.PhaseRunning,
		Metrics: []analysis.MetricResult{{Name: "p99-latency", Phase: analysis.PhaseRunning, Count: 1,
			Measurements: []analysis.Measurement{{Phase: analysis.PhaseSuccessful, Value: "0.120"}}}}}}}}
	last := fixtureRollout(env, runtime.RolloutHealthy, runtime.StepCompleted)
	script := []runtime.RolloutStatus{pre, measured, fixtureRollout(env, runtime.RolloutPaused, runtime.StepPaused), last}
	if env == "bad" {
		script = []runtime.RolloutStatus{pre, degradedRollout(env)}
	}
	for _, st := range script {
		if !fn(st) {
			return nil
		}
	}
	return nil
}

// TestRolloutCommands runs the rollout verbs against a serve process
// whose roller has fixed answers: the caller holds oncall-lead, which
// guards prod in the repository's pipeline, and not release-manager,
// which guards staging.
func TestRolloutCommands(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	repo := t.TempDir()
	writeFile(t, filepath.Join(dir, "approvers.yaml"), "oncall-lead: ["+me.Username+"]\nrelease-manager: [somebody-else]\n")
	writeFile(t, filepath.Join(repo, ".gantry", "pipeline.yaml"), `name: pay
stages:
  - name: promote-prod
    approval: {required: true, roles: [oncall-lead]}
    steps:
      - {name: bluegreen, uses: blue-green, with: {environment: prod}}
  - name: promote-staging
    approval: {required: true, roles: [release-manager]}
    steps:
      - {name: bluegreen, uses: blue-green, with: {environment: staging}}
  - name: promote-none
    steps:
      - {name: bluegreen, uses: blue-green, with: {environment: none}}
`)
	f := &rollerFixture{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() {
		err := serve.Run(ctx, serve.Config{StateDir: dir, Deployer: &fixture{}, Roller: f})
		if err != nil {
			t.Error(err)
		}
		done <- Code(err)
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitServing(t, dir, done)

	tests := []struct {
		name     string
		args     []string
		code     int
		want     []string // in stdout, or stderr when the exit is not 0
		wantCall string   // the roller's last call ("" none)
	}{
		{"promote", []string{"rollout", "promote", "prod", "--full", "--dir", repo}, ExitOK,
			[]string{"prod: promote by " + me.Username + ": Progressing, step postPromotion (revision 3 → 4)"}, "promote prod full=true who-set=true"},
		{"promote without the role", []string{"rollout", "promote", "staging", "--dir", repo}, ExitForbidden,
			[]string{"holds none of the roles release-manager", "stage promote-staging"}, ""},
		{"abort", []string{"rollout", "abort", "prod", "--reason", "latency", "--dir", repo}, ExitOK,
			[]string{"prod: abort by " + me.Username + ": Degraded, step aborted"}, "abort prod reason=latency who-set=true"},
		{"abort without a reason", []string{"rollout", "abort", "prod", "--dir", repo}, ExitOK, nil, "abort prod reason=aborted by hand who-set=true"},
		{"retry", []string{"rollout", "retry", "prod", "--dir", repo}, ExitOK, []string{"prod: retry by"}, "retry prod who-set=true"},
		{"undo to a revision", []string{"rollout", "undo", "prod", "--to-revision", "2", "--dir", repo}, ExitOK, []string{"prod: undo by"}, "undo prod to=2 who-set=true"},
		{"undo to a negative revision", []string{"rollout", "undo", "prod", "--to-revision", "-1", "--dir", repo}, ExitUsage, []string{"--to-revision must be"}, ""},
		{"--role where the pipeline names the roles", []string{"rollout", "promote", "prod", "--role", "anyone", "--dir", repo}, ExitUsage, []string{"--role is only for environments no stage guards"}, ""},
		{"--role the caller lacks", []string{"rollout", "promote", "elsewhere", "--role", "release-manager", "--dir", repo}, ExitForbidden, []string{"holds none of the roles release-manager (from --role)"}, ""},
		{"unguarded environment", []string{"rollout", "promote", "unguarded", "--dir", repo}, ExitOK, []string{"unguarded: promote by"}, "promote unguarded full=false who-set=true"},
		{"promote without a rollout", []string{"rollout", "promote", "none", "--dir", repo}, ExitUsage, []string{"no rollout in this environment"}, "promote none full=false who-set=true"},
		{"promote a completed rollout", []string{"rollout", "promote", "done", "--dir", repo}, ExitUsage, []string{"not allowed in the rollout's current state"}, "promote done full=false who-set=true"},
		{"status", []string{"rollout", "status", "prod"}, ExitOK, []string{"Phase:", "Paused", "stable 3, desired 4", "http://127.0.0.1:30082"}, ""},
		{"status of a degraded rollout", []string{"rollout", "status", "bad"}, ExitFailed, nil, ""},
		{"status -o json", []string{"rollout", "status", "prod", "-o", "json"}, ExitOK, []string{`"phase": "Paused"`, `"previewURL": "http://127.0.0.1:30082"`}, ""},
		{"status --watch", []string{"rollout", "status", "prod", "--watch"}, ExitOK, []string{
			"prod: Progressing, step prePromotion (revision 3 → 4)",
			"analysis prePromotion payment-service-analysis/p99-latency measurement 1: Successful value 0.120",
			"prod: paused, waiting for manual promotion; to promote: gantry rollout promote prod",
			"prod: Healthy, step completed"}, ""},
		{"status --watch degraded", []string{"rollout", "status", "bad", "--watch"}, ExitFailed, []string{
			"bad: rollout Degraded: prePromotion analysis failed", "payment-service-analysis/p99-latency Failed (2 failed of 2), measured 0.412, 0.455"}, ""},
		{"status --watch -o json", []string{"rollout", "status", "prod", "--watch", "-o", "json"}, ExitUsage, []string{"--watch prints text"}, ""},
		{"history", []string{"rollout", "history", "prod"}, ExitOK, []string{"1         superseded  sha256:111111111111  #12  ana"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.Calls())
			out, errOut, code := gantry(t, dir, tt.args...)
			text := out
			if tt.code != ExitOK {
				text = errOut
			}
			if code != tt.code {
				t.Errorf("exit: got %d, want %d (stdout %q, stderr %q)", code, tt.code, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("output:\n%s\nwant it to contain %q", text, w)
				}
			}
			calls := f.Calls()[before:]
			switch {
			case tt.wantCall == "" && len(calls) > 0:
				t.Errorf("the roller got %q, want no call", calls)
			case tt.wantCall != "" && (len(calls) != 1 || calls[0] != tt.wantCall):
				t.Errorf("the roller got %q, want %q", calls, tt.wantCall)
			}
		})
	}

	st, err := store.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log, err := st.AuditLog(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		got = append(got, e.Action+" "+e.Subject)
	}
	slices.Reverse(got)
	want := []string{
		"rollout.promote environment prod: rollout promote",
		"rollout.refused environment staging: rollout promote",
		"rollout.abort environment prod: rollout abort",
		"rollout.abort environment prod: rollout abort",
		"rollout.retry environment prod: rollout retry",
		"rollout.undo environment prod: rollout undo",
		"rollout.refused environment elsewhere: rollout promote",
		"rollout.promote environment unguarded: rollout promote",
		"rollout.promote environment none: rollout promote",
		"rollout.promote environment done: rollout promote",
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit log:\n got %q\nwant %q", got, want)
	}
	for _, e := range log {
		if e.Actor != me.Username {
			t.Errorf("audit entry %+v: actor %q, want %q", e, e.Actor, me.Username)
		}
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestApprovalShowsEvidence: a run waiting for the approval of its
// promote stage shows the approver the image digest, the stage verdicts
// and the results of the staging stage, at the end of gantry run and in
// gantry show; once decided, show keeps what the decider was shown.
func TestApprovalShowsEvidence(t *testing.T) {
	repo := gitRepo(t, `name: brief
stages:
  - name: build
    steps:
      - name: push
        outputs: [digest]
        run: 'echo "digest=sha256:`+strings.Repeat("d", 64)+`" >> "$GANTRY_OUTPUT"'
  - name: deploy-staging
    steps:
      - {name: smoke, run: 'echo smoke ok'}
  - name: promote-prod
    approval: {required: true, roles: [oncall-lead]}
    steps:
      - {name: promote, run: 'echo promoted'}
`)
	state := t.TempDir()
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(state, "approvers.yaml"), "oncall-lead: ["+me.Username+"]\n")
	digest := "sha256:" + strings.Repeat("d", 64)

	out, code := runCLIIn(t, state, "run", "--dir", repo, "--progress", "plain")
	if code != ExitWaiting {
		t.Fatalf("run: exit %d, want %d\n%s", code, ExitWaiting, out)
	}
	brief := []string{"image  " + digest, "evidence  build passed", "evidence  deploy-staging passed", "results of deploy-staging  smoke passed"}
	for _, want := range brief {
		if !containsSpaced(out, want) {
			t.Errorf("run's output lacks %q:\n%s", want, out)
		}
	}
	out, code = runCLIIn(t, state, "show", "1")
	if code != 0 {
		t.Fatalf("show: exit %d\n%s", code, out)
	}
	for _, want := range append([]string{"approval of promote-prod  pending, by role oncall-lead", "approve  gantry approve 1 --stage promote-prod"}, brief...) {
		if !containsSpaced(out, want) {
			t.Errorf("show's output lacks %q:\n%s", want, out)
		}
	}
	if out, code := runCLIIn(t, state, "approve", "1", "--dir", repo, "--comment", "looks good"); code != 0 {
		t.Fatalf("approve: exit %d\n%s", code, out)
	}
	out, _ = runCLIIn(t, state, "show", "1", "-o", "json")
	for _, want := range []string{`"status": "approved"`, `"digest": "` + digest + `"`, `"stage": "deploy-staging"`, `"comment": "looks good"`} {
		if !strings.Contains(out, want) {
			t.Errorf("show -o json lacks %s:\n%s", want, out)
		}
	}
}

// containsSpaced reports whether s holds want with each run of spaces
// matching any run of one or more spaces (tabwriter padding).
func containsSpaced(s, want string) bool {
	squash := func(x string) string { return strings.Join(strings.Fields(x), " ") }
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(squash(line), squash(want)) {
			return true
		}
	}
	return false
}
