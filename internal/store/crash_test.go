package store

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash test re-executes this test binary as a child that runs part of
// a pipeline and is then killed with SIGKILL.
const (
	helperEnv    = "GANTRY_STORE_CRASH_HELPER_DIR"
	helperURLEnv = "GANTRY_STORE_CRASH_HELPER_URL" // the PostgreSQL database, if any
)

// TestCrashHelper is the child: it opens the store, creates a run with a
// running stage and step, writes logs, prints "ready <id>" and blocks
// until its stdin closes (or it is killed).
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process for TestKillNineMarksRunInterrupted")
	}
	ctx := context.Background()
	s, err := Open(ctx, dir, WithURL(os.Getenv(helperURLEnv)))
	if err != nil {
		t.Fatal(err)
	}
	r := &Run{Pipeline: "child", Started: time.Now()}
	steps := []error{s.CreateRun(ctx, r)}
	steps = append(steps,
		s.PutStage(ctx, &Stage{RunID: r.ID, Name: "commit", Status: StatusPassed}),
		s.PutStage(ctx, &Stage{RunID: r.ID, Name: "build", Index: 1, Status: StatusRunning}),
		s.PutStage(ctx, &Stage{RunID: r.ID, Name: "deploy", Index: 2, Status: StatusPending}),
		s.PutStep(ctx, &Step{RunID: r.ID, Stage: "commit", Name: "lint", Status: StatusPassed}),
		s.PutStep(ctx, &Step{RunID: r.ID, Stage: "build", Name: "unit", Status: StatusRunning}),
		s.PutStep(ctx, &Step{RunID: r.ID, Stage: "build", Name: "image", Status: StatusPending}),
	)
	for i := range 3 {
		steps = append(steps, s.AppendLogs(ctx, r.ID, "build", "unit", []LogLine{{Text: fmt.Sprintf("line %d", i)}}))
	}
	for _, err := range steps {
		if err != nil {
			t.Fatal(err)
		}
	}
	fmt.Printf("ready %d\n", r.ID)
	_, _ = io.Copy(io.Discard, os.Stdin)
}

func TestKillNineMarksRunInterrupted(t *testing.T) { eachBackend(t, testKillNineMarksRunInterrupted) }

func testKillNineMarksRunInterrupted(t *testing.T, be *backend) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("in the helper process")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a safety net, not an assertion
	defer cancel()
	dir := t.TempDir()

	// The parent's own run stays alive throughout.
	parent := be.open(t, dir)
	alive := &Run{Pipeline: "parent"}
	if err := parent.CreateRun(ctx, alive); err != nil {
		t.Fatal(err)
	}
	if err := parent.PutStep(ctx, &Step{RunID: alive.ID, Stage: "s", Name: "x", Status: StatusRunning}); err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashHelper$", "-test.v=false")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir, helperURLEnv+"="+be.url(dir))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var childRun int64
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
			childRun, _ = strconv.ParseInt(id, 10, 64)
			break
		}
	}
	if childRun == 0 {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper never said ready; stderr:\n%s", stderr.String())
	}

	// While the child lives, a fresh Open leaves both runs alone.
	probe := be.open(t, dir)
	got, err := probe.GetRun(ctx, childRun)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusRunning {
		t.Fatalf("live child's run status = %q, want running", got.Status)
	}
	probe.Close()

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child exit: %v, want killed by SIGKILL; stderr:\n%s", err, stderr.String())
	}

	after := be.open(t, dir)
	got, err = after.GetRun(ctx, childRun)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusInterrupted || got.Message != InterruptedMessage || got.Finished.IsZero() {
		t.Errorf("killed child's run = %q %q finished %v, want interrupted %q with a finish time",
			got.Status, got.Message, got.Finished, InterruptedMessage)
	}
	stages, err := after.Stages(ctx, childRun)
	if err != nil {
		t.Fatal(err)
	}
	wantStages := map[string]Status{"commit": StatusPassed, "build": StatusInterrupted, "deploy": StatusInterrupted}
	for _, st := range stages {
		if st.Status != wantStages[st.Name] {
			t.Errorf("stage %s = %q, want %q", st.Name, st.Status, wantStages[st.Name])
		}
	}
	steps, err := after.Steps(ctx, childRun)
	if err != nil {
		t.Fatal(err)
	}
	wantSteps := map[string]Status{"commit/lint": StatusPassed, "build/unit": StatusInterrupted, "build/image": StatusInterrupted}
	for _, st := range steps {
		if k := st.Stage + "/" + st.Name; st.Status != wantSteps[k] {
			t.Errorf("step %s = %q, want %q", k, st.Status, wantSteps[k])
		}
	}
	logs, err := after.Logs(ctx, childRun, "build", "unit", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 3 || logs[2].Text != "line 2" || logs[2].Seq != 3 {
		t.Errorf("logs after kill = %+v, want line 0..2 with Seq 1..3", logs)
	}
	evs, err := after.Events(ctx, childRun)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Type != EventRunInterrupted {
		t.Errorf("events = %+v, want one %s", evs, EventRunInterrupted)
	}
	if _, err := os.Stat(after.locks.path(childRun)); !os.IsNotExist(err) {
		t.Errorf("lock file of the recovered run: stat error %v, want it removed", err)
	}

	// The parent's run, held by a live process, is untouched and still
	// finishes normally.
	got, err = after.GetRun(ctx, alive.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusRunning {
		t.Errorf("live parent's run = %q, want running", got.Status)
	}
	if err := parent.FinishRun(ctx, alive.ID, StatusPassed, "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := after.GetRun(ctx, alive.ID); got.Status != StatusPassed {
		t.Errorf("parent's run after FinishRun = %q, want passed", got.Status)
	}
}

func TestRecoverMissingLockAndClose(t *testing.T) { eachBackend(t, testRecoverMissingLockAndClose) }

func testRecoverMissingLockAndClose(t *testing.T, be *backend) {
	ctx := context.Background()
	dir := t.TempDir()
	s := be.open(t, dir)
	gone, kept := &Run{}, &Run{}
	for _, r := range []*Run{gone, kept} {
		if err := s.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// A run whose lock file vanished counts as dead even though this
	// process still "holds" it.
	s.locks.releaseAll()
	if err := s.locks.acquire(kept.ID); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(s.locks.path(gone.ID)); err != nil {
		t.Fatal(err)
	}
	marked, err := s.RecoverInterrupted(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(marked) != 1 || marked[0] != gone.ID {
		t.Errorf("RecoverInterrupted = %v, want [%d]", marked, gone.ID)
	}
	// Close abandons the still-open run: the next Open marks it.
	s.Close()
	s2 := be.open(t, dir)
	got, err := s2.GetRun(ctx, kept.ID)
	if err != nil || got.Status != StatusInterrupted {
		t.Errorf("run left open at Close: %+v, %v; want interrupted", got, err)
	}
}

func TestResumeRun(t *testing.T) { eachBackend(t, testResumeRun) }

func testResumeRun(t *testing.T, be *backend) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := be.open(t, dir), be.open(t, dir)
	r := &Run{}
	if err := a.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := b.ResumeRun(ctx, r.ID); err == nil {
		t.Errorf("ResumeRun of a running run succeeded, want an error")
	}
	if err := a.FinishRun(ctx, r.ID, StatusAwaitingApproval, "waiting for oncall-lead", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if m, err := b.RecoverInterrupted(ctx); err != nil || len(m) != 0 {
		t.Errorf("RecoverInterrupted with a run awaiting approval = %v, %v; want none", m, err)
	}
	if err := b.ResumeRun(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if m, err := a.RecoverInterrupted(ctx); err != nil || len(m) != 0 {
		t.Errorf("RecoverInterrupted from another store while b holds the run = %v, %v; want none", m, err)
	}
	if err := b.FinishRun(ctx, r.ID, StatusPassed, "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.GetRun(ctx, r.ID); got.Status != StatusPassed {
		t.Errorf("status = %q, want passed", got.Status)
	}
}
