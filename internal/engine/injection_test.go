package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/store"
)

// maliciousBranches are branch names git accepts that run a command when
// pasted into shell code. Each creates the file "pwned" in the workspace.
var maliciousBranches = []string{
	"x$(touch${IFS}pwned)",
	"x`touch${IFS}pwned`",
	"x;touch${IFS}pwned",
}

// TestScriptNeverRendersPipelineValues: even a pipeline that skipped
// validation (built in code) cannot get a branch name into a run: script;
// the engine refuses the step instead of running the pasted text.
func TestScriptNeverRendersPipelineValues(t *testing.T) {
	for _, branch := range maliciousBranches {
		t.Run(branch, func(t *testing.T) {
			f := newFixture(t)
			p := f.pipeline("name: demo\nstages:\n  - name: s\n    steps:\n      - {name: a, run: 'echo placeholder'}\n")
			p.Stages[0].Steps[0].Run = `echo "building ${git.branch}"`
			res := f.run(context.Background(), p, engine.Request{
				Git: step.Git{SHA: "0123456789abcdef", Branch: branch, Event: "push"},
			})
			if _, err := os.Stat(filepath.Join(f.dir, "pwned")); err == nil {
				t.Fatalf("the branch name %q ran a command", branch)
			}
			if got, want := res.Status, store.StatusFailed; got != want {
				t.Errorf("status: got %s, want %s", got, want)
			}
			if got, want := f.steps(res.RunID)["s/a"].Message, "${...} in run:"; !strings.Contains(got, want) {
				t.Errorf("step message: got %q, want it to contain %q", got, want)
			}
		})
	}
}

// TestScriptGetsValuesThroughEnv: the form validation asks for, env: plus
// "$VAR" in the script, hands the branch name over as data.
func TestScriptGetsValuesThroughEnv(t *testing.T) {
	for _, branch := range maliciousBranches {
		t.Run(branch, func(t *testing.T) {
			f := newFixture(t)
			p := f.pipeline(`name: demo
stages:
  - name: s
    steps:
      - name: a
        env: {BRANCH: "${git.branch}"}
        outputs: [branch]
        run: |
          echo "building $BRANCH"
          printf 'branch=%s\n' "$BRANCH" >> "$GANTRY_OUTPUT"
`)
			res := f.run(context.Background(), p, engine.Request{
				Git: step.Git{SHA: "0123456789abcdef", Branch: branch, Event: "push"},
			})
			if _, err := os.Stat(filepath.Join(f.dir, "pwned")); err == nil {
				t.Fatalf("the branch name %q ran a command", branch)
			}
			if got, want := res.Status, store.StatusPassed; got != want {
				t.Fatalf("status: got %s (%s), want %s", got, res.Message, want)
			}
			if got, want := f.steps(res.RunID)["s/a"].Outputs["branch"], branch; got != want {
				t.Errorf("branch seen by the script: got %q, want %q", got, want)
			}
		})
	}
}
