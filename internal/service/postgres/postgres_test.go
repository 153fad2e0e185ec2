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

func TestStartKeptKeepsData(t *testing.T) {
	p := Provider{}
	if _, err := p.bin("initdb"); err != nil {
		testenv.Missing(t, "initdb", err.Error())
	}
	psql := testenv.RequireTool(t, "psql", "apt-get install postgresql-client")
	ctx := context.Background()
	// As root the server runs as another user, who must reach the
	// directory: the test's own temp dir is private to root.
	dir, err := os.MkdirTemp("", "gantry-kept-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(dir, "postgres")
	query := func(inst interface{ Env() map[string]string }, sql string) string {
		t.Helper()
		out, err := exec.Command(psql, inst.Env()["DATABASE_URL"], "-tA", "-c", sql).CombinedOutput()
		if err != nil {
			t.Fatalf("psql %q: %v: %s", sql, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	first, err := p.StartKept(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	query(first, "create table t(x int); insert into t values (42)")
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); err != nil {
		t.Fatalf("data left after Stop: %v", err)
	}
	second, err := p.StartKept(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := query(second, "select x from t"); got != "42" {
		t.Errorf("after restart select = %q, want 42", got)
	}
	// A killed gantry takes its servers with it (SIGKILL): what was
	// committed is there on the next start.
	query(second, "insert into t values (43)")
	if err := syscall.Kill(second.(*Instance).Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := second.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	third, err := p.StartKept(ctx, dir)
	if err != nil {
		t.Fatalf("start after a kill: %v", err)
	}
	defer third.Stop(ctx)
	if got := query(third, "select sum(x) from t"); got != "85" {
		t.Errorf("after a kill select sum = %q, want 85", got)
	}
}

func TestStartKeptUnreachableDir(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root", "only root runs the server as another user")
	}
	system := filepath.Join(t.TempDir(), "system")
	p := Provider{SystemDataRoot: system}
	if _, err := p.bin("initdb"); err != nil {
		testenv.Missing(t, "initdb", err.Error())
	}
	if _, err := p.credential(); err != nil {
		testenv.Missing(t, "the postgres user", err.Error())
	}
	// t.TempDir's parent is 0700, like root's home: the server's user can
	// reach neither dir nor, until it is opened up, the system root's parent.
	if err := os.Chmod(filepath.Dir(system), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(filepath.Dir(system)), 0o711); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "private", "postgres")
	ctx := context.Background()
	inst, err := p.StartKept(ctx, dir)
	if err != nil {
		t.Fatalf("StartKept below a private directory: %v", err)
	}
	moved, err := os.ReadFile(filepath.Join(dir, "DATA-LOCATION"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(moved), system+"/") {
		t.Errorf("DATA-LOCATION = %q, want a directory under %s", moved, system)
	}
	if err := inst.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	again, err := p.StartKept(ctx, dir)
	if err != nil {
		t.Fatalf("StartKept again: %v", err)
	}
	defer again.Stop(ctx)
	if got := again.(*Instance).DataDir; got != strings.TrimSpace(string(moved)) {
		t.Errorf("second start keeps its data in %s, want %s", got, moved)
	}
}
