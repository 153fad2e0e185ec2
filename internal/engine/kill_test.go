package engine_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// The kill -9 test re-executes this test binary as a gantry that runs a
// pipeline whose step starts a sleep; the test then kills it with SIGKILL.
const killHelperEnv = "GANTRY_ENGINE_KILL_HELPER" // STATE_DIR:WORKSPACE

const killPipeline = `name: orphan
stages:
  - name: build
    steps:
      - name: unit
        run: |
          sleep 300 &
          echo $! > sleep.pid
          wait
`

// TestKillNineHelper is the child: it runs killPipeline and never returns
// on its own (the step waits for its sleep).
func TestKillNineHelper(t *testing.T) {
	v := os.Getenv(killHelperEnv)
	if v == "" {
		t.Skip("helper process for TestKillNineEndsStepProcesses")
	}
	state, ws, _ := strings.Cut(v, ":")
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(state, "db"))
	if err != nil {
		t.Fatal(err)
	}
	arts, err := artifact.New(filepath.Join(state, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(st, arts, state, engine.WithScriptKind(shell.Kind))
	if err != nil {
		t.Fatal(err)
	}
	p, err := spec.Parse("pipeline.yaml", []byte(killPipeline), eng.Registry())
	if err != nil {
		t.Fatal(err)
	}
	_, err = eng.Run(ctx, p, engine.Request{Dir: ws, Git: step.Git{Event: "push", Branch: "main"}})
	t.Fatalf("Run returned (%v); the test should have killed this process", err)
}

// running reports whether pid is a live process; a zombie waiting for a
// parent that does not reap it counts as gone.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// TestKillNineEndsStepProcesses: gantry killed with SIGKILL while a step
// runs leaves the step's processes running; the next store open ends them
// and records an event on the interrupted run.
func TestKillNineEndsStepProcesses(t *testing.T) {
	if os.Getenv(killHelperEnv) != "" {
		t.Skip("in the helper process")
	}
	ctx := context.Background()
	state, ws := t.TempDir(), t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillNineHelper$")
	cmd.Env = append(os.Environ(), killHelperEnv+"="+state+":"+ws)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	// Wait until the step's sleep runs and its group is recorded.
	s1, err := store.Open(ctx, filepath.Join(state, "db"))
	if err != nil {
		t.Fatal(err)
	}
	sleepPid := 0
	deadline := time.Now().Add(2 * time.Minute) // a safety net, not an assertion
	for sleepPid == 0 {
		select {
		case err := <-exited:
			t.Fatalf("helper exited early (%v):\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the helper's step never started its sleep:\n%s", out.String())
		}
		groups, err := s1.ProcGroups(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(ws, "sleep.pid"))
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && len(groups) == 1 {
			sleepPid = pid
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		if running(sleepPid) { // only if the test failed
			_ = syscall.Kill(sleepPid, syscall.SIGKILL)
		}
	})
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	exited <- nil // for the cleanup
	if !running(sleepPid) {
		t.Fatalf("the step's sleep %d ended with gantry; the test cannot tell recovery apart", sleepPid)
	}

	s2, err := store.Open(ctx, filepath.Join(state, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if running(sleepPid) {
		t.Errorf("the step's sleep %d still runs after the store was reopened", sleepPid)
	}
	run, err := s2.GetRun(ctx, 1)
	if err != nil || run.Status != store.StatusInterrupted {
		t.Errorf("run: got %+v, %v; want interrupted", run, err)
	}
	evs, err := s2.Events(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range evs {
		if e.Type == store.EventProcessesEnded && e.Stage == "build" && e.Step == "unit" {
			for _, n := range e.Data["processes"].([]any) {
				names = append(names, n.(string))
			}
		}
	}
	if !slices.Contains(names, "sleep") {
		t.Errorf("%s events of build/unit name %v, want sleep among them", store.EventProcessesEnded, names)
	}
	if groups, err := s2.ProcGroups(ctx, 1); err != nil || len(groups) != 0 {
		t.Errorf("ProcGroups after recovery: got %+v, %v; want none", groups, err)
	}
}
