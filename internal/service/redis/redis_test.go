package redis

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
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
