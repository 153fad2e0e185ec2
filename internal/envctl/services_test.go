package envctl

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/service"
	"github.com/gantry-ci/gantry/internal/service/postgres"
	"github.com/gantry-ci/gantry/internal/service/redis"
	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/gantry-ci/gantry/internal/testload"
)

// TestPostgresDataSurvivesRedeployAndRestart: a row written through the
// environment's PostgreSQL is there after a redeploy and after the
// controller is closed and started again (a `gantry serve` restart).
func TestPostgresDataSurvivesRedeployAndRestart(t *testing.T) {
	testenv.RequireTool(t, "initdb", "apt-get install postgresql")
	psql := testenv.RequireTool(t, "psql", "apt-get install postgresql-client")
	// As root PostgreSQL runs as its own user, who must reach the state
	// dir: t.TempDir's parent is private to root.
	state, err := os.MkdirTemp("", "envctl-state-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	if err := os.Chmod(state, 0o755); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, stateDir: state, adm: &refuser{refuse: map[string]bool{}},
		services: map[string]service.Provider{"postgres": postgres.Provider{}}}
	f.open()
	spec := runtime.EnvironmentSpec{Services: []string{"postgres"}}
	deploy := func(version string) {
		t.Helper()
		_, err := f.ctl.Deploy(context.Background(), runtime.DeployRequest{Environment: "staging", Spec: spec,
			Workloads: []runtime.Workload{f.workload(version, 1, "")}, Who: "tester"})
		if err != nil {
			t.Fatal(err)
		}
	}
	psqlRun := func(sql string) string {
		t.Helper()
		dbURL := testload.Get(t, f.url("staging")+"/env/DATABASE_URL")
		if !strings.HasPrefix(dbURL, "postgres://") {
			t.Fatalf("the instance sees DATABASE_URL=%q, want the environment's PostgreSQL", dbURL)
		}
		out, err := exec.Command(psql, dbURL, "-tA", "-c", sql).CombinedOutput()
		if err != nil {
			t.Fatalf("psql %q: %v: %s", sql, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	deploy("v1")
	psqlRun("create table payments(id int); insert into payments values (7)")
	deploy("v2")
	if got := psqlRun("select id from payments"); got != "7" {
		t.Errorf("after a redeploy: select = %q, want 7", got)
	}
	if _, err := os.Stat(filepath.Join(state, "envs", "staging", "services", "postgres", "data", "PG_VERSION")); err != nil {
		t.Errorf("the cluster is not under the environment's services dir: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.ctl.Close(ctx); err != nil {
		t.Fatal(err)
	}
	f.store.Close()
	f.open()
	f.run()
	waitFor(t, 30*time.Second, "environment not back after the restart", func() error {
		st, err := f.ctl.Status(ctx, "staging")
		if err == nil && (len(st.Instances) != 1 || st.Instances[0].State != "running") {
			err = fmt.Errorf("instances %+v, want 1 running", st.Instances)
		}
		return err
	})
	// Running is not serving: the proxy takes the instance once its
	// readiness probe passes.
	waitFor(t, 30*time.Second, "staging does not answer after the restart", func() error { return answers(f.url("staging")) })
	if got := psqlRun("select id from payments"); got != "7" {
		t.Errorf("after a restart: select = %q, want 7", got)
	}
}

// TestEndedServiceStartsAgain: a service whose server dies is started
// again on its data, and the instances restart with its new address.
func TestEndedServiceStartsAgain(t *testing.T) {
	testenv.RequireTool(t, "redis-server", "apt-get install redis-server")
	f := newFixture(t)
	f.services = map[string]service.Provider{"redis": redis.Provider{}}
	f.open() // a second controller, with the services, on the same state
	f.run()
	_, err := f.ctl.Deploy(context.Background(), runtime.DeployRequest{Environment: "staging",
		Spec: runtime.EnvironmentSpec{Services: []string{"redis"}}, Workloads: []runtime.Workload{f.workload("v1", 1, "")}})
	if err != nil {
		t.Fatal(err)
	}
	url := f.url("staging")
	before := testload.Get(t, url+"/env/REDIS_ADDR")
	f.ctl.mu.Lock()
	en := f.ctl.envs["staging"]
	f.ctl.mu.Unlock()
	en.mu.Lock()
	srv := en.services["redis"].(*redis.Instance)
	en.mu.Unlock()
	if err := syscall.Kill(srv.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/env/REDIS_ADDR")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := string(b); resp.StatusCode == 200 && got != before && got != "" {
				c, err := net.Dial("tcp", got)
				if err != nil {
					t.Fatalf("the new redis address %s does not answer: %v", got, err)
				}
				c.Close()
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("instances still see REDIS_ADDR=%s after redis died", before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recordingTracker records the process groups reported to it.
type recordingTracker struct{ started atomic.Int64 }

func (r *recordingTracker) Started(context.Context, proc.Group) error { r.started.Add(1); return nil }
func (r *recordingTracker) Ended(context.Context, proc.Group) error   { return nil }

// TestServicesOutliveTheCallersTracker: a deploy called with a run step's
// process tracker in its context (which ends the step's processes with the
// run) does not hand the environment's services to it.
func TestServicesOutliveTheCallersTracker(t *testing.T) {
	testenv.RequireTool(t, "redis-server", "apt-get install redis-server")
	f := newFixture(t)
	f.services = map[string]service.Provider{"redis": redis.Provider{}}
	f.open()
	tr := &recordingTracker{}
	ctx := proc.WithTracker(context.Background(), tr)
	_, err := f.ctl.Deploy(ctx, runtime.DeployRequest{Environment: "staging",
		Spec: runtime.EnvironmentSpec{Services: []string{"redis"}}, Workloads: []runtime.Workload{f.workload("v1", 1, "")}})
	if err != nil {
		t.Fatal(err)
	}
	if n := tr.started.Load(); n != 0 {
		t.Errorf("the caller's tracker was told of %d process groups, want 0", n)
	}
}
