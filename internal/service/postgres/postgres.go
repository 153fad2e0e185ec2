// Package postgres provides the `postgres` service: a throwaway PostgreSQL
// server from the installed server binaries (initdb, postgres), on a free
// loopback port with its own data directory.
package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gantry-ci/gantry/internal/service"
	"github.com/gantry-ci/gantry/internal/service/localproc"
)

const install = "apt-get install postgresql (Debian/Ubuntu) or put PostgreSQL's bin directory on PATH"

// Provider starts PostgreSQL servers.
type Provider struct {
	// BinDir holds initdb and postgres; "" finds them on PATH or in
	// /usr/lib/postgresql/<newest>/bin.
	BinDir string
	// User runs the server when gantry runs as root (PostgreSQL refuses
	// root); default "postgres".
	User string
	// Database is created for the step; default "gantry".
	Database string
	// SystemDataRoot holds the kept clusters of a root gantry whose state
	// dir the server's user cannot reach (root's home is 0700); default
	// /var/lib/gantry/postgres.
	SystemDataRoot string
}

var (
	_ service.Provider = Provider{}
	_ service.Keeper   = Provider{}
)

// Instance is a running server.
// Instance is a running server.
type Instance struct {
	localproc.Instance
}

var _ service.Instance = (*Instance)(nil)

func (p Provider) bin(name string) (string, error) {
	if p.BinDir != "" {
		b := filepath.Join(p.BinDir, name)
		if fi, err := os.Stat(b); err != nil || fi.IsDir() {
			return "", fmt.Errorf("%s not found in %s: %w; install it with: %s", name, p.BinDir, localproc.ErrNotInstalled, install)
		}
		return b, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	return localproc.LookPath(name, install, dirs...)
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start implements service.Provider.
func (p Provider) Start(ctx context.Context, dir string) (service.Instance, error) {
	return p.start(ctx, dir, false)
}

// StartKept implements service.Keeper: the cluster lives in dir/data,
// created (with the database) only when dir holds none yet, and Stop leaves
// it there. As root the server's user must be able to reach dir.
func (p Provider) StartKept(ctx context.Context, dir string) (service.Instance, error) {
	return p.start(ctx, dir, true)
}

func (p Provider) start(ctx context.Context, dir string, keep bool) (service.Instance, error) {
	initdb, err := p.bin("initdb")
	if err != nil {
		return nil, fmt.Errorf("postgres service: %w", err)
	}
	// Debian links initdb into PATH; the other programs sit beside the
	// link's target.
	if real, err := filepath.EvalSymlinks(initdb); err == nil {
		initdb = real
	}
	server := filepath.Join(filepath.Dir(initdb), "postgres")
	if _, err := os.Stat(server); err != nil {
		if server, err = p.bin("postgres"); err != nil {
			return nil, fmt.Errorf("postgres service: %w", err)
		}
	}
	createdb := filepath.Join(filepath.Dir(initdb), "createdb")

	cred, err := p.credential()
	if err != nil {
		return nil, err
	}
	var dataDir string
	if keep {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("postgres service: %w", err)
		}
		dataDir = dir
	} else {
		// The data directory must be reachable by the server's user: as
		// root it gets a fresh directory of its own under the system temp
		// dir, since the step's dir may sit below directories only root
		// can enter.
		base := dir
		if cred != nil {
			base = ""
			sweep(os.TempDir())
		} else if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("postgres service: %w", err)
		}
		if dataDir, err = os.MkdirTemp(base, "gantry-postgres-"); err != nil {
			return nil, fmt.Errorf("postgres service: create data dir: %w", err)
		}
	}
	// A throwaway server is ended at once (SIGQUIT: immediate shutdown); a
	// kept one shuts down cleanly (SIGINT: fast shutdown, checkpointed).
	stop := syscall.SIGQUIT
	if keep {
		stop = syscall.SIGINT
	}
	inst := &Instance{localproc.Instance{Name: "postgres", DataDir: dataDir, StopSignal: stop, Keep: keep}}
	ok := false
	defer func() {
		if !ok && !keep {
			_ = os.RemoveAll(dataDir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dataDir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("postgres service: chown data dir: %w", err)
		}
		if keep && reachable(ctx, dataDir, cred) != nil {
			// The state dir sits below directories only root may enter
			// (root's home is 0700): keep the cluster in a directory of
			// its own under SystemDataRoot, named after dir so that the
			// same environment finds it again.
			if dataDir, err = p.systemDataDir(dir, cred); err != nil {
				return nil, err
			}
			inst.DataDir = dataDir
			if err := reachable(ctx, dataDir, cred); err != nil {
				return nil, err
			}
		}
	}
	pgdata := filepath.Join(dataDir, "data")
	const superuser = "gantry"
	run := func(name string, args ...string) error {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = dataDir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LANG=C", "LC_ALL=C"}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", filepath.Base(name), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	_, err = os.Stat(filepath.Join(pgdata, "PG_VERSION"))
	fresh := err != nil
	if fresh {
		// A kept directory that initdb left half done is started over.
		_ = os.RemoveAll(pgdata)
		if err := run(initdb, "-D", pgdata, "-U", superuser, "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"); err != nil {
			return nil, fmt.Errorf("postgres service: %w", err)
		}
	}
	port, err := localproc.FreePort()
	if err != nil {
		return nil, err
	}
	args := []string{"-D", pgdata, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + dataDir}
	if !keep {
		// Throwaway data: durability is not worth its cost. Kept data
		// keeps PostgreSQL's defaults, so that a commit survives gantry
		// being killed.
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := exec.Command(server, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Env = []string{"LANG=C", "LC_ALL=C"}
	inst.Proc, err = localproc.Start(ctx, "postgres", cmd)
	if err != nil {
		return nil, fmt.Errorf("postgres service: %w", err)
	}
	isready := filepath.Join(filepath.Dir(initdb), "pg_isready")
	ready := localproc.TCPReady(localproc.Addr(port))
	if _, err := os.Stat(isready); err == nil {
		ready = func(ctx context.Context) error {
			out, err := exec.CommandContext(ctx, isready, "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", superuser, "-d", "postgres").CombinedOutput()
			if err != nil {
				return fmt.Errorf("pg_isready: %w %s", err, out)
			}
			return nil
		}
	}
	if err := inst.Proc.WaitReady(ctx, ready); err != nil {
		_ = inst.Proc.Stop(context.WithoutCancel(ctx), syscall.SIGQUIT)
		return nil, fmt.Errorf("postgres service: %w", err)
	}
	db := p.Database
	if db == "" {
		db = "gantry"
	}
	if !fresh {
		// The database was created with the cluster.
	} else if err := run(createdb, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", superuser, db); err != nil {
		_ = inst.Proc.Stop(context.WithoutCancel(ctx), syscall.SIGQUIT)
		return nil, fmt.Errorf("postgres service: %w", err)
	}
	u := url.URL{Scheme: "postgres", User: url.User(superuser), Host: localproc.Addr(port), Path: "/" + db, RawQuery: "sslmode=disable"}
	inst.Vars = map[string]string{
		"DATABASE_URL": u.String(),
		"PGHOST":       "127.0.0.1",
		"PGPORT":       strconv.Itoa(port),
		"PGUSER":       superuser,
		"PGDATABASE":   db,
		"PGSSLMODE":    "disable",
	}
	ok = true
	return inst, nil
}

// sweep removes data directories of earlier servers whose gantry was
// killed before it could stop them: no postmaster.pid naming a live
// process, and older than a minute (a directory being initialised has no
// pid file yet).
func sweep(tmp string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, "gantry-postgres-*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			if pid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && syscall.Kill(pid, 0) == nil {
				continue
			}
		}
		_ = os.RemoveAll(d)
	}
}

// systemDataDir is the kept data directory of dir under SystemDataRoot:
// named after dir's absolute path, so the same environment finds its
// cluster again, owned by the server's user. A note in dir says where the
// data went.
func (p Provider) systemDataDir(dir string, cred *syscall.Credential) (string, error) {
	root := p.SystemDataRoot
	if root == "" {
		root = "/var/lib/gantry/postgres"
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("postgres service: %w", err)
	}
	sum := sha256.Sum256([]byte(abs))
	d := filepath.Join(root, hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("postgres service: kept data root: %w", err)
	}
	if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("postgres service: kept data dir: %w", err)
	}
	if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
		return "", fmt.Errorf("postgres service: chown kept data dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "DATA-LOCATION"), []byte(d+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("postgres service: %w", err)
	}
	return d, nil
}

// reachable checks that the server's user can write in dir: a kept data
// directory sits where gantry put it, maybe below directories only root
// may enter.
func reachable(ctx context.Context, dir string, cred *syscall.Credential) error {
	cmd := exec.CommandContext(ctx, "test", "-w", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("postgres service: the server's user (uid %d) cannot reach its data directory %s (%v): "+
			"let others search the directories above it (chmod o+x) or run gantry as a user other than root", cred.Uid, dir, err)
	}
	return nil
}

func (p Provider) credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	name := p.User
	if name == "" {
		name = "postgres"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("postgres service: PostgreSQL does not run as root and user %q does not exist (%v); create it or %s", name, err, install)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}
