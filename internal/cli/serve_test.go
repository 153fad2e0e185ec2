package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/serve"
	"github.com/gantry-ci/gantry/internal/store"
)

// waitServing polls until the serve process of dir answers, or fails
// when done reports that the command ended first.
func waitServing(t *testing.T, dir string, done <-chan int) {
	t.Helper()
	for {
		c, err := serve.Dial(t.Context(), dir)
		if err == nil {
			c.Close()
			return
		}
		select {
		case code := <-done:
			t.Fatalf("gantry serve ended with %d before it answered", code)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestServeCommands: gantry serve in the foreground, a second one
// refused, status, stop, and the answers when none runs.
func TestServeCommands(t *testing.T) {
	dir := t.TempDir()
	notRunning := "gantry serve is not running for " + dir

	t.Run("not running", func(t *testing.T) {
		for _, tt := range []struct {
			args     []string
			code     int
			out, err string
		}{
			{[]string{"serve", "stop"}, ExitOK, notRunning, ""},
			{[]string{"serve", "status"}, ExitNotRunning, "", notRunning},
			{[]string{"env", "ls"}, ExitNotRunning, "", notRunning},
			{[]string{"env", "history", "staging"}, ExitNotRunning, "", notRunning},
			{[]string{"env", "logs", "staging"}, ExitNotRunning, "", notRunning},
			{[]string{"env", "rollback", "staging"}, ExitNotRunning, "", notRunning},
		} {
			t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
				out, errOut, code := gantry(t, dir, tt.args...)
				if code != tt.code || !strings.Contains(out, tt.out) || !strings.Contains(errOut, tt.err) {
					t.Errorf("got exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q", code, out, errOut, tt.code, tt.out, tt.err)
				}
			})
		}
	})

	done := make(chan int, 1)
	var serveErr string
	go func() {
		_, errOut, code := gantry(t, dir, "serve")
		serveErr = errOut
		done <- code
	}()
	waitServing(t, dir, done)

	t.Run("second serve refused", func(t *testing.T) {
		_, errOut, code := gantry(t, dir, "serve")
		want := fmt.Sprintf("gantry serve is already running for %s (pid %d)", dir, os.Getpid())
		if code != ExitAlreadyRunning || !strings.Contains(errOut, want) {
			t.Errorf("got exit %d, stderr %q; want exit %d saying %q", code, errOut, ExitAlreadyRunning, want)
		}
	})
	t.Run("status", func(t *testing.T) {
		out, errOut, code := gantry(t, dir, "serve", "status")
		words := strings.Join(strings.Fields(out), " ")
		if code != ExitOK || !strings.Contains(words, fmt.Sprintf("pid: %d", os.Getpid())) || !strings.Contains(words, "registry: 127.0.0.1:") {
			t.Errorf("got exit %d, stdout %q, stderr %q; want the pid and registry", code, out, errOut)
		}
	})
	t.Run("environments", func(t *testing.T) {
		out, errOut, code := gantry(t, dir, "env", "ls", "-o", "json")
		if code != ExitOK || strings.TrimSpace(out) != "[]" {
			t.Errorf("env ls: got exit %d, stdout %q, stderr %q; want exit 0 and no environment", code, out, errOut)
		}
		_, errOut, code = gantry(t, dir, "env", "history", "staging")
		if code != ExitUsage || !strings.Contains(errOut, "environment staging") {
			t.Errorf("env history of an unknown environment: got exit %d, stderr %q; want exit %d naming it", code, errOut, ExitUsage)
		}
	})
	t.Run("stop", func(t *testing.T) {
		out, errOut, code := gantry(t, dir, "serve", "stop")
		if code != ExitOK || !strings.Contains(out, fmt.Sprintf("stopped gantry serve (pid %d) for %s", os.Getpid(), dir)) {
			t.Errorf("got exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if code := <-done; code != ExitOK {
			t.Errorf("gantry serve after stop: exit %d, stderr %q", code, serveErr)
		}
		if running, err := serve.Running(dir); err != nil || running {
			t.Errorf("Running after stop: %v, %v", running, err)
		}
	})
}

// fixture is a runtime.Deployer with fixed answers for the env commands;
// environment "busy" is being deployed, "missing" does not exist.
type fixture struct {
	mu        sync.Mutex
	rollbacks []string
}

func (f *fixture) fail(env string) error {
	switch env {
	case "busy":
		return fmt.Errorf("roll back %s: %w", env, runtime.ErrDeployInProgress)
	case "missing":
		return fmt.Errorf("environment %s: %w", env, store.ErrNotFound)
	}
	return nil
}

var fixtureEnvs = []runtime.EnvironmentStatus{
	{Name: "staging", URL: "http://127.0.0.1:30080",
		Current:   &runtime.Revision{Environment: "staging", Number: 3, Digest: "sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789", Status: "serving"},
		Instances: []runtime.InstanceStatus{{ID: "staging-3-0", State: "ready"}, {ID: "staging-3-1", State: "starting"}}},
	{Name: "prod", URL: "http://127.0.0.1:30081"},
}

func (f *fixture) Deploy(context.Context, runtime.DeployRequest) (runtime.Revision, error) {
	return runtime.Revision{}, errors.New("not in this test")
}
func (f *fixture) Rollback(_ context.Context, env string, to int, who, reason string) (runtime.Revision, error) {
	f.mu.Lock()
	f.rollbacks = append(f.rollbacks, fmt.Sprintf("%s to=%d reason=%s who-set=%v", env, to, reason, who != ""))
	f.mu.Unlock()
	if err := f.fail(env); err != nil {
		return runtime.Revision{}, err
	}
	return runtime.Revision{Environment: env, Number: 4, Digest: "sha256:0123", Status: "serving"}, nil
}
func (f *fixture) Status(_ context.Context, env string) (runtime.EnvironmentStatus, error) {
	return fixtureEnvs[0], f.fail(env)
}
func (f *fixture) List(context.Context) ([]runtime.EnvironmentStatus, error) {
	return fixtureEnvs, nil
}
func (f *fixture) History(_ context.Context, env string) ([]runtime.Revision, error) {
	if err := f.fail(env); err != nil {
		return nil, err
	}
	created := time.Date(2026, 11, 30, 1, 2, 3, 0, time.Local)
	return []runtime.Revision{
		{Environment: env, Number: 1, Digest: "sha256:1111111111111111111111", Status: "superseded", Who: "ana", Run: 12, Reason: "deploy", Created: created},
		{Environment: env, Number: 2, Digest: "sha256:2222222222222222222222", Status: "refused", Who: "bob\x1b[2J", Reason: "deploy", Message: "unsigned", Created: created},
	}, nil
}
func (f *fixture) Logs(_ context.Context, env string, _ bool, w io.Writer) error {
	if err := f.fail(env); err != nil {
		return err
	}
	_, err := io.WriteString(w, env+"-3-0 | listening on :8080\n")
	return err
}
func (f *fixture) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (f *fixture) Close(context.Context) error   { return nil }

// TestEnvCommands runs the env commands against a serve process with
// fixed environments.
func TestEnvCommands(t *testing.T) {
	dir := t.TempDir()
	f := &fixture{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() {
		err := serve.Run(ctx, serve.Config{StateDir: dir, Deployer: f})
		if err != nil {
			t.Error(err)
		}
		done <- Code(err)
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitServing(t, dir, done)

	tests := []struct {
		name string
		args []string
		code int
		want []string // in stdout, or stderr when the exit is not 0
	}{
		{"ls", []string{"env", "ls"}, ExitOK, []string{
			"NAME     URL                     REVISION  DIGEST               READY",
			"staging  http://127.0.0.1:30080  3         sha256:abcdef012345  1/2",
			"prod     http://127.0.0.1:30081  -         -                    0/0"}},
		{"history", []string{"env", "history", "staging"}, ExitOK, []string{
			"1         superseded  sha256:111111111111  #12  ana",
			"2         refused     sha256:222222222222  -    bob?[2J  2026-11-30 01:02:03  deploy (unsigned)"}},
		{"history of a missing environment", []string{"env", "history", "missing"}, ExitUsage, []string{"environment missing: not found"}},
		{"bad environment name", []string{"env", "history", "../x"}, ExitUsage, []string{`environment name "../x"`}},
		{"logs", []string{"env", "logs", "staging", "-f"}, ExitOK, []string{"staging-3-0 | listening on :8080\n"}},
		{"rollback", []string{"env", "rollback", "staging", "--to-revision", "2", "--reason", "bad release"}, ExitOK, []string{"staging: revision 4 serves sha256:0123"}},
		{"rollback while deploying", []string{"env", "rollback", "busy"}, ExitFailed, []string{"another deploy of this environment is in progress"}},
		{"rollback to a negative revision", []string{"env", "rollback", "staging", "--to-revision", "-2"}, ExitUsage, []string{"--to-revision must be"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
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
		})
	}
	t.Run("ls -o json", func(t *testing.T) {
		out, _, code := gantry(t, dir, "env", "ls", "-o", "json")
		var got []runtime.EnvironmentStatus
		if err := json.Unmarshal([]byte(out), &got); err != nil || code != ExitOK {
			t.Fatalf("exit %d, %v: %s", code, err, out)
		}
		if !reflect.DeepEqual(got, fixtureEnvs) {
			t.Errorf("got %+v, want %+v", got, fixtureEnvs)
		}
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if want := []string{"staging to=2 reason=bad release who-set=true", "busy to=0 reason=rollback who-set=true"}; !reflect.DeepEqual(f.rollbacks, want) {
		t.Errorf("rollbacks: got %q, want %q", f.rollbacks, want)
	}
}
