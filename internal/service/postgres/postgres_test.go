package postgres

import (
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
)

func TestStartUseStop(t *testing.T) {
	p := Provider{}
	initdb, err := p.bin("initdb")
	if err != nil {
		t.Skipf("%v", err)
	}
	ctx := context.Background()
	inst, err := p.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pg := inst.(*Instance)
	env := inst.Env()
	if !strings.HasPrefix(env["DATABASE_URL"], "postgres://gantry@127.0.0.1:") {
		t.Errorf("DATABASE_URL = %q", env["DATABASE_URL"])
	}
	if real, err := filepath.EvalSymlinks(initdb); err == nil {
		initdb = real
	}
	psql := filepath.Join(filepath.Dir(initdb), "psql")
	out, err := exec.Command(psql, env["DATABASE_URL"], "-tA", "-c",
		"create table t(x int); insert into t values (41),(1); select sum(x) from t").CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v: %s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "42"; !strings.HasSuffix(got, want) {
		t.Errorf("select sum = %q, want %q", got, want)
	}
	addr := net.JoinHostPort(env["PGHOST"], env["PGPORT"])
	if err := inst.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pg.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("postgres %d still running (kill 0: %v)", pg.Pid(), err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still listening", addr)
	}
	if _, err := os.Stat(pg.dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data dir left: %v", err)
	}
}

func TestMissingBinaryNamesPackage(t *testing.T) {
	_, err := Provider{BinDir: t.TempDir()}.Start(context.Background(), t.TempDir())
	if !errors.Is(err, localproc.ErrNotInstalled) || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Errorf("err = %v, want not-installed naming the postgresql package", err)
	}
}
