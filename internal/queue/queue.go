// Package queue runs the server's runs: a submitted run (from a webhook or
// the API) waits in the store's run queue for a free worker; a worker
// claims it (one serialised transaction, so replicas sharing a database
// never run it twice nor more runs of a pipeline than its on.concurrency),
// fetches its commit into a workspace under the state dir
// and runs it as a child `gantry run` process, renewing its lease while
// the child runs. A newer push to a branch cancels the older run of that
// branch; a run that waits for an approval leaves its worker (the child
// exits 75) and comes back as a "resume" item (Resume). A run whose
// owner stopped renewing its lease becomes interrupted and can be
// retried (Retry). See docs/queue.md.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/store"
)

// Exit statuses of the child gantry run (see docs/cli/run.md).
const (
	exitPassed    = 0
	exitFailed    = 1
	exitUsage     = 2
	exitWaiting   = 75
	exitCancelled = 130
)

// QueueItemFlag is the hidden gantry run flag that names the queue item a
// child run executes; the child records its run id against it.
const QueueItemFlag = "queue-item"

// Config configures a Queue.
type Config struct {
	Store *store.Store
	// StateDir is the state dir; workspaces go under STATE_DIR/workspaces
	// and child logs under STATE_DIR/queue.
	StateDir string
	// Gantry is the gantry binary the children run (default: this
	// executable).
	Gantry string
	// GlobalArgs are passed to every child before "run" (e.g. --store).
	GlobalArgs []string
	// Env is added to the children's environment.
	Env []string
	// Workers is how many runs this process executes at once (default 1).
	Workers int
	// Lease is how long a claim lasts without renewal (default 30s); the
	// owner renews it every Lease/3.
	Lease time.Duration
	// Poll is how often an idle worker looks for items queued by another
	// replica (default 2s); items submitted here wake a worker at once.
	Poll time.Duration
	// KeepFailed is how long the workspace of a failed or interrupted run
	// is kept for inspection (default 24h); passed and cancelled runs'
	// workspaces are removed when they end, waiting runs' kept until
	// they end.
	KeepFailed time.Duration
	Fetcher    *Fetcher
	// DefaultBranches maps the clone URL of each configured repository
	// to its default branch, whose pipeline file's on.concurrency limits
	// the runs submitted through the API (webhooks read it themselves).
	DefaultBranches map[string]string
	Logger          *slog.Logger
	// Owner names this process in claims (default: hostname and pid and
	// a random suffix).
	Owner string
}

// Queue is the run queue of one server process.
type Queue struct {
	cfg   Config
	st    *store.Store
	log   *slog.Logger
	owner string
	wake  chan struct{}

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc // items this process runs
}

// New returns a queue; Run executes it.
func New(cfg Config) (*Queue, error) {
	if cfg.Store == nil || cfg.StateDir == "" {
		return nil, errors.New("queue: needs a store and a state dir")
	}
	if cfg.Fetcher == nil {
		return nil, errors.New("queue: needs a fetcher")
	}
	if cfg.Gantry == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("queue: find the gantry binary: %w", err)
		}
		cfg.Gantry = exe
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 2 * time.Second
	}
	if cfg.KeepFailed <= 0 {
		cfg.KeepFailed = 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = host + "/" + strconv.Itoa(os.Getpid()) + "/" + store.NewQueueID()[2:10]
	}
	return &Queue{cfg: cfg, st: cfg.Store, log: cfg.Logger, owner: cfg.Owner,
		wake: make(chan struct{}, cfg.Workers), running: map[string]context.CancelCauseFunc{}}, nil
}

// Owner is the name this process claims items under.
func (q *Queue) Owner() string { return q.owner }

func (q *Queue) workspaces() string { return filepath.Join(q.cfg.StateDir, "workspaces") }
func (q *Queue) logs() string       { return filepath.Join(q.cfg.StateDir, "queue") }

// Request is a run to queue.
type Request struct {
	// Repo is the repository: a configured clone URL, or a local path.
	Repo string
	// Event is push or pull_request; Branch the branch pushed to (push)
	// or the head branch (pull_request); Base the target branch of a pull
	// request.
	Event, Branch, Base, SHA string
	Vars                     map[string]string
	Trigger, Actor           string
	// CancelPrevious: a newer push to the branch cancels this run.
	CancelPrevious bool
	// Concurrency is the most runs of the repository's pipeline that run
	// at once across every replica (on.concurrency of its default
	// branch's pipeline file); 0 is no limit.
	Concurrency int
}

// Submit checks r and queues it, cancelling older pushes of the same
// branch when r.CancelPrevious. It returns the queued item.
func (q *Queue) Submit(ctx context.Context, r Request) (store.QueueItem, error) {
	if err := CheckRepo(r.Repo, q.cfg.Fetcher.AllowLocal); err != nil {
		return store.QueueItem{}, err
	}
	if err := CheckSHA(r.SHA); err != nil {
		return store.QueueItem{}, err
	}
	switch r.Event {
	case "push":
	case "pull_request":
		if err := CheckBranch(r.Base); err != nil {
			return store.QueueItem{}, fmt.Errorf("pull request target: %w", err)
		}
	default:
		return store.QueueItem{}, fmt.Errorf("event %q: want push or pull_request: %w", clip(r.Event), ErrInvalid)
	}
	if err := CheckBranch(r.Branch); err != nil {
		return store.QueueItem{}, err
	}
	it := &store.QueueItem{Kind: store.QueueKindRun, Repo: r.Repo, Event: r.Event, Branch: r.Branch, Base: r.Base, SHA: r.SHA,
		Vars: r.Vars, Trigger: r.Trigger, Actor: r.Actor, CancelPrevious: r.CancelPrevious, Concurrency: max(r.Concurrency, 0)}
	superseded, err := q.st.Enqueue(ctx, it)
	if err != nil {
		return store.QueueItem{}, err
	}
	for _, id := range superseded {
		q.log.Info("run superseded by a newer push", "item", id, "by", it.ID, "branch", it.Branch)
		q.cancelLocal(id, errSuperseded)
	}
	q.log.Info("run queued", "item", it.ID, "event", it.Event, "branch", it.Branch, "sha", it.SHA, "trigger", it.Trigger)
	q.poke()
	return *it, nil
}

var (
	errSuperseded = errors.New("superseded by a newer push")
	errCancelled  = errors.New("cancelled")
	errLeaseLost  = errors.New("lease lost")
)

// Resume queues the continuation of run runID, which waited for an
// approval that has been decided. Resuming a run whose continuation is
// already queued or running does nothing.
func (q *Queue) Resume(ctx context.Context, runID string) error {
	id, err := strconv.ParseInt(runID, 10, 64)
	if err != nil || id <= 0 {
		return fmt.Errorf("run id %q: %w", clip(runID), ErrInvalid)
	}
	run, err := q.st.GetRun(ctx, id)
	if err != nil {
		return err
	}
	prev, err := q.st.QueueItemOfRun(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		prev = store.QueueItem{Repo: run.Dir, Event: run.Event, Branch: run.Branch, Base: run.BaseRef, SHA: run.SHA}
	case err != nil:
		return err
	case prev.State == store.QueueQueued || prev.State == store.QueueRunning:
		return nil
	}
	it := &store.QueueItem{Kind: store.QueueKindResume, Repo: prev.Repo, Event: prev.Event, Branch: prev.Branch, Base: prev.Base,
		SHA: prev.SHA, Trigger: "resume", RunID: id, Workspace: prev.Workspace, Concurrency: prev.Concurrency}
	if _, err := q.st.Enqueue(ctx, it); err != nil {
		return err
	}
	q.log.Info("run continuation queued", "item", it.ID, "run", id)
	q.poke()
	return nil
}

// Cancel cancels a run: id is a run id (digits) or a queue item id
// ("q-..."). A queued run is cancelled at once; a running one is stopped
// (its process group killed) by the process that runs it.
func (q *Queue) Cancel(ctx context.Context, id string) error {
	itemID := id
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		it, err := q.st.QueueItemOfRun(ctx, n)
		if err != nil {
			return err
		}
		itemID = it.ID
	}
	st, err := q.st.RequestCancel(ctx, itemID, "cancelled on request")
	if err != nil {
		return err
	}
	switch st {
	case store.QueueRunning:
		q.cancelLocal(itemID, errCancelled)
	case store.QueueQueued:
	case store.QueueWaiting:
		return fmt.Errorf("run of %s waits for an approval, holding no worker: reject it instead (gantry reject): %w", itemID, ErrNotCancellable)
	default:
		return fmt.Errorf("%s already ended (%s): %w", itemID, st, ErrNotCancellable)
	}
	return nil
}

// ErrNotCancellable is returned by Cancel for a run that is neither
// queued nor running.
var ErrNotCancellable = errors.New("nothing to cancel")

// Retry queues an interrupted item again.
func (q *Queue) Retry(ctx context.Context, itemID string) error {
	if err := q.st.Requeue(ctx, itemID); err != nil {
		return err
	}
	q.poke()
	return nil
}

// Item returns queue item id.
func (q *Queue) Item(ctx context.Context, id string) (store.QueueItem, error) {
	return q.st.QueueItem(ctx, id)
}

func (q *Queue) cancelLocal(id string, cause error) {
	q.mu.Lock()
	cancel := q.running[id]
	q.mu.Unlock()
	if cancel != nil {
		cancel(cause)
	}
}

func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run executes the queue until ctx ends: Workers workers claim and run
// items, and a reaper marks interrupted the items whose owner's lease
// lapsed and removes old workspaces. Items queued before a restart are
// claimed as if just submitted. When ctx ends, running children are
// cancelled (their process groups killed) and waited for.
func (q *Queue) Run(ctx context.Context) error {
	for _, d := range []string{q.workspaces(), q.logs()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("queue: %w", err)
		}
	}
	var wg sync.WaitGroup
	for range q.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.worker(ctx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		q.reaper(ctx)
	}()
	q.poke()
	wg.Wait()
	return nil
}

func (q *Queue) worker(ctx context.Context) {
	t := time.NewTicker(q.cfg.Poll)
	defer t.Stop()
	for {
		for ctx.Err() == nil {
			it, err := q.st.ClaimQueued(ctx, q.owner, time.Now().Add(q.cfg.Lease))
			if errors.Is(err, store.ErrNotQueued) {
				break
			}
			if err != nil {
				if ctx.Err() == nil {
					q.log.Error("claim a queued run", "err", err)
				}
				break
			}
			q.execute(ctx, it)
		}
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		case <-t.C:
		}
	}
}

func (q *Queue) reaper(ctx context.Context) {
	t := time.NewTicker(q.cfg.Lease / 3)
	defer t.Stop()
	for {
		q.reap(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reap marks interrupted the items whose lease lapsed and removes
// workspaces whose run ended long enough ago.
func (q *Queue) reap(ctx context.Context) {
	ids, err := q.st.ExpireLeases(ctx, time.Now())
	if err != nil {
		if ctx.Err() == nil {
			q.log.Error("expire queue leases", "err", err)
		}
		return
	}
	for _, id := range ids {
		q.log.Warn("queued run interrupted: its owner stopped renewing the lease", "item", id)
	}
	entries, err := os.ReadDir(q.workspaces())
	if err != nil {
		return
	}
	for _, e := range entries {
		it, err := q.st.QueueItem(ctx, e.Name())
		if err != nil {
			continue
		}
		if it.State.Done() && it.State != store.QueueWaiting && time.Since(it.Finished) > q.cfg.KeepFailed {
			q.removeWorkspace(it)
		}
	}
}

func (q *Queue) removeWorkspace(it store.QueueItem) {
	if it.Workspace == "" || filepath.Dir(it.Workspace) != q.workspaces() {
		return
	}
	if err := os.RemoveAll(it.Workspace); err != nil {
		q.log.Warn("remove a run workspace", "item", it.ID, "dir", it.Workspace, "err", err)
	}
}

// execute runs one claimed item to its end and records its outcome.
func (q *Queue) execute(parent context.Context, it store.QueueItem) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	q.mu.Lock()
	q.running[it.ID] = cancel
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		delete(q.running, it.ID)
		q.mu.Unlock()
	}()

	// The lease is renewed until the child ended; a cancellation
	// requested through the store (another replica, a newer push) or a
	// lost lease stops the child.
	leaseDone := make(chan struct{})
	var leaseWG sync.WaitGroup
	leaseWG.Add(1)
	go func() {
		defer leaseWG.Done()
		t := time.NewTicker(q.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-leaseDone:
				return
			case <-t.C:
			}
			stop, err := q.st.RenewLease(context.WithoutCancel(ctx), it.ID, q.owner, time.Now().Add(q.cfg.Lease))
			switch {
			case errors.Is(err, store.ErrLeaseLost):
				cancel(errLeaseLost)
				return
			case err != nil:
				q.log.Warn("renew a queue lease", "item", it.ID, "err", err)
			case stop:
				cancel(errCancelled)
			}
		}
	}()
	state, code, msg := q.runItem(ctx, &it)
	close(leaseDone)
	leaseWG.Wait()

	if cause := context.Cause(ctx); cause != nil && parent.Err() == nil {
		switch {
		case errors.Is(cause, errLeaseLost):
			q.log.Warn("queued run lost its lease; left interrupted", "item", it.ID)
			return
		case errors.Is(cause, errCancelled), errors.Is(cause, errSuperseded):
			state = store.QueueCancelled
			if m, err := q.st.QueueItem(context.WithoutCancel(ctx), it.ID); err == nil && m.Message != "" {
				msg = m.Message
			} else {
				msg = cause.Error()
			}
		}
	}
	if parent.Err() != nil && state != store.QueuePassed && state != store.QueueWaiting {
		// The server is stopping: the run is interrupted, retryable.
		state, msg = store.QueueInterrupted, "the server stopped while the run was running; retry it"
	}
	// The workspace goes first, so that an item seen ended never leaves
	// a workspace behind.
	if state == store.QueuePassed || state == store.QueueCancelled {
		q.removeWorkspace(it)
	}
	if err := q.st.FinishQueued(context.WithoutCancel(ctx), it.ID, q.owner, state, code, msg); errors.Is(err, store.ErrLeaseLost) {
		// Another replica declared this one dead meanwhile (the item is
		// interrupted, maybe retried): its record stands.
		q.log.Warn("queued run lost its lease; its outcome is not recorded", "item", it.ID, "state", state)
		return
	} else if err != nil {
		q.log.Error("record the outcome of a queued run", "item", it.ID, "err", err)
	}
	q.log.Info("queued run ended", "item", it.ID, "run", it.RunID, "state", state, "exit", code)
}

// runItem fetches (for a new run) and runs the child. It returns the
// item's final state, the child's exit code and a message.
func (q *Queue) runItem(ctx context.Context, it *store.QueueItem) (store.QueueState, int, string) {
	ws := it.Workspace
	if it.Kind == store.QueueKindRun {
		ws = filepath.Join(q.workspaces(), it.ID)
		if err := q.st.SetQueueWorkspace(ctx, it.ID, ws); err != nil {
			return store.QueueFailed, 0, err.Error()
		}
		it.Workspace = ws
		// A retried item fetches afresh.
		if err := os.RemoveAll(ws); err != nil {
			return store.QueueFailed, 0, fmt.Sprintf("clear the workspace: %v", err)
		}
		if err := q.cfg.Fetcher.Fetch(ctx, it.Repo, it.SHA, ws); err != nil {
			return store.QueueFailed, 0, err.Error()
		}
	}
	args := append(slices.Clone(q.cfg.GlobalArgs), "--state-dir="+q.cfg.StateDir, "run", "--progress=plain")
	switch {
	case it.Kind == store.QueueKindResume:
		args = append(args, "--resume="+strconv.FormatInt(it.RunID, 10), "--"+QueueItemFlag+"="+it.ID)
		if ws != "" {
			args = append(args, "--dir="+ws)
		}
	default:
		// NAME=VALUE forms: a value can never be read as a flag.
		args = append(args, "--dir="+ws, "--event="+it.Event, "--branch="+it.Branch, "--"+QueueItemFlag+"="+it.ID)
		if it.Event == "pull_request" {
			args = append(args, "--base="+it.Base)
		}
		for _, k := range slices.Sorted(maps.Keys(it.Vars)) {
			args = append(args, "--var="+k+"="+it.Vars[k])
		}
	}
	logf, err := os.OpenFile(filepath.Join(q.logs(), it.ID+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return store.QueueFailed, 0, fmt.Sprintf("open the run's log: %v", err)
	}
	defer logf.Close()
	cmd := proc.Command(ctx, q.cfg.Gantry, args...)
	// A server killed outright takes its children along (their runs are
	// then recorded interrupted), rather than leaving runs going whose
	// items another server marks interrupted and retries.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	cmd.Dir = q.cfg.StateDir
	if ws != "" {
		cmd.Dir = ws
	}
	cmd.Env = append(os.Environ(), q.cfg.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Stdin = nil
	err = cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		return store.QueueFailed, -1, fmt.Sprintf("start gantry run: %v", err)
	}
	if it.RunID == 0 {
		if m, err := q.st.QueueItem(context.WithoutCancel(ctx), it.ID); err == nil {
			it.RunID = m.RunID
		}
	}
	switch code {
	case exitPassed:
		return store.QueuePassed, code, ""
	case exitWaiting:
		return store.QueueWaiting, code, "waits for an approval"
	case exitCancelled:
		return store.QueueCancelled, code, "cancelled"
	case exitFailed:
		return store.QueueFailed, code, "the run failed"
	case exitUsage:
		return store.QueueFailed, code, "gantry run refused the pipeline or its flags (exit 2); see the run's log"
	case -1:
		return store.QueueCancelled, code, "killed"
	}
	return store.QueueFailed, code, fmt.Sprintf("gantry run exited %d", code)
}
