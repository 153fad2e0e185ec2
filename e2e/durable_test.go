package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const gatedPipeline = `name: gated
stages:
  - name: build
    steps:
      - {name: compile, run: 'cat version.txt'}
  - name: prod
    approval: {required: true, roles: [oncall-lead]}
    steps:
      - {name: deploy, run: 'echo deploying $(cat version.txt)'}
`

// TestApproveThroughTheCLI: gantry run stops at the approval (exit 75), a
// user without the role is refused (exit 77, audited), the oncall lead
// approves from another gantry process, which resumes the run to its end
// on the recorded commit; a second run is rejected.
func TestApproveThroughTheCLI(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	e.write(".gantry/approvers.yaml", "oncall-lead: [someone-else]\n")
	e.write(".gantry/pipeline.yaml", gatedPipeline)
	e.write("version.txt", "v1\n")
	e.commitAll("gated pipeline")

	r := e.gantry("run", "--progress", "plain")
	if r.code != 75 || !strings.Contains(r.stdout, "gantry approve 1 --stage prod") {
		t.Fatalf("run: exit %d, want 75 with how to approve\n%s%s", r.code, r.stdout, r.stderr)
	}
	if v := e.show(1); v.Status != "waiting" {
		t.Errorf("run 1: got %s, want waiting", v.Status)
	}

	// A feature branch granting the caller the role does not count: the
	// approvers file is read from main.
	e.git("checkout", "-q", "-b", "feature")
	e.write(".gantry/approvers.yaml", "oncall-lead: ["+me.Username+"]\n")
	e.write("version.txt", "v2\n")
	e.commitAll("grant myself and move on")
	r = e.gantry("approve", "1", "--comment", "mine now")
	if r.code != 77 || !strings.Contains(r.stderr, "holds none of the roles oncall-lead") {
		t.Fatalf("approve without the role: exit %d, want 77\n%s%s", r.code, r.stdout, r.stderr)
	}

	e.git("checkout", "-q", "main")
	e.write(".gantry/approvers.yaml", "oncall-lead: ["+me.Username+"]\n")
	e.commitAll("make me oncall lead")
	e.git("checkout", "-q", "feature")
	r = e.gantry("approve", "1", "--stage", "prod", "--comment", "ship it", "--progress", "plain")
	if r.code != 0 {
		t.Fatalf("approve: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	v := e.show(1)
	if v.Status != "passed" {
		t.Errorf("run 1 after approval: got %s, want passed", v.Status)
	}
	if logs := e.gantry("logs", "1", "deploy"); !strings.Contains(logs.stdout, "deploying v1") {
		t.Errorf("deploy ran on %q, want the run's commit (v1)", logs.stdout)
	}

	e.git("checkout", "-q", "main")
	if r := e.gantry("run", "--progress", "plain"); r.code != 75 {
		t.Fatalf("second run: exit %d, want 75\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := e.gantry("reject", "2"); r.code != 2 {
		t.Errorf("reject without --reason: exit %d, want 2", r.code)
	}
	if r := e.gantry("reject", "2", "--reason", "freeze"); r.code != 0 {
		t.Fatalf("reject: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if v := e.show(2); v.Status != "rejected" || !strings.Contains(v.Message, "freeze") {
		t.Errorf("run 2 after reject: got %s %q, want rejected with the reason", v.Status, v.Message)
	}
	if r := e.gantry("run", "--resume", "2"); r.code != 1 {
		t.Errorf("resume of a rejected run: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := e.gantry("approve", "2"); r.code != 2 {
		t.Errorf("approve a rejected run: exit %d, want 2\n%s", r.code, r.stderr)
	}
}

const resumablePipeline = `name: resumable
stages:
  - name: s
    steps:
      - {name: first, run: 'echo ran >> "$MARKS/first"'}
      - name: slow
        needs: [first]
        run: |
          if [ ! -e "$MARKS/slow" ]; then
            touch "$MARKS/slow"
            sleep 300 & echo $! > "$MARKS/child.pid"; wait
          fi
          echo slow done
`

// TestKill9ThenResume: gantry is killed in the middle of a stage;
// gantry run --resume finishes the run without rerunning the step that
// had passed.
func TestKill9ThenResume(t *testing.T) {
	marks := t.TempDir()
	t.Setenv("MARKS", marks)
	e := newEnv(t)
	e.write(".gantry/pipeline.yaml", resumablePipeline)
	e.commitAll("resumable")
	cmd := e.cmd(context.Background(), "run", "--progress", "plain")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(marks, "child.pid")
	var child int
	for deadline := time.Now().Add(time.Minute); child == 0; time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(pidFile); err == nil {
			fmt.Sscan(string(b), &child)
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("slow step never started:\n%s", out.String())
		}
	}
	defer syscall.Kill(child, syscall.SIGKILL)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	r := e.gantry("run", "--resume", "1", "--progress", "plain")
	if r.code != 0 {
		t.Fatalf("run --resume 1: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	v := e.show(1)
	if v.Status != "passed" {
		t.Errorf("run 1 after resume: got %s, want passed", v.Status)
	}
	if status, _, _ := v.step("s", "slow"); status != "passed" {
		t.Errorf("slow after resume: got %s, want passed", status)
	}
	if b, _ := os.ReadFile(filepath.Join(marks, "first")); string(b) != "ran\n" {
		t.Errorf("first ran %q, want once", b)
	}
	if r := e.gantry("run", "--resume", "1"); r.code != 2 {
		t.Errorf("resuming a passed run: exit %d, want 2", r.code)
	}
}
