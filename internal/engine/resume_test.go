package engine_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/artifact"
	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/shell"
	"github.com/gantry-ci/gantry/internal/store"
)

// resumeHelperEnv makes TestResumeHelper run a pipeline in a child process
// that the test then kills with SIGKILL.
const resumeHelperEnv = "GANTRY_ENGINE_RESUME_HELPER"

// crashPipeline: step one counts its runs; step two counts its runs and,
// the first time only, records its process group and sleeps until killed.
const crashPipeline = `name: crash
stages:
  - name: build
    steps:
      - name: one
        run: 'n=$(cat "$MARKS/one" 2>/dev/null || echo 0); echo $((n+1)) > "$MARKS/one"; echo one done'
      - name: two
        needs: [one]
        run: |
          n=$(cat "$MARKS/two" 2>/dev/null || echo 0)
          echo $((n+1)) > "$MARKS/two"
          if [ "$n" = 0 ]; then echo $$ > "$MARKS/two.pid"; sleep 300; fi
          echo two done
  - name: after
    steps:
      - {name: three, run: 'echo three'}
`

// engineOn opens the store and an engine on state, as a gantry process
// would.
func engineOn(t *testing.T, state string, opts ...engine.Option) (*store.Store, *engine.Engine) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(state, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	arts, err := artifact.New(filepath.Join(state, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(st, arts, state, append([]engine.Option{engine.WithScriptKind(shell.Kind), engine.WithJobs(2)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return st, eng
}

// TestResumeHelper is the child process of TestResumeAfterKillNine.
func TestResumeHelper(t *testing.T) {
	state := os.Getenv(resumeHelperEnv)
	if state == "" {
		t.Skip("helper process for TestResumeAfterKillNine")
	}
	_, eng := engineOn(t, state)
	p, err := spec.Parse("pipeline.yaml", []byte(crashPipeline), eng.Registry())
	if err != nil {
		t.Fatal(err)
	}
	_, err = eng.Run(context.Background(), p, engine.Request{Dir: os.Getenv("WORKDIR"),
		Git: step.Git{SHA: "0123456789abcdef0123456789abcdef01234567", Branch: "main", Event: "push"}})
	t.Fatalf("the run ended (%v) instead of being killed", err)
}

func readCount(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestResumeAfterKillNine(t *testing.T) {
	if os.Getenv(resumeHelperEnv) != "" {
		t.Skip("in the helper process")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a safety net, not an assertion
	defer cancel()
	state, work, marks := t.TempDir(), t.TempDir(), t.TempDir()
	t.Setenv("MARKS", marks)

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestResumeHelper$")
	cmd.Env = append(os.Environ(), resumeHelperEnv+"="+state, "WORKDIR="+work)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(marks, "two.pid")
	waitFor(t, func() bool { b, err := os.ReadFile(pidFile); return err == nil && strings.HasSuffix(string(b), "\n") })
	// The killed gantry leaves step two's process group behind; end it
	// when the test is done (ending leftovers is the process-group work).
	pgid, err := strconv.Atoi(strings.TrimSpace(string(must(os.ReadFile(pidFile)))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("helper was not killed: %v\n%s", cmd.ProcessState, out.String())
	}

	// Another process (here: a new store and engine) opens the state dir:
	// the run is interrupted, and it resumes.
	st, eng := engineOn(t, state)
	runs, err := st.ListRuns(ctx, store.ListOptions{})
	if err != nil || len(runs) != 1 || runs[0].Status != store.StatusInterrupted {
		t.Fatalf("runs after kill -9: %+v, %v; want one interrupted", runs, err)
	}
	id := runs[0].ID
	res, err := eng.Resume(ctx, id, engine.ResumeRequest{Dir: work})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != store.StatusPassed || res.RunID != id {
		t.Fatalf("resumed run: got %+v, want run %d passed", res, id)
	}
	if got := readCount(t, filepath.Join(marks, "one")); got != 1 {
		t.Errorf("step one ran %d times, want 1 (not rerun)", got)
	}
	if got := readCount(t, filepath.Join(marks, "two")); got != 2 {
		t.Errorf("step two ran %d times, want 2 (rerun after the kill)", got)
	}
	steps, err := st.Steps(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]store.Status{}
	for _, s := range steps {
		got[s.Stage+"/"+s.Name] = s.Status
	}
	for name, want := range map[string]store.Status{"build/one": store.StatusPassed, "build/two": store.StatusPassed, "after/three": store.StatusPassed} {
		if got[name] != want {
			t.Errorf("%s: got %s, want %s", name, got[name], want)
		}
	}
	if _, err := eng.Resume(ctx, id, engine.ResumeRequest{Dir: work}); !errors.Is(err, engine.ErrNotResumable) {
		t.Errorf("resuming a passed run: error %v, want ErrNotResumable", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestResumeCancelledRun: Ctrl-C in stage one; the resumed run reruns the
// cancelled step and runs the stage that never started.
func TestResumeCancelledRun(t *testing.T) {
	marks := t.TempDir()
	t.Setenv("MARKS", marks)
	f := newFixture(t)
	p := f.pipeline(`name: cancel
stages:
  - name: one
    steps:
      - name: slow
        run: |
          n=$(cat "$MARKS/slow" 2>/dev/null || echo 0)
          echo $((n+1)) > "$MARKS/slow"
          if [ "$n" = 0 ]; then touch "$MARKS/started"; sleep 300 & wait; fi
  - name: two
    steps:
      - {name: later, run: 'touch "$MARKS/later"'}
`)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *engine.Result)
	go func() { done <- f.run(ctx, p, engine.Request{}) }()
	waitFor(t, func() bool { _, err := os.Stat(filepath.Join(marks, "started")); return err == nil })
	cancel()
	res := <-done
	if res.Status != store.StatusCancelled {
		t.Fatalf("first: got %s, want cancelled", res.Status)
	}
	again, err := f.eng.Resume(context.Background(), res.RunID, engine.ResumeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Status != store.StatusPassed {
		t.Fatalf("resumed: got %+v, want passed", again)
	}
	if _, err := os.Stat(filepath.Join(marks, "later")); err != nil {
		t.Errorf("stage two did not run after the resumption: %v", err)
	}
	if got := readCount(t, filepath.Join(marks, "slow")); got != 2 {
		t.Errorf("slow ran %d times, want 2", got)
	}
}

// cancelOnRollback cancels the run from inside a failure action, so that
// the cancellation lands between two stages.
type cancelOnRollback struct{ cancel context.CancelFunc }

func (c cancelOnRollback) Rollback(context.Context, string) error { c.cancel(); return nil }

// TestResumeRunsStagesCancelledBeforeTheyStarted: a stage the
// cancellation kept from starting is recorded cancelled, not skipped, and
// a resumption runs it.
func TestResumeRunsStagesCancelledBeforeTheyStarted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFixture(t, engine.WithRollbacker("staging", cancelOnRollback{cancel}))
	p := f.pipeline(`name: between
stages:
  - name: one
    steps: [{name: fails, run: 'exit 1'}]
    on_failure: [{rollback: staging}]
  - name: two
    when: "true"
    steps: [{name: later, run: 'touch later'}]
`)
	res := f.run(ctx, p, engine.Request{})
	if res.Status != store.StatusCancelled {
		t.Fatalf("first: got %s, want cancelled", res.Status)
	}
	stages, err := f.store.Stages(context.Background(), res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stages {
		if st.Name == "two" && st.Status != store.StatusCancelled {
			t.Errorf("stage two: got %s %q, want cancelled", st.Status, st.Message)
		}
	}
	again, err := f.eng.Resume(context.Background(), res.RunID, engine.ResumeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Status != store.StatusFailed {
		t.Errorf("resumed: got %s, want failed (stage one failed before)", again.Status)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "later")); err != nil {
		t.Errorf("stage two did not run after the resumption: %v", err)
	}
}
