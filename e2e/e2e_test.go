// Package e2e runs the gantry binary the way a user does: on a git
// repository, through the CLI, reading back what it recorded.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	// The tests run the gantry binary, which go test cannot see; importing
	// its command package ties the test cache to gantry's sources.
	_ "github.com/gantry-ci/gantry/internal/cli"
)

var gantryBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gantry-e2e-bin-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gantryBin = filepath.Join(dir, "gantry")
	build := exec.Command("go", "build", "-o", gantryBin, "../cmd/gantry")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build gantry:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one finished gantry invocation.
type result struct {
	code           int
	stdout, stderr string
}

type env struct {
	t     *testing.T
	state string
	repo  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{t: t, state: t.TempDir(), repo: t.TempDir()}
}

func (e *env) cmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, gantryBin, append([]string{"--state-dir", e.state}, args...)...)
	cmd.Dir = e.repo
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	return cmd
}

func (e *env) gantry(args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	cmd := e.cmd(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("gantry %v: %v", args, err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func (e *env) write(name, content string) {
	e.t.Helper()
	path := filepath.Join(e.repo, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) git(args ...string) string {
	e.t.Helper()
	return gitIn(e.t, e.repo, args...)
}

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=gantry", "GIT_AUTHOR_EMAIL=ci@gantry.invalid",
		"GIT_COMMITTER_NAME=gantry", "GIT_COMMITTER_EMAIL=ci@gantry.invalid",
		"GIT_AUTHOR_DATE=2026-11-01T10:00:00Z", "GIT_COMMITTER_DATE=2026-11-01T10:00:00Z")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (e *env) commitAll(msg string) {
	e.t.Helper()
	if _, err := os.Stat(filepath.Join(e.repo, ".git")); err != nil {
		e.git("init", "-q", "-b", "main")
	}
	e.git("add", "-A")
	e.git("commit", "-q", "-m", msg)
}

// runJSON is the part of `gantry show --output json` the tests read.
type runJSON struct {
	ID      int64  `json:"id"`
	Status  string `json:"status"`
	Message string `json:"message"`
	SHA     string `json:"sha"`
	Branch  string `json:"branch"`
	Stages  []struct {
		Name    string `json:"name"`
		Status  string `json:"status"`
		Message string `json:"message"`
		Steps   []struct {
			Name       string         `json:"name"`
			Kind       string         `json:"kind"`
			Status     string         `json:"status"`
			Message    string         `json:"message"`
			CachedFrom int64          `json:"cached_from"`
			Outputs    map[string]any `json:"outputs"`
			Artifacts  []struct {
				Name   string `json:"name"`
				Digest string `json:"digest"`
			} `json:"artifacts"`
		} `json:"steps"`
	} `json:"stages"`
}

func (e *env) show(id int64) runJSON {
	e.t.Helper()
	r := e.gantry("show", fmt.Sprint(id), "--output", "json")
	if r.code != 0 {
		e.t.Fatalf("gantry show %d: exit %d\n%s", id, r.code, r.stderr)
	}
	var v runJSON
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		e.t.Fatalf("show output is not JSON: %v\n%s", err, r.stdout)
	}
	return v
}

func (v runJSON) step(stage, name string) (status string, outputs map[string]any, cachedFrom int64) {
	for _, st := range v.Stages {
		if st.Name != stage {
			continue
		}
		for _, s := range st.Steps {
			if s.Name == name {
				return s.Status, s.Outputs, s.CachedFrom
			}
		}
	}
	return "", nil, 0
}

const demoPipeline = `name: demo
on:
  push: {branches: ["**"]}
secrets:
  API_TOKEN: {env: DEMO_API_TOKEN}
stages:
  - name: commit
    steps:
      - name: lint
        run: test -f main.go && echo "lint ok"
        inputs: ["*.go"]
      - name: version
        run: echo "version=1.2.3" >> "$GANTRY_OUTPUT"
        outputs: [version]
        inputs: ["VERSION"]
  - name: build-test
    steps:
      - name: unit
        run: |
          echo "token is $API_TOKEN"
          mkdir -p reports && echo '<testsuites tests="1"/>' > reports/junit.xml
          echo "coverage=85.5" >> "$GANTRY_OUTPUT"
        secrets: [API_TOKEN]
        outputs: [coverage]
        artifacts: [reports/junit.xml]
        inputs: ["*.go"]
      - name: image
        needs: [unit]
        env: {TAG: "${stages.commit.steps.version.outputs.version}-${git.short_sha}"}
        run: echo "tag $TAG"
    gate: steps.unit.outputs.coverage >= 80
`

func TestRunRecordsEverything(t *testing.T) {
	e := newEnv(t)
	e.write(".gantry/pipeline.yaml", demoPipeline)
	e.write("main.go", "package main\n\nfunc main() {}\n")
	e.write("VERSION", "1\n")
	e.commitAll("feat: first")
	sha := e.git("rev-parse", "HEAD")
	t.Setenv("DEMO_API_TOKEN", "tok-e2e-0123456789")

	r := e.gantry("run", "--dir", e.repo, "--progress", "plain")
	if r.code != 0 {
		t.Fatalf("gantry run: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "tok-e2e-0123456789") {
		t.Errorf("the secret reached the terminal:\n%s", r.stdout)
	}
	v := e.show(1)
	if v.Status != "passed" || v.SHA != sha || v.Branch != "main" {
		t.Errorf("run: got status %s sha %s branch %s, want passed %s main", v.Status, v.SHA, v.Branch, sha)
	}
	if got, want := len(v.Stages), 2; got != want {
		t.Fatalf("stages: got %d, want %d", got, want)
	}
	status, outputs, _ := v.step("build-test", "unit")
	if status != "passed" || outputs["coverage"] != 85.5 {
		t.Errorf("unit: got %s %v, want passed with coverage 85.5", status, outputs)
	}

	logs := e.gantry("logs", "1", "build-test/image")
	if want := "tag 1.2.3-" + sha[:12]; !strings.Contains(logs.stdout, want) {
		t.Errorf("image log lacks %q:\n%s", want, logs.stdout)
	}
	all := e.gantry("logs", "1")
	if !strings.Contains(all.stdout, "[build-test/unit] token is ***") || strings.Contains(all.stdout, "tok-e2e") {
		t.Errorf("logs are not masked:\n%s", all.stdout)
	}

	out := filepath.Join(t.TempDir(), "junit.xml")
	if r := e.gantry("artifacts", "1", "--get", "reports/junit.xml", "--to", out); r.code != 0 {
		t.Fatalf("artifacts --get: exit %d: %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(out); !strings.Contains(string(b), "testsuites") {
		t.Errorf("artifact content: got %q", b)
	}

	// A second run with nothing changed reuses every cacheable step.
	if r := e.gantry("run", "--dir", e.repo, "--progress", "plain"); r.code != 0 {
		t.Fatalf("second run: exit %d\n%s", r.code, r.stdout)
	}
	v2 := e.show(2)
	for _, s := range [][2]string{{"commit", "lint"}, {"commit", "version"}, {"build-test", "unit"}} {
		if status, _, from := v2.step(s[0], s[1]); status != "cached" || from != 1 {
			t.Errorf("%s/%s on the re-run: got %s from run %d, want cached from run 1", s[0], s[1], status, from)
		}
	}
	if status, _, _ := v2.step("build-test", "image"); status != "passed" {
		t.Errorf("image (no inputs, never cached): got %s, want passed", status)
	}

	runs := e.gantry("runs", "--output", "json")
	var list []runJSON
	if err := json.Unmarshal([]byte(runs.stdout), &list); err != nil || len(list) != 2 || list[0].ID != 2 {
		t.Errorf("runs: got %v (%v), want runs 2 and 1, newest first", runs.stdout, err)
	}
}

func TestGateFailureExitsOne(t *testing.T) {
	e := newEnv(t)
	e.write(".gantry/pipeline.yaml", strings.Replace(demoPipeline, "coverage=85.5", "coverage=79.9", 1))
	e.write("main.go", "package main\n")
	e.write("VERSION", "1\n")
	e.commitAll("feat: first")
	r := e.gantry("run", "--dir", e.repo, "--progress", "plain")
	if r.code != 1 {
		t.Fatalf("exit: got %d, want 1\n%s", r.code, r.stdout)
	}
	v := e.show(1)
	if v.Status != "failed" || v.Stages[1].Message != "gate steps.unit.outputs.coverage >= 80 failed (steps.unit.outputs.coverage = 79.9)" {
		t.Errorf("got %s / %q", v.Status, v.Stages[1].Message)
	}
}

func TestBadPipelineExitsTwo(t *testing.T) {
	e := newEnv(t)
	e.write(".gantry/pipeline.yaml", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, uses: no-such-kind}\n")
	for _, args := range [][]string{{"validate", ".gantry/pipeline.yaml"}, {"run", "--dir", e.repo}} {
		r := e.gantry(args...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2", args, r.code)
		}
		if want := ".gantry/pipeline.yaml:5:25: unknown step kind \"no-such-kind\""; !strings.Contains(r.stderr, want) {
			t.Errorf("%v: stderr %q lacks %q", args, r.stderr, want)
		}
	}
	if r := e.gantry("run", "--event", "tag"); r.code != 2 {
		t.Errorf("bad flag value: exit %d, want 2", r.code)
	}
	if r := e.gantry("show", "42"); r.code != 2 || !strings.Contains(r.stderr, "42") {
		t.Errorf("show of a missing run: exit %d %q, want 2 naming the run", r.code, r.stderr)
	}
}

const slowPipeline = `name: slow
stages:
  - name: s
    steps:
      - {name: sleeper, run: 'echo started; sleep 120 & echo $! > child.pid; wait'}
`

// startSlow starts `gantry run` on a pipeline whose step sleeps and waits
// until the step is running.
func startSlow(t *testing.T, e *env) (*exec.Cmd, *bytes.Buffer, int) {
	t.Helper()
	e.write(".gantry/pipeline.yaml", slowPipeline)
	e.commitAll("chore: slow")
	cmd := e.cmd(context.Background(), "run", "--dir", e.repo, "--progress", "plain")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(e.repo, "child.pid")
	deadline := time.Now().Add(time.Minute)
	for {
		if b, err := os.ReadFile(pidFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
			var pid int
			fmt.Sscan(string(b), &pid)
			// Let the log line reach the store.
			time.Sleep(500 * time.Millisecond)
			return cmd, &out, pid
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("step never started:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestKill9LeavesInterruptedRun(t *testing.T) {
	e := newEnv(t)
	cmd, _, child := startSlow(t, e)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	defer syscall.Kill(-child, syscall.SIGKILL)
	defer syscall.Kill(child, syscall.SIGKILL)

	v := e.show(1)
	if v.Status != "interrupted" {
		t.Errorf("run after kill -9: got %s, want interrupted", v.Status)
	}
	if status, _, _ := v.step("s", "sleeper"); status != "interrupted" {
		t.Errorf("step after kill -9: got %s, want interrupted", status)
	}
	if logs := e.gantry("logs", "1", "sleeper"); !strings.Contains(logs.stdout, "started") {
		t.Errorf("logs written before the kill are gone: %q", logs.stdout)
	}
	// The store takes new runs afterwards.
	e.write(".gantry/pipeline.yaml", "name: after\nstages:\n  - name: s\n    steps: [{name: a, run: 'true'}]\n")
	if r := e.gantry("run", "--dir", e.repo, "--progress", "plain"); r.code != 0 {
		t.Errorf("run after a crash: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestInterruptCancelsRun(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("process groups are tested on Linux")
	}
	e := newEnv(t)
	cmd, out, child := startSlow(t, e)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("exit after Ctrl-C: got %v, want 130\n%s", err, out.String())
	}
	deadline := time.Now().Add(15 * time.Second)
	for syscall.Kill(child, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(child, syscall.SIGKILL)
			t.Fatal("the step's child process outlived the cancelled run")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v := e.show(1); v.Status != "cancelled" {
		t.Errorf("run after Ctrl-C: got %s, want cancelled", v.Status)
	}
}
