package postgres

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/service/localproc"
	"github.com/gantry-ci/gantry/internal/testenv"
)

func TestStartUseStop(t *testing.T) {
	p := Provider{}
	initdb, err := p.bin("initdb")
	if err != nil {
		testenv.Missing(t, "initdb", err.Error())
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
	if _, err := os.Stat(pg.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data dir left: %v", err)
	}
}

func TestMissingBinaryNamesPackage(t *testing.T) {
	_, err := Provider{BinDir: t.TempDir()}.Start(context.Background(), t.TempDir())
	if !errors.Is(err, localproc.ErrNotInstalled) || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Errorf("err = %v, want not-installed naming the postgresql package", err)
	}
}

func TestSweepRemovesDeadOnly(t *testing.T) {
	tmp := t.TempDir()
	mk := func(name, pid string) string {
		d := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Join(d, "data"), 0o700); err != nil {
			t.Fatal(err)
		}
		if pid != "" {
			if err := os.WriteFile(filepath.Join(d, "data", "postmaster.pid"), []byte(pid+"\n/x\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(d, old, old); err != nil {
			t.Fatal(err)
		}
		return d
	}
	live := mk("gantry-postgres-live", strconv.Itoa(os.Getpid()))
	dead := mk("gantry-postgres-dead", "999999999")
	nopid := mk("gantry-postgres-nopid", "")
	sweep(tmp)
	if _, err := os.Stat(live); err != nil {
		t.Errorf("swept the dir of a live server: %v", err)
	}
	for _, d := range []string{dead, nopid} {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s not swept", d)
		}
	}
}
