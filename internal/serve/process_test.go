package serve

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/gantry-ci/gantry/internal/testenv"
)

// asServer makes Ensure start this test binary as the serve process.
func asServer(t *testing.T) EnsureOption {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return withCommand(append(os.Environ(), roleEnv+"=server"), exe)
}

// starts returns the pids of the serve processes that started for dir.
func starts(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "starts"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// stopServer asks the server to stop and waits until it released the
// state dir.
func stopServer(t *testing.T, c *Client) {
	t.Helper()
	ctx := context.Background()
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := WaitStopped(ctx, c.StateDir()); err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestEnsureStartsOneServer: two concurrent Ensure calls start one
// background server and both talk to it; stopping it releases the lock.
func TestEnsureStartsOneServer(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	clients := make([]*Client, 2)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Ensure(ctx, dir, asServer(t))
			if err != nil {
				t.Error(err)
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var pids []int
	for _, c := range clients {
		h, err := c.Health(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, h.Pid)
	}
	if pids[0] != pids[1] || pids[0] == os.Getpid() {
		t.Errorf("servers: got pids %v, want one background process", pids)
	}
	if got := starts(t, dir); len(got) != 1 || got[0] != strconv.Itoa(pids[0]) {
		t.Errorf("server starts: got %v, want only pid %d", got, pids[0])
	}
	if running, _ := Running(dir); !running {
		t.Error("Running while served: got false")
	}
	stopServer(t, clients[0])
	clients[1].Close()
	if running, err := Running(dir); err != nil || running {
		t.Errorf("Running after stop: got %v, %v; want false", running, err)
	}
	if _, err := Dial(ctx, dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Dial after stop: got %v, want ErrNotRunning", err)
	}
	log, _ := os.ReadFile(LogFile(dir))
	if !strings.Contains(string(log), "gantry serve stopped") {
		t.Errorf("serve.log: got %q, want the server's logs", log)
	}
}

// TestEnsureAfterKill9: a server killed with SIGKILL leaves its socket
// behind; Ensure starts a new one, which replaces the stale socket.
func TestEnsureAfterKill9(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	c, err := Ensure(ctx, dir, asServer(t))
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := syscall.Kill(h.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := WaitStopped(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(SocketPath(dir)); err != nil {
		t.Fatalf("the killed server's socket: %v, want it left behind", err)
	}
	if _, err := Dial(ctx, dir); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Dial of the stale socket: got %v, want ErrNotRunning", err)
	}
	c2, err := Ensure(ctx, dir, asServer(t))
	if err != nil {
		t.Fatal(err)
	}
	h2, err := c2.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h2.Pid == h.Pid {
		t.Errorf("after kill -9: got the same pid %d", h.Pid)
	}
	if got := starts(t, dir); len(got) != 2 {
		t.Errorf("server starts: got %v, want 2", got)
	}
	stopServer(t, c2)
}

// TestEnsureReportsStartFailure: a server that exits at once is reported
// with its exit status and the end of its log.
func TestEnsureReportsStartFailure(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(LogFile(dir), []byte("an earlier server's line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Ensure(context.Background(), dir, withCommand(nil, "/bin/sh", "-c", `echo "serve: cannot open the store" >&2; exit 3`, "sh"))
	var se *StartError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want *StartError", err)
	}
	if se.Reason != "it exited with status 3" {
		t.Errorf("reason: got %q, want the exit status", se.Reason)
	}
	if se.Log != "serve: cannot open the store" {
		t.Errorf("log tail: got %q, want only this start's output", se.Log)
	}
	if !strings.Contains(err.Error(), "serve.log ends with:\nserve: cannot open the store") {
		t.Errorf("message: got %q, want the log tail", err.Error())
	}
}

// TestOtherUserRefused runs a client as another uid: with the socket as
// the server made it (0600) the kernel refuses the connection; with its
// permissions opened up by hand, the server's peer check refuses the
// request and logs it.
func TestOtherUserRefused(t *testing.T) {
	if os.Getuid() != 0 {
		testenv.Missing(t, "root", "run the tests as root to start a client as another uid")
	}
	s := startServer(t, false)
	// uid 65534 runs a copy of the test binary in a directory it can reach.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(t.TempDir(), "serve.test")
	if err := os.WriteFile(exe, self, 0o755); err != nil {
		t.Fatal(err)
	}
	asNobody := func(t *testing.T) map[string]any {
		t.Helper()
		cmd := exec.Command(exe, "--state-dir", s.dir)
		cmd.Env = append(os.Environ(), roleEnv+"=client")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("client as uid 65534: %v", err)
		}
		var got map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("client output %q: %v", out, err)
		}
		return got
	}
	// Let uid 65534 reach the state dir and the binary.
	for _, p := range []string{s.dir, filepath.Dir(exe)} {
		for d := p; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("socket mode", func(t *testing.T) {
		got := asNobody(t)
		if got["ok"] != false || got["eacces"] != true {
			t.Errorf("got %v, want the connection refused with EACCES", got)
		}
	})
	t.Run("peer check", func(t *testing.T) {
		if err := os.Chmod(SocketPath(s.dir), 0o666); err != nil {
			t.Fatal(err)
		}
		got := asNobody(t)
		if got["ok"] != false || got["code"] != CodeForbidden || got["forbidden"] != true {
			t.Errorf("got %v, want code %s", got, CodeForbidden)
		}
		if !strings.Contains(s.logs.String(), "refused a request from another user") || !strings.Contains(s.logs.String(), "peer_uid=65534") {
			t.Errorf("server log: got %q, want the refusal with the peer's uid", s.logs.String())
		}
	})
}
