package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/service/localproc"
	"github.com/gantry-ci/gantry/internal/service/postgres"
	"github.com/gantry-ci/gantry/internal/store"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// replica is one `gantry serve` on the shared PostgreSQL, with its own
// state dir, as on its own machine.
type replica struct {
	name  string
	state string
	cmd   *exec.Cmd
	logs  *bytes.Buffer
	api   *http.Client
}

func startReplica(t *testing.T, name, dbURL string, args ...string) *replica {
	t.Helper()
	r := &replica{name: name, state: t.TempDir(), logs: &bytes.Buffer{}}
	r.cmd = exec.Command(gantryBin, append([]string{"--state-dir", r.state, "serve"}, args...)...)
	// The store URL reaches the replica through its environment, as
	// docs/postgres.md advises.
	r.cmd.Env = append(os.Environ(), "NO_COLOR=1", "GANTRY_STORE="+dbURL)
	r.cmd.Stderr = r.logs
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(r.state, "gantry.sock")
	r.api = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	t.Cleanup(func() {
		if r.cmd.ProcessState == nil {
			_ = r.cmd.Process.Signal(syscall.SIGTERM)
			_ = r.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("replica %s logs:\n%s", r.name, r.logs.String())
		}
	})
	// Ready once the socket answers the API.
	for {
		resp, err := r.api.Get("http://gantry/api/v1/queue/q-0000000000000000")
		if err == nil {
			resp.Body.Close()
			return r
		}
		var ws syscall.WaitStatus
		if pid, _ := syscall.Wait4(r.cmd.Process.Pid, &ws, syscall.WNOHANG, nil); pid == r.cmd.Process.Pid {
			t.Fatalf("replica %s exited with %d before it answered:\n%s", name, ws.ExitStatus(), r.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// post sends a JSON request to the replica's API and decodes the answer.
func (r *replica) post(t *testing.T, path string, body any, want int) map[string]any {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	resp, err := r.api.Post("http://gantry"+path, "application/json", rd)
	if err != nil {
		t.Fatalf("POST %s to %s: %v", path, r.name, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != want {
		t.Fatalf("POST %s to %s: got %d %v, want %d", path, r.name, resp.StatusCode, out, want)
	}
	return out
}

// TestReplicasShareAQueue is issue 14's "two server replicas on one
// PostgreSQL running 50 queued runs with none run twice and none lost
// when one replica is killed": two `gantry serve` processes share one
// real PostgreSQL; 50 runs of a one-step pipeline are queued through
// one of them; the other is killed with SIGKILL while it runs some. The
// survivor marks the dead replica's runs interrupted once their leases
// lapse; they are retried through the API and run to success. Every
// execution of the step appends "N RUNID" to a file: each of the 50
// items passes exactly once, no run executes its step twice, only an
// interrupted item has a second execution (its retry), and no run of the
// dead replica is left running.
func TestReplicasShareAQueue(t *testing.T) {
	const runs = 50
	ctx := context.Background()
	bed := newReplicaBed(t, 2)
	e, executions, sha, st := bed.e, bed.executions, bed.sha, bed.st
	serveArgs := []string{"--workers", "3", "--lease", "6s", "--allow-local-repos"}
	a := startReplica(t, "a", bed.dbURL, serveArgs...)
	b := startReplica(t, "b", bed.dbURL, serveArgs...)

	start := time.Now()
	for i := range runs {
		a.post(t, "/api/v1/runs", map[string]any{"repo": e.repo, "ref": fmt.Sprintf("b%d", i), "sha": sha,
			"vars": map[string]string{"n": strconv.Itoa(i)}}, http.StatusAccepted)
	}
	t.Logf("%s: %d runs queued through replica a", time.Since(start).Round(time.Millisecond), runs)

	ownedBy := func(it store.QueueItem, r *replica) bool {
		return strings.Contains(it.Owner, "/"+strconv.Itoa(r.cmd.Process.Pid)+"/")
	}
	items := func() []store.QueueItem {
		t.Helper()
		its, err := st.QueueItems(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		return its
	}
	count := func(its []store.QueueItem) map[store.QueueState]int {
		n := map[store.QueueState]int{}
		for _, it := range its {
			n[it.State]++
		}
		return n
	}

	// Kill b once a few runs passed and b runs some.
	var killed []string // items b was running
	deadline := time.Now().Add(3 * time.Minute)
	for killed == nil {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for replica b to run items; queue: %v", count(items()))
		}
		its := items()
		var bRuns []string
		inStep := false // one of b's runs executes its step
		execs := executedRuns(t, executions)
		for _, it := range its {
			if it.State == store.QueueRunning && ownedBy(it, b) {
				bRuns = append(bRuns, it.ID)
				inStep = inStep || (it.RunID != 0 && execs[it.RunID])
			}
		}
		if n := count(its); n[store.QueuePassed] >= 6 && inStep {
			if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = b.cmd.Wait()
			killed = bRuns
			t.Logf("%s: replica b SIGKILLed while running %d items; queue: %v", time.Since(start).Round(time.Millisecond), len(bRuns), n)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The survivor interrupts b's items once their leases lapse; retry
	// them until every item passed.
	retried := map[string]int{}
	last := time.Now()
	for {
		its := items()
		n := count(its)
		if n[store.QueuePassed] == runs {
			break
		}
		for _, it := range its {
			switch it.State {
			case store.QueueInterrupted:
				a.post(t, "/api/v1/queue/"+it.ID+"/retry", nil, http.StatusAccepted)
				retried[it.ID]++
			case store.QueueFailed, store.QueueCancelled, store.QueueWaiting:
				t.Fatalf("item %s ended %s: %s", it.ID, it.State, it.Message)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for the runs to pass; queue: %v", n)
		}
		if time.Since(last) > 5*time.Second {
			t.Logf("%s: queue: %v, retried %d", time.Since(start).Round(time.Millisecond), n, len(retried))
			last = time.Now()
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%s: all %d runs passed; %d items were interrupted and retried", time.Since(start).Round(time.Millisecond), runs, len(retried))
	for _, id := range killed {
		if retried[id] == 0 {
			t.Errorf("item %s, running on the killed replica, was never interrupted and retried", id)
		}
	}

	// No run of the dead replica is left running: its children stopped.
	var stillRunning []store.Run
	for {
		var err error
		stillRunning, err = st.ListRuns(ctx, store.ListOptions{Status: store.StatusRunning})
		if err != nil {
			t.Fatal(err)
		}
		if len(stillRunning) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, r := range stillRunning {
		t.Errorf("run %d is still running after every item passed", r.ID)
	}

	// Read back the executions.
	f, err := os.Open(executions)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	byRun := map[int64]int{}
	byItem := map[string][]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var n int
		var run int64
		if _, err := fmt.Sscanf(sc.Text(), "%d %d", &n, &run); err != nil {
			t.Fatalf("executions line %q: %v", sc.Text(), err)
		}
		byRun[run]++
		byItem[strconv.Itoa(n)] = append(byItem[strconv.Itoa(n)], run)
	}
	for run, k := range byRun {
		if k != 1 {
			t.Errorf("run %d executed its step %d times, want once", run, k)
		}
	}
	its := items()
	if len(its) != runs {
		t.Fatalf("queue holds %d items, want %d", len(its), runs)
	}
	passedRuns := map[int64]bool{}
	for _, it := range its {
		n := it.Vars["n"]
		if it.State != store.QueuePassed {
			t.Errorf("item %s (n=%s) is %s, want passed", it.ID, n, it.State)
			continue
		}
		run, err := st.GetRun(ctx, it.RunID)
		if err != nil {
			t.Errorf("item %s: its run %d: %v", it.ID, it.RunID, err)
			continue
		}
		if run.Status != store.StatusPassed {
			t.Errorf("item %s passed, but its run %d is %s", it.ID, run.ID, run.Status)
		}
		passedRuns[run.ID] = true
		execs := byItem[n]
		if len(execs) == 0 || execs[len(execs)-1] != it.RunID {
			t.Errorf("item %s (n=%s): executions %v, want the last by its run %d", it.ID, n, execs, it.RunID)
		}
		if want := 1 + retried[it.ID]; len(execs) > want || (retried[it.ID] == 0 && len(execs) != 1) {
			t.Errorf("item %s (n=%s) executed %d times (runs %v), retried %d times", it.ID, n, len(execs), execs, retried[it.ID])
		}
		for _, r := range execs[:max(len(execs)-1, 0)] {
			prev, err := st.GetRun(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if prev.Status == store.StatusPassed || prev.Status == store.StatusRunning {
				t.Errorf("item %s: the attempt before its retry, run %d, is %s, want it stopped", it.ID, r, prev.Status)
			}
		}
	}
	all, err := st.ListRuns(ctx, store.ListOptions{Status: store.StatusPassed})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != runs || len(passedRuns) != runs {
		t.Errorf("passed runs: %d in the store, %d distinct of the items, want %d", len(all), len(passedRuns), runs)
	}
	t.Logf("%s: checked %d executions of %d runs", time.Since(start).Round(time.Millisecond), len(byRun), runs)
}

// executedRuns returns the runs that appended their line to the
// executions file so far.
func executedRuns(t *testing.T, path string) map[int64]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if _, run, ok := strings.Cut(line, " "); ok {
			if id, err := strconv.ParseInt(run, 10, 64); err == nil {
				out[id] = true
			}
		}
	}
	return out
}

// replicaBed is a real PostgreSQL, the store on it, and a repository
// whose one step appends "N RUNID" to executions, then sleeps.
type replicaBed struct {
	dbURL      string
	e          *env
	executions string
	sha        string
	st         *store.Store
}

func newReplicaBed(t *testing.T, sleepSeconds int) *replicaBed {
	t.Helper()
	ctx := context.Background()
	inst, err := postgres.Provider{Database: "gantry"}.Start(ctx, os.TempDir())
	if errors.Is(err, localproc.ErrNotInstalled) {
		testenv.Missing(t, "postgres", err.Error())
	}
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(func() { _ = inst.Stop(context.Background()) })
	bed := &replicaBed{dbURL: inst.Env()["DATABASE_URL"], e: newEnv(t), executions: filepath.Join(t.TempDir(), "executions")}
	bed.e.write(".gantry/pipeline.yaml", fmt.Sprintf(`name: replicas
vars:
  n: ""
stages:
  - name: s
    steps:
      - name: count
        env: {N: "${vars.n}", LOG: "%s"}
        run: |
          echo "$N $GANTRY_RUN_ID" >> "$LOG"
          sleep %d
`, bed.executions, sleepSeconds))
	bed.e.commitAll("pipeline")
	bed.sha = bed.e.git("rev-parse", "HEAD")
	bed.st, err = store.Open(ctx, t.TempDir(), store.WithURL(bed.dbURL))
	if err != nil {
		t.Fatalf("open the shared store: %v", err)
	}
	t.Cleanup(func() { bed.st.Close() })
	return bed
}

// TestFrozenReplicaChildrenStop: a replica that stops renewing its
// leases without dying (SIGSTOP: a frozen VM, a replica cut off from the
// database) has its runs declared interrupted by the survivor; its
// children, which still run, notice that their items' claims were lost
// and stop their runs (recorded cancelled) instead of finishing them as
// if nothing happened beside their retries. Once thawed, the replica
// does not record an outcome over the interrupted items.
func TestFrozenReplicaChildrenStop(t *testing.T) {
	ctx := context.Background()
	bed := newReplicaBed(t, 40)
	serveArgs := []string{"--workers", "2", "--lease", "6s", "--allow-local-repos"}
	a := startReplica(t, "a", bed.dbURL, serveArgs...)
	b := startReplica(t, "b", bed.dbURL, serveArgs...)
	for i := range 4 {
		a.post(t, "/api/v1/runs", map[string]any{"repo": bed.e.repo, "ref": fmt.Sprintf("b%d", i), "sha": bed.sha,
			"vars": map[string]string{"n": strconv.Itoa(i)}}, http.StatusAccepted)
	}
	ownedByB := func(it store.QueueItem) bool {
		return strings.Contains(it.Owner, "/"+strconv.Itoa(b.cmd.Process.Pid)+"/")
	}
	// Freeze b once one of its runs executes its step.
	deadline := time.Now().Add(3 * time.Minute)
	var frozen []store.QueueItem
	for frozen == nil {
		if time.Now().After(deadline) {
			t.Fatal("gave up waiting for replica b to run a step")
		}
		its, err := bed.st.QueueItems(ctx, store.QueueRunning)
		if err != nil {
			t.Fatal(err)
		}
		execs := executedRuns(t, bed.executions)
		for _, it := range its {
			if ownedByB(it) && it.RunID != 0 && execs[it.RunID] {
				frozen = append(frozen, it)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := b.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.cmd.Process.Signal(syscall.SIGCONT) })
	t.Logf("replica b frozen while %d of its runs execute their step", len(frozen))
	for _, it := range frozen {
		for {
			got, err := bed.st.QueueItem(ctx, it.ID)
			if err != nil {
				t.Fatal(err)
			}
			run, err := bed.st.GetRun(ctx, it.RunID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State == store.QueueInterrupted && run.Status.Done() {
				if run.Status != store.StatusCancelled {
					t.Errorf("run %d of interrupted item %s ended %s, want cancelled", run.ID, it.ID, run.Status)
				}
				break
			}
			if got.State != store.QueueRunning && got.State != store.QueueInterrupted {
				t.Fatalf("item %s of the frozen replica is %s, want interrupted", it.ID, got.State)
			}
			if time.Now().After(deadline) {
				t.Fatalf("item %s is %s and its run %d %s: the frozen replica's child did not stop", it.ID, got.State, run.ID, run.Status)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// Thawed, b finds its leases lost and leaves the items interrupted.
	if err := b.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(b.logs.String(), "lost its lease") {
		if time.Now().After(deadline) {
			t.Fatalf("the thawed replica never noticed its lost leases:\n%s", b.logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, it := range frozen {
		got, err := bed.st.QueueItem(ctx, it.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != store.QueueInterrupted {
			t.Errorf("item %s after the replica thawed: %s, want interrupted", it.ID, got.State)
		}
	}
}
