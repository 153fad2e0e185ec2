package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/store"
	"github.com/gantry-ci/gantry/internal/syncbuf"
)

// roleEnv makes the test binary act as a serve process ("server") or as a
// client run as another user ("client") instead of running tests.
const roleEnv = "GANTRY_SERVE_TEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "server":
		os.Exit(helperServer())
	case "client":
		os.Exit(helperClient())
	}
	os.Exit(m.Run())
}

// argStateDir finds --state-dir DIR in the arguments.
func argStateDir() string {
	for i, a := range os.Args {
		if a == "--state-dir" && i+1 < len(os.Args) {
			return os.Args[i+1]
		}
	}
	return ""
}

// helperServer is a serve process with a recording deployer, as Ensure
// starts it; it records its start in STATE_DIR/starts.
func helperServer() int {
	dir := argStateDir()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f, err := os.OpenFile(filepath.Join(dir, "starts"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintln(f, os.Getpid())
	f.Close()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	err = Run(ctx, Config{StateDir: dir, Deployer: newRecorder(), Version: "test", Logger: logger})
	var running *AlreadyRunningError
	switch {
	case errors.As(err, &running):
		fmt.Fprintln(os.Stderr, err)
		return 73
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// helperClient asks the server of --state-dir for its health and prints
// the outcome as JSON: {"ok":true} or the error's code and whether the
// connection itself was refused with EACCES.
func helperClient() int {
	c := newClient(argStateDir())
	_, err := c.Health(context.Background())
	out := map[string]any{"ok": err == nil}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		out["code"] = apiErr.Code
	}
	out["eacces"] = errors.Is(err, syscall.EACCES)
	out["forbidden"] = errors.Is(err, ErrForbidden)
	if err != nil {
		out["error"] = err.Error()
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
	return 0
}

// recorder is a runtime.Deployer that records its calls and answers by
// environment name: "busy", "unready", "refused" and "missing" fail with
// the matching error; other names succeed. Logs follow copies the lines
// sent on lines until ctx ends.
type recorder struct {
	mu     sync.Mutex
	calls  []string
	reqs   []runtime.DeployRequest
	lines  chan string
	ran    bool
	runEnd bool
	closed bool
}

var _ Deployer = (*recorder)(nil)

func newRecorder() *recorder { return &recorder{lines: make(chan string)} }

func (r *recorder) record(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
}

func (r *recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func failFor(env string) error {
	switch env {
	case "busy":
		return fmt.Errorf("deploy %s: %w", env, runtime.ErrDeployInProgress)
	case "unready":
		return fmt.Errorf("deploy %s: GET /readyz: 503: %w", env, runtime.ErrNotReady)
	case "refused":
		return fmt.Errorf("policy require-signature: image unsigned: %w", runtime.ErrAdmission)
	case "missing":
		return fmt.Errorf("environment %s: %w", env, store.ErrNotFound)
	case "invalid":
		return fmt.Errorf("deploy %s: no workload: %w", env, runtime.ErrInvalidRequest)
	case "closed":
		return fmt.Errorf("status of %s: %w", env, runtime.ErrClosed)
	case "broken":
		return errors.New("the store is on fire")
	}
	return nil
}

func (r *recorder) Deploy(_ context.Context, req runtime.DeployRequest) (runtime.Revision, error) {
	r.record("deploy " + req.Environment)
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	if err := failFor(req.Environment); err != nil {
		return runtime.Revision{}, err
	}
	rev := runtime.Revision{Environment: req.Environment, Number: 7, Workloads: req.Workloads, Who: req.Who, Run: req.Run, Reason: req.Reason, Status: "serving"}
	if len(req.Workloads) > 0 {
		_, rev.Digest, _ = strings.Cut(req.Workloads[0].Image, "@")
	}
	return rev, nil
}

func (r *recorder) Rollback(_ context.Context, env string, to int, who, reason string) (runtime.Revision, error) {
	r.record(fmt.Sprintf("rollback %s to=%d who=%s reason=%s", env, to, who, reason))
	if err := failFor(env); err != nil {
		return runtime.Revision{}, err
	}
	return runtime.Revision{Environment: env, Number: 8, Who: who, Reason: reason, Status: "serving"}, nil
}

func (r *recorder) Status(_ context.Context, env string) (runtime.EnvironmentStatus, error) {
	r.record("status " + env)
	if err := failFor(env); err != nil {
		return runtime.EnvironmentStatus{}, err
	}
	return runtime.EnvironmentStatus{Name: env, URL: "http://127.0.0.1:30080", Instances: []runtime.InstanceStatus{{ID: env + "-1-0", State: "ready"}}}, nil
}

func (r *recorder) List(context.Context) ([]runtime.EnvironmentStatus, error) {
	r.record("list")
	return []runtime.EnvironmentStatus{{Name: "prod", URL: "http://127.0.0.1:30081"}, {Name: "staging", URL: "http://127.0.0.1:30080"}}, nil
}

func (r *recorder) History(_ context.Context, env string) ([]runtime.Revision, error) {
	r.record("history " + env)
	if err := failFor(env); err != nil {
		return nil, err
	}
	return []runtime.Revision{{Environment: env, Number: 1, Status: "superseded"}, {Environment: env, Number: 2, Status: "serving"}}, nil
}

func (r *recorder) Logs(ctx context.Context, env string, follow bool, w io.Writer) error {
	r.record(fmt.Sprintf("logs %s follow=%v", env, follow))
	if err := failFor(env); err != nil {
		return err
	}
	if _, err := io.WriteString(w, env+"-1-0 | started\n"); err != nil {
		return err
	}
	if env == "breaks-midway" {
		return fmt.Errorf("read the log of %s-1-0: %w", env, store.ErrNotFound)
	}
	if !follow {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case l := <-r.lines:
			if _, err := io.WriteString(w, l+"\n"); err != nil {
				return err
			}
		}
	}
}

func (r *recorder) Run(ctx context.Context) error {
	r.mu.Lock()
	r.ran = true
	r.mu.Unlock()
	<-ctx.Done()
	r.mu.Lock()
	r.runEnd = true
	r.mu.Unlock()
	return ctx.Err()
}

func (r *recorder) Close(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}

// server runs Run in this process on a fresh state dir until the test
// ends, and returns a client of it.
type testServer struct {
	dir  string
	rec  *recorder
	logs *syncbuf.Buffer
	c    *Client
	done chan error
	stop context.CancelFunc
}

func startServer(t testing.TB, withRegistry bool) *testServer {
	t.Helper()
	s := &testServer{dir: t.TempDir(), rec: newRecorder(), logs: &syncbuf.Buffer{}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	ready := make(chan struct{})
	cfg := Config{StateDir: s.dir, Deployer: s.rec, Version: "test", Logger: slog.New(slog.NewTextHandler(s.logs, nil)), noRegistry: !withRegistry, ready: func() { close(ready) }}
	go func() { s.done <- Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-s.done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-s.done:
		s.done <- err
		t.Fatalf("Run ended before it listened: %v", err)
	}
	c, err := Dial(ctx, s.dir)
	if err != nil {
		t.Fatal(err)
	}
	s.c = c
	t.Cleanup(c.Close)
	return s
}
