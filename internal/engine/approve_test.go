package engine_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/store"
	"github.com/gantry-ci/gantry/internal/workspace"
)

func gitT(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func commitFile(t *testing.T, repo, name, content, msg string) {
	t.Helper()
	path := filepath.Join(repo, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	gitT(t, repo, "add", name)
	gitT(t, repo, "commit", "-q", "-m", msg)
}

const approvalPipeline = `name: gated
stages:
  - name: build
    steps:
      - {name: compile, run: 'cat version.txt > "$MARKS/built"'}
  - name: prod
    approval: {required: true, roles: [oncall-lead]}
    steps:
      - {name: deploy, run: 'cat version.txt >> "$MARKS/deployed"'}
`

// gatedRepo is a repository whose main branch names alice oncall-lead,
// checked out on a feature branch that adds mallory.
func gatedRepo(t *testing.T) string {
	t.Helper()
	repo := t.TempDir()
	gitT(t, repo, "init", "-q", "-b", "main")
	commitFile(t, repo, spec.ApproversPath, "oncall-lead: [alice]\n", "approvers")
	gitT(t, repo, "checkout", "-q", "-b", "feature")
	commitFile(t, repo, spec.ApproversPath, "oncall-lead: [alice, mallory]\n", "grant myself")
	commitFile(t, repo, "version.txt", "v1\n", "v1")
	return repo
}

// startGated runs the gated pipeline in its own store and engine, which
// are closed when it returns, as a gantry process ends.
func startGated(t *testing.T, state, repo, pipeline string) *engine.Result {
	t.Helper()
	ctx := context.Background()
	st, eng := engineOn(t, state)
	defer st.Close()
	p, err := spec.Parse(filepath.Join(repo, spec.DefaultPath), []byte(pipeline), eng.Registry())
	if err != nil {
		t.Fatal(err)
	}
	g, err := workspace.Describe(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	g.Event = "push"
	res, err := eng.Run(ctx, p, engine.Request{Dir: repo, Git: g})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestApprovalAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	marks := t.TempDir()
	t.Setenv("MARKS", marks)
	repo, state := gatedRepo(t), t.TempDir()

	first := startGated(t, state, repo, approvalPipeline)
	if first.Status != store.StatusWaiting || first.Waiting == nil || first.Waiting.Stage != "prod" {
		t.Fatalf("first process: got %+v, want waiting for prod", first)
	}
	// The working tree moves on while the run waits.
	commitFile(t, repo, "version.txt", "v2\n", "v2")

	// A second process decides and resumes.
	st, eng := engineOn(t, state)
	approvers, source, err := engine.LoadApprovers(ctx, repo, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(source, "refs/heads/main:") {
		t.Errorf("approvers read from %q, want the default branch", source)
	}
	decide := func(who string, approve bool) error {
		_, err := eng.Decide(ctx, engine.DecideRequest{RunID: first.RunID, Approve: approve, Comment: "ship it",
			Who: engine.Identity{Name: who, Via: "test"}, Approvers: approvers, Source: source})
		return err
	}
	if err := decide("mallory", true); !errors.Is(err, engine.ErrForbidden) {
		t.Fatalf("mallory (oncall-lead only on her own branch) approves: error %v, want ErrForbidden", err)
	}
	audit, err := st.AuditLog(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(audit, func(e store.AuditEntry) bool { return e.Action == "approval.refused" && e.Actor == "mallory" }) {
		t.Errorf("audit log %+v has no refusal of mallory", audit)
	}
	if err := decide("alice", true); err != nil {
		t.Fatal(err)
	}
	aps, err := st.Approvals(ctx, first.RunID)
	if err != nil || len(aps) != 1 {
		t.Fatalf("approvals: %+v, %v", aps, err)
	}
	if a := aps[0]; a.Status != store.ApprovalApproved || a.Actor != "alice" || a.Comment != "ship it" ||
		!strings.Contains(a.Evidence, `"stage":"build","status":"passed"`) || a.Decided.IsZero() {
		t.Errorf("decision: got %+v, want approved by alice with the build verdict as evidence", a)
	}
	if err := decide("alice", true); !errors.Is(err, engine.ErrNoPendingApproval) {
		t.Errorf("second decision: error %v, want ErrNoPendingApproval", err)
	}

	res, err := eng.Resume(ctx, first.RunID, engine.ResumeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != store.StatusPassed {
		t.Fatalf("resumed run: got %+v, want passed", res)
	}
	if b, _ := os.ReadFile(filepath.Join(marks, "deployed")); string(b) != "v1\n" {
		t.Errorf("deploy saw version %q, want v1 (the run's commit, not the working tree's v2)", b)
	}
	if b, _ := os.ReadFile(filepath.Join(marks, "built")); string(b) != "v1\n" {
		t.Errorf("build output %q, want v1 written once", b)
	}
	if wts := gitT(t, repo, "worktree", "list"); strings.Count(wts, "\n") != 0 {
		t.Errorf("worktrees left after the run:\n%s", wts)
	}
}

func TestApprovalRejectedAndTimeout(t *testing.T) {
	ctx := context.Background()
	t.Setenv("MARKS", t.TempDir())
	repo := gatedRepo(t)

	t.Run("rejected", func(t *testing.T) {
		state := t.TempDir()
		first := startGated(t, state, repo, approvalPipeline)
		st, eng := engineOn(t, state)
		approvers, source, err := engine.LoadApprovers(ctx, repo, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eng.Decide(ctx, engine.DecideRequest{RunID: first.RunID, Approve: false, Comment: "not on a friday",
			Who: engine.Identity{Name: "alice", Via: "test"}, Approvers: approvers, Source: source}); err != nil {
			t.Fatal(err)
		}
		run, err := st.GetRun(ctx, first.RunID)
		if err != nil || run.Status != store.StatusRejected || !strings.Contains(run.Message, "not on a friday") {
			t.Errorf("run after reject: %+v, %v; want rejected with the reason", run, err)
		}
		res, err := eng.Resume(ctx, first.RunID, engine.ResumeRequest{})
		if err != nil || res.Status != store.StatusRejected {
			t.Errorf("resume of a rejected run: %+v, %v; want it rejected", res, err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		state := t.TempDir()
		first := startGated(t, state, repo, strings.Replace(approvalPipeline, "roles: [oncall-lead]}", "roles: [oncall-lead], timeout: 1ms}", 1))
		if first.Status != store.StatusWaiting || first.Waiting.Deadline.IsZero() {
			t.Fatalf("first: %+v, want waiting with a deadline", first)
		}
		st, eng := engineOn(t, state)
		res, err := eng.Resume(ctx, first.RunID, engine.ResumeRequest{})
		if err != nil || res.Status != store.StatusRejected {
			t.Fatalf("resume after the deadline: %+v, %v; want rejected", res, err)
		}
		aps, _ := st.Approvals(ctx, first.RunID)
		if len(aps) != 1 || aps[0].Status != store.ApprovalRejected || !strings.Contains(aps[0].Comment, "timed out") {
			t.Errorf("approval: %+v, want rejected as timed out", aps)
		}
	})
}

// TestApprovedStageSeesTheApproval: steps of and after an approved stage
// see the granted approval in Env.Run, which a sign step attests.
func TestApprovedStageSeesTheApproval(t *testing.T) {
	ctx := context.Background()
	views := &viewKind{}
	f := newFixture(t, engine.WithKinds([]step.Kind{views.kind()}))
	p := f.pipeline(`name: demo
stages:
  - name: build
    steps: [{name: a, run: 'true'}]
  - name: prod
    approval: {required: true}
    steps: [{name: sign, uses: view}]
`)
	res := f.run(ctx, p, engine.Request{})
	if res.Status != store.StatusWaiting {
		t.Fatalf("run: got %s, want waiting", res.Status)
	}
	if _, err := f.eng.Decide(ctx, engine.DecideRequest{RunID: res.RunID, Approve: true, Comment: "go",
		Who: engine.Identity{Name: "bob", Via: "test"}}); err != nil {
		t.Fatal(err)
	}
	again, err := f.eng.Resume(ctx, res.RunID, engine.ResumeRequest{})
	if err != nil || again.Status != store.StatusPassed {
		t.Fatalf("resume: %+v, %v; want passed", again, err)
	}
	if len(views.seen) != 1 {
		t.Fatalf("view step ran %d times, want 1", len(views.seen))
	}
	got := views.seen[0].Approvals
	if len(got) != 1 || got[0].Stage != "prod" || got[0].Actor != "bob" || got[0].Comment != "go" || got[0].Decided.IsZero() {
		t.Errorf("Env.Run().Approvals: got %+v, want prod approved by bob", got)
	}
}

func TestLoadApprovers(t *testing.T) {
	ctx := context.Background()
	repo := t.TempDir()
	gitT(t, repo, "init", "-q", "-b", "main")
	commitFile(t, repo, spec.ApproversPath, "oncall-lead:\n  - alice\n  - \"bob smith\"\n", "bad approvers")
	gitT(t, repo, "checkout", "-q", "-b", "feature")
	commitFile(t, repo, spec.ApproversPath, "oncall-lead: [mallory]\n", "fix them on a branch")

	t.Run("bad file on the default branch", func(t *testing.T) {
		_, _, err := engine.LoadApprovers(ctx, repo, "")
		if err == nil || !strings.Contains(err.Error(), "refs/heads/main:.gantry/approvers.yaml:3:5:") {
			t.Errorf("error %v, want it located in the default branch's file", err)
		}
	})
	t.Run("the state dir's file wins", func(t *testing.T) {
		state := t.TempDir()
		if err := os.WriteFile(filepath.Join(state, "approvers.yaml"), []byte("oncall-lead: [carol]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		a, source, err := engine.LoadApprovers(ctx, repo, state)
		if err != nil || source != filepath.Join(state, "approvers.yaml") || !a.Holds("carol", []string{"oncall-lead"}) {
			t.Errorf("got %v from %s, %v; want carol from the state dir", a, source, err)
		}
	})
	t.Run("no default branch", func(t *testing.T) {
		lone := t.TempDir()
		gitT(t, lone, "init", "-q", "-b", "topic")
		commitFile(t, lone, "x", "x", "x")
		if _, _, err := engine.LoadApprovers(ctx, lone, ""); !errors.Is(err, engine.ErrNoDefaultBranch) {
			t.Errorf("error %v, want ErrNoDefaultBranch", err)
		}
	})
}

// TestResumeInSubdirectory: a run of a pipeline in a subdirectory of its
// repository (gantry's own examples/payment-service) resumes, in a
// worktree of the run's commit, in that same subdirectory.
func TestResumeInSubdirectory(t *testing.T) {
	ctx := context.Background()
	marks := t.TempDir()
	t.Setenv("MARKS", marks)
	repo, state := gatedRepo(t), t.TempDir()
	commitFile(t, repo, "svc/version.txt", "svc v1\n", "svc v1")
	svc := filepath.Join(repo, "svc")

	first := startGated(t, state, svc, approvalPipeline)
	if first.Status != store.StatusWaiting {
		t.Fatalf("first process: got %+v, want waiting", first)
	}
	// The working tree moves on: the resumed run needs a worktree.
	commitFile(t, repo, "svc/version.txt", "svc v2\n", "svc v2")

	st, eng := engineOn(t, state)
	approvers, source, err := engine.LoadApprovers(ctx, svc, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Decide(ctx, engine.DecideRequest{RunID: first.RunID, Approve: true, Who: engine.Identity{Name: "alice", Via: "test"},
		Approvers: approvers, Source: source}); err != nil {
		t.Fatal(err)
	}
	res, err := eng.Resume(ctx, first.RunID, engine.ResumeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != store.StatusPassed {
		steps, _ := st.Steps(ctx, first.RunID)
		t.Fatalf("resumed run: got %+v, want passed; steps %+v", res, steps)
	}
	if b, _ := os.ReadFile(filepath.Join(marks, "deployed")); string(b) != "svc v1\n" {
		t.Errorf("deploy saw %q, want the subdirectory's version of the run's commit, svc v1", b)
	}
}
