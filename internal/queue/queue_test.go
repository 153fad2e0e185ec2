package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/store"
)

// The queue's children are this test binary in helper mode: it parses the
// gantry run flags the worker passes, records a real run in the store
// (as gantry run does through its queue observer) and behaves as its
// --var values say: exit=N exits N, gate=PATH waits until PATH exists (or
// SIGTERM: exit 130). Every child leaves STATE/started/<item or run>.
func TestMain(m *testing.M) {
	if os.Getenv("GANTRY_QUEUE_HELPER") == "1" {
		os.Exit(helper(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func helper(args []string) int {
	var state, item string
	var resume int64
	vars := map[string]string{}
	for _, a := range args {
		flag, val, _ := strings.Cut(a, "=")
		switch flag {
		case "--state-dir":
			state = val
		case "--queue-item":
			item = val
		case "--resume":
			resume, _ = strconv.ParseInt(val, 10, 64)
		case "--var":
			k, v, _ := strings.Cut(val, "=")
			vars[k] = v
		}
	}
	ctx := context.Background()
	st, err := store.Open(ctx, state)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	defer st.Close()
	name := fmt.Sprintf("run-%d", resume)
	if item != "" && resume == 0 {
		r := &store.Run{Pipeline: "helper", Event: "push"}
		if err := st.CreateRun(ctx, r); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
		if err := st.SetQueueRun(ctx, item, r.ID); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
		defer st.FinishRun(ctx, r.ID, store.StatusPassed, "", time.Time{}) //nolint:errcheck // helper
		name = item
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	_ = os.MkdirAll(filepath.Join(state, "started"), 0o700)
	_ = os.WriteFile(filepath.Join(state, "started", name), []byte(item), 0o600)
	if gate := vars["gate"]; gate != "" {
		for {
			if _, err := os.Stat(gate); err == nil {
				break
			}
			select {
			case <-term:
				return 130
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	if want := vars["echo"]; want != "" {
		_ = os.WriteFile(filepath.Join(state, "started", name+".echo"), []byte(want), 0o600)
	}
	if c := vars["exit"]; c != "" && resume == 0 {
		n, _ := strconv.Atoi(c)
		return n
	}
	return 0
}

// repo makes a git repository with one commit and returns its path and
// the commit's id.
func repo(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	gitIn(t, dir, "init", "-q", "-b", "main", ".")
	if err := os.MkdirAll(filepath.Join(dir, ".gantry"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".gantry", "pipeline.yaml"), []byte("name: t\non:\n  push: {branches: [main]}\nstages: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, dir, "add", ".")
	gitIn(t, dir, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "init")
	return dir, strings.TrimSpace(gitIn(t, dir, "rev-parse", "HEAD"))
}

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

type harness struct {
	q     *Queue
	st    *store.Store
	state string
	repo  string
	sha   string
}

func newHarness(t *testing.T, workers int) *harness {
	t.Helper()
	h := stoppedHarness(t, workers)
	h.start(t)
	return h
}

// stoppedHarness is a queue whose workers do not run yet (start).
func stoppedHarness(t *testing.T, workers int) *harness {
	t.Helper()
	state := t.TempDir()
	st, err := store.Open(context.Background(), state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	q, err := New(Config{Store: st, StateDir: state, Gantry: exe, Env: []string{"GANTRY_QUEUE_HELPER=1"}, Workers: workers,
		Lease: 600 * time.Millisecond, Poll: 50 * time.Millisecond, Fetcher: &Fetcher{AllowLocal: true}})
	if err != nil {
		t.Fatal(err)
	}
	r, sha := repo(t)
	return &harness{q: q, st: st, state: state, repo: r, sha: sha}
}

func (h *harness) start(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.q.Run(ctx) //nolint:errcheck // only fails to create its dirs
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func (h *harness) submit(t *testing.T, branch string, cancelPrevious bool, vars map[string]string) store.QueueItem {
	t.Helper()
	it, err := h.q.Submit(context.Background(), Request{Repo: h.repo, Event: "push", Branch: branch, SHA: h.sha, Vars: vars,
		Trigger: "test", CancelPrevious: cancelPrevious})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return it
}

// waitFor polls until cond holds; the bound only guards against a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) state_(t *testing.T, id string) store.QueueItem {
	t.Helper()
	it, err := h.st.QueueItem(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func (h *harness) waitState(t *testing.T, id string, want store.QueueState) store.QueueItem {
	t.Helper()
	var it store.QueueItem
	waitFor(t, fmt.Sprintf("item %s to be %s", id, want), func() bool {
		it = h.state_(t, id)
		return it.State == want
	})
	return it
}

func (h *harness) started(name string) bool {
	_, err := os.Stat(filepath.Join(h.state, "started", name))
	return err == nil
}

func TestWorkersBoundRunningItems(t *testing.T) {
	h := newHarness(t, 2)
	gate := filepath.Join(t.TempDir(), "gate")
	var items []store.QueueItem
	for i := range 3 {
		items = append(items, h.submit(t, fmt.Sprintf("b%d", i), true, map[string]string{"gate": gate, "echo": "--stage=x -v"}))
	}
	waitFor(t, "two items to start", func() bool { return h.started(items[0].ID) && h.started(items[1].ID) })
	if got := h.state_(t, items[2].ID).State; got != store.QueueQueued || h.started(items[2].ID) {
		t.Fatalf("third item is %s with two workers busy, want queued", got)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		got := h.waitState(t, it.ID, store.QueuePassed)
		if b, err := os.ReadFile(filepath.Join(h.state, "started", it.ID+".echo")); err != nil || string(b) != "--stage=x -v" {
			t.Errorf("the child got var echo %q (%v), want the value as given", b, err)
		}
		if got.RunID == 0 {
			t.Errorf("item %s passed without a run id", it.ID)
		}
		if _, err := os.Stat(got.Workspace); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("workspace of passed item %s still exists (%v)", it.ID, err)
		}
	}
}

func TestNewerPushCancelsOlderRun(t *testing.T) {
	tests := []struct {
		name           string
		cancelPrevious bool
		want           store.QueueState
	}{
		{"cancel_previous true", true, store.QueueCancelled},
		{"cancel_previous false", false, store.QueuePassed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 2)
			gate := filepath.Join(t.TempDir(), "gate")
			old := h.submit(t, "main", tt.cancelPrevious, map[string]string{"gate": gate})
			waitFor(t, "the first run to start", func() bool { return h.started(old.ID) })
			newer := h.submit(t, "main", tt.cancelPrevious, nil)
			h.waitState(t, newer.ID, store.QueuePassed)
			if tt.want == store.QueuePassed {
				if err := os.WriteFile(gate, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got := h.waitState(t, old.ID, tt.want)
			if tt.want == store.QueueCancelled && !strings.Contains(got.Message, "superseded") {
				t.Errorf("message %q, want it to say superseded", got.Message)
			}
		})
	}
}

func TestCancelQueuedAndRunning(t *testing.T) {
	h := newHarness(t, 1)
	gate := filepath.Join(t.TempDir(), "gate")
	running := h.submit(t, "a", true, map[string]string{"gate": gate})
	queued := h.submit(t, "b", true, nil)
	waitFor(t, "the first run to start", func() bool { return h.started(running.ID) })
	if err := h.q.Cancel(context.Background(), queued.ID); err != nil {
		t.Fatal(err)
	}
	h.waitState(t, queued.ID, store.QueueCancelled)
	runID := h.waitStateRun(t, running.ID)
	if err := h.q.Cancel(context.Background(), strconv.FormatInt(runID, 10)); err != nil {
		t.Fatal(err)
	}
	got := h.waitState(t, running.ID, store.QueueCancelled)
	if got.ExitCode != 130 {
		t.Errorf("exit code %d, want 130 (the child got SIGTERM)", got.ExitCode)
	}
	if h.started(queued.ID) {
		t.Errorf("the cancelled queued item ran")
	}
}

func (h *harness) waitStateRun(t *testing.T, id string) int64 {
	t.Helper()
	var it store.QueueItem
	waitFor(t, "item "+id+" to record its run", func() bool { it = h.state_(t, id); return it.RunID != 0 })
	return it.RunID
}

func TestWaitingRunHoldsNoWorker(t *testing.T) {
	h := newHarness(t, 1)
	waiting := h.submit(t, "a", true, map[string]string{"exit": "75"})
	next := h.submit(t, "b", true, nil)
	w := h.waitState(t, waiting.ID, store.QueueWaiting)
	h.waitState(t, next.ID, store.QueuePassed)
	if err := h.q.Cancel(context.Background(), strconv.FormatInt(w.RunID, 10)); !errors.Is(err, ErrNotCancellable) {
		t.Errorf("Cancel of a waiting run: %v, want ErrNotCancellable (reject it)", err)
	}
	if _, err := os.Stat(w.Workspace); err != nil {
		t.Fatalf("the waiting run's workspace is gone: %v", err)
	}
	if err := h.q.Resume(context.Background(), strconv.FormatInt(w.RunID, 10)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the continuation to run", func() bool { return h.started(fmt.Sprintf("run-%d", w.RunID)) })
	cont, err := h.st.QueueItemOfRun(context.Background(), w.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if cont.Kind != store.QueueKindResume || cont.Workspace != w.Workspace {
		t.Errorf("continuation kind %s workspace %s, want resume in %s", cont.Kind, cont.Workspace, w.Workspace)
	}
	// The continuation's child is told its item, to watch its claim.
	if got, err := os.ReadFile(filepath.Join(h.state, "started", fmt.Sprintf("run-%d", w.RunID))); err != nil || string(got) != cont.ID {
		t.Errorf("the continuation's child got --queue-item %q (%v), want %s", got, err, cont.ID)
	}
	h.waitState(t, cont.ID, store.QueuePassed)
}

func TestLapsedLeaseInterruptsThenRetry(t *testing.T) {
	h := stoppedHarness(t, 1)
	ctx := context.Background()
	// Another replica claimed an item and died: its lease is never renewed.
	it := &store.QueueItem{Repo: h.repo, Event: "push", Branch: "main", SHA: h.sha}
	if _, err := h.st.Enqueue(ctx, it); err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.ClaimQueued(ctx, "dead-replica", time.Now().Add(100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	h.start(t)
	got := h.waitState(t, it.ID, store.QueueInterrupted)
	if !strings.Contains(got.Message, "lease") {
		t.Errorf("message %q, want it to say why", got.Message)
	}
	if err := h.q.Retry(ctx, it.ID); err != nil {
		t.Fatal(err)
	}
	got = h.waitState(t, it.ID, store.QueuePassed)
	if got.Owner != h.q.Owner() {
		t.Errorf("owner %s, want this queue %s", got.Owner, h.q.Owner())
	}
}

// TestPipelineConcurrencyBoundsRunningItems: with three free workers, a
// pipeline limited to one run at a time runs its items one by one, while
// another repository's item is not held up behind them.
func TestPipelineConcurrencyBoundsRunningItems(t *testing.T) {
	h := newHarness(t, 3)
	gate := filepath.Join(t.TempDir(), "gate")
	var limited []store.QueueItem
	for i := range 2 {
		it, err := h.q.Submit(context.Background(), Request{Repo: h.repo, Event: "push", Branch: fmt.Sprintf("b%d", i), SHA: h.sha,
			Vars: map[string]string{"gate": gate}, Trigger: "test", Concurrency: 1})
		if err != nil {
			t.Fatal(err)
		}
		limited = append(limited, it)
	}
	other, sha := repo(t)
	free, err := h.q.Submit(context.Background(), Request{Repo: other, Event: "push", Branch: "main", SHA: sha,
		Vars: map[string]string{"gate": gate}, Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first limited item and the other repository's item to start", func() bool {
		return h.started(limited[0].ID) && h.started(free.ID)
	})
	if got := h.state_(t, limited[1].ID).State; got != store.QueueQueued || h.started(limited[1].ID) {
		t.Fatalf("second item of a pipeline with concurrency 1 is %s while the first runs, want queued", got)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, it := range append(limited, free) {
		h.waitState(t, it.ID, store.QueuePassed)
	}
}
