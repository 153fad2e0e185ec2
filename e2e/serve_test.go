package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startServe starts `gantry serve` in the foreground of the test and
// waits until `gantry serve status` answers.
func (e *env) startServe() (*exec.Cmd, *bytes.Buffer) {
	e.t.Helper()
	cmd := e.cmd(context.Background(), "serve")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() {
		// Reap only if it ends before it answered; otherwise the caller
		// waits for it.
		for {
			if r := e.gantry("serve", "status"); r.code == 0 {
				exited <- nil
				return
			}
			var ws syscall.WaitStatus
			if pid, _ := syscall.Wait4(cmd.Process.Pid, &ws, syscall.WNOHANG, nil); pid == cmd.Process.Pid {
				exited <- fmt.Errorf("gantry serve exited with %d: %s", ws.ExitStatus(), errb.String())
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	if err := <-exited; err != nil {
		e.t.Fatal(err)
	}
	return cmd, &errb
}

// TestServeProcess drives the gantry binary: one serve per state dir,
// the env commands through it, SIGTERM and `gantry serve stop` end it
// gracefully, and after kill -9 a new one replaces the stale socket.
func TestServeProcess(t *testing.T) {
	e := newEnv(t)
	sock := filepath.Join(e.state, "gantry.sock")

	srv, logs := e.startServe()
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket: %v, %v; want mode 0600", fi, err)
	}
	if r := e.gantry("serve"); r.code != 73 || !strings.Contains(r.stderr, fmt.Sprintf("already running for %s (pid %d)", e.state, srv.Process.Pid)) {
		t.Errorf("second gantry serve: exit %d, stderr %q; want 73 naming pid %d", r.code, r.stderr, srv.Process.Pid)
	}
	if r := e.gantry("env", "ls"); r.code != 0 || !strings.Contains(r.stdout, "NAME") {
		t.Errorf("gantry env ls: exit %d, stdout %q, stderr %q; want 0 and the (empty) table", r.code, r.stdout, r.stderr)
	}
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(); err != nil {
		t.Errorf("gantry serve after SIGTERM: %v; stderr %s", err, logs)
	}
	if !strings.Contains(logs.String(), "gantry serve stopped") {
		t.Errorf("gantry serve's log: %q, want it to say it stopped", logs)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after SIGTERM: %v, want it removed", err)
	}

	srv, _ = e.startServe()
	if err := srv.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = srv.Wait()
	if r := e.gantry("serve", "status"); r.code != 69 || !strings.Contains(r.stderr, "gantry serve is not running for "+e.state) {
		t.Errorf("status after kill -9: exit %d, stderr %q; want 69, not running", r.code, r.stderr)
	}
	srv, logs = e.startServe()
	r := e.gantry("serve", "stop")
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("stopped gantry serve (pid %d)", srv.Process.Pid)) {
		t.Errorf("gantry serve stop: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if err := srv.Wait(); err != nil {
		t.Errorf("gantry serve after stop: %v; stderr %s", err, logs)
	}
	if r := e.gantry("serve", "stop"); r.code != 0 || !strings.Contains(r.stdout, "gantry serve is not running") {
		t.Errorf("second gantry serve stop: exit %d, stdout %q", r.code, r.stdout)
	}
}
