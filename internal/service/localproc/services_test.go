package localproc_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/service"
	"github.com/gantry-ci/gantry/internal/service/postgres"
	"github.com/gantry-ci/gantry/internal/service/redis"
	"github.com/gantry-ci/gantry/internal/service/sqs"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// The test binary re-executes itself as a stand-in for gantry: it starts
// the services, prints their env, and stops them when interrupted, the way
// the engine does on Ctrl-C.
func TestMain(m *testing.M) {
	if os.Getenv("GANTRY_TEST_SERVICE_HELPER") != "" {
		os.Exit(helper())
	}
	os.Exit(m.Run())
}

func providers() map[string]service.Provider {
	return map[string]service.Provider{"postgres": postgres.Provider{}, "redis": redis.Provider{}, "sqs": sqs.Provider{}}
}

func helper() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir := os.Getenv("GANTRY_TEST_SERVICE_DIR")
	var started []service.Instance
	for _, name := range strings.Split(os.Getenv("GANTRY_TEST_SERVICE_HELPER"), ",") {
		inst, err := providers()[name].Start(ctx, filepath.Join(dir, name))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		started = append(started, inst)
		env := inst.Env()
		env["PID"] = fmt.Sprint(inst.(interface{ Pid() int }).Pid())
		env["NAME"] = name
		b, _ := json.Marshal(env)
		fmt.Println(string(b))
	}
	fmt.Println("READY")
	<-ctx.Done()
	for _, inst := range started {
		_ = inst.Stop(context.Background())
	}
	return 0
}

func available(t *testing.T, name string) {
	t.Helper()
	switch name {
	case "postgres":
		if _, err := exec.LookPath("initdb"); err != nil {
			if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) == 0 {
				testenv.Missing(t, "initdb", "apt-get install postgresql")
			}
		}
	case "redis":
		if _, err := exec.LookPath("redis-server"); err != nil {
			testenv.Missing(t, "redis-server", "apt-get install redis-server")
		}
	case "sqs":
		if err := (sqs.Provider{}).Check(context.Background()); err != nil {
			testenv.Missing(t, "an SQS server", err.Error())
		}
	}
}

func hostPort(t *testing.T, name string, env map[string]string) string {
	t.Helper()
	key := map[string]string{"postgres": "DATABASE_URL", "redis": "REDIS_URL", "sqs": "SQS_ENDPOINT"}[name]
	u, err := url.Parse(env[key])
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// TestCtrlC starts every service in a child process, interrupts it like
// Ctrl-C, and checks nothing is left: no process, no port, no data dir.
// Then it does the same with SIGKILL, where only the kernel's parent-death
// signal can clean up the processes.
func TestCtrlC(t *testing.T) {
	for _, name := range []string{"postgres", "redis", "sqs"} {
		available(t, name)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "GANTRY_TEST_SERVICE_HELPER=postgres,redis,sqs", "GANTRY_TEST_SERVICE_DIR="+dir)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var envs []map[string]string
			sc := bufio.NewScanner(out)
			for sc.Scan() && sc.Text() != "READY" {
				m := map[string]string{}
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
					t.Fatalf("helper said %q", sc.Text())
				}
				envs = append(envs, m)
			}
			if len(envs) != 3 {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("helper started %d services, want 3", len(envs))
			}
			for _, env := range envs {
				if c, err := net.DialTimeout("tcp", hostPort(t, env["NAME"], env), time.Second); err != nil {
					t.Errorf("%s not reachable while running: %v", env["NAME"], err)
				} else {
					c.Close()
				}
			}
			_ = cmd.Process.Signal(sig)
			go io.Copy(io.Discard, out)
			_ = cmd.Wait()
			for _, env := range envs {
				var pid int
				fmt.Sscan(env["PID"], &pid)
				assertGone(t, pid, hostPort(t, env["NAME"], env))
			}
			if sig == syscall.SIGINT {
				for _, name := range []string{"redis", "sqs"} {
					left, _ := os.ReadDir(filepath.Join(dir, name))
					if len(left) != 0 {
						t.Errorf("%s left %d entries in its dir", name, len(left))
					}
				}
			}
		})
	}
}
