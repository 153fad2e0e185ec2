package redis

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/service/localproc"
	"github.com/gantry-ci/gantry/internal/testenv"
)

func TestStartUseStop(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		testenv.Missing(t, "redis-server", "apt-get install redis-server")
	}
	ctx := context.Background()
	inst, err := Provider{}.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := inst.(*Instance)
	addr := inst.Env()["REDIS_ADDR"]
	if got := inst.Env()["REDIS_URL"]; got != "redis://"+addr+"/0" {
		t.Errorf("REDIS_URL = %q", got)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("SET k v42\r\nGET k\r\n"))
	br := bufio.NewReader(c)
	var lines []string
	for range 3 {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.TrimSpace(l))
	}
	c.Close()
	if got, want := strings.Join(lines, " "), "+OK $3 v42"; got != want {
		t.Errorf("SET/GET answered %q, want %q", got, want)
	}
	if err := inst.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(r.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("redis %d still running", r.Pid())
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still listening", addr)
	}
	if _, err := os.Stat(r.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data dir left: %v", err)
	}
}

func TestMissingBinaryNamesPackage(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Provider{}.Start(context.Background(), t.TempDir())
	if !errors.Is(err, localproc.ErrNotInstalled) || !strings.Contains(err.Error(), "apt-get install redis-server") {
		t.Errorf("err = %v", err)
	}
}

// do sends one command line and returns the answer's lines (n of them).
func do(t *testing.T, addr, cmd string, n int) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var lines []string
	for range n {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.TrimSpace(l))
	}
	return strings.Join(lines, " ")
}

func TestStartKeptKeepsData(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		testenv.Missing(t, "redis-server", "apt-get install redis-server")
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "redis")
	first, err := Provider{}.StartKept(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := do(t, first.Env()["REDIS_ADDR"], "SET k v42", 1); got != "+OK" {
		t.Fatalf("SET answered %q", got)
	}
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	second, err := Provider{}.StartKept(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := do(t, second.Env()["REDIS_ADDR"], "GET k", 2); got != "$3 v42" {
		t.Errorf("after a restart GET answered %q, want $3 v42", got)
	}
	// A killed gantry takes the server with it: what it acknowledged is
	// there on the next start.
	if got := do(t, second.Env()["REDIS_ADDR"], "SET k2 v43", 1); got != "+OK" {
		t.Fatalf("SET answered %q", got)
	}
	if err := syscall.Kill(second.(*Instance).Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := second.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	third, err := Provider{}.StartKept(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Stop(ctx)
	if got := do(t, third.Env()["REDIS_ADDR"], "MGET k k2", 5); got != "*2 $3 v42 $3 v43" {
		t.Errorf("after a kill MGET answered %q, want both values", got)
	}
}
