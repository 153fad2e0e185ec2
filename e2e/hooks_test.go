package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/queue"
	"github.com/gantry-ci/gantry/internal/store"
	"github.com/gantry-ci/gantry/internal/webhook"
)

// hooksServer is the server side of the triggers as gantry serve wires
// it: the store of a state dir, the queue whose workers run the gantry
// binary, the webhook receiver and the queue's API, each on an httptest
// server.
type hooksServer struct {
	st       *store.Store
	q        *queue.Queue
	hooks    *httptest.Server
	api      *httptest.Server
	state    string
	origin   string // bare repository the server fetches from
	checkout string
	sha      string
	statuses *statusLog
}

// statusLog is a GitHub commit status API.
type statusLog struct {
	mu   sync.Mutex
	seen []string // "context state"
}

func (s *statusLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var st struct{ State, Context string }
	_ = json.NewDecoder(r.Body).Decode(&st)
	s.mu.Lock()
	s.seen = append(s.seen, st.Context+" "+st.State)
	s.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, "{}")
}

func (s *statusLog) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

var hooksSecret = []byte("e2e-webhook-secret-0123456789")

func gitRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

const tinyStages = `stages:
  - name: build
    steps:
      - {name: hello, run: 'echo "hello from $GANTRY_BRANCH"'}
  - name: test
    steps:
      - {name: check, run: test -f .gantry/pipeline.yaml}
`

func newHooksServer(t *testing.T) *hooksServer {
	t.Helper()
	return newHooksServerWith(t, tinyStages)
}

func newHooksServerWith(t *testing.T, stages string) *hooksServer {
	t.Helper()
	statuses := &statusLog{}
	gh := httptest.NewServer(statuses)
	t.Cleanup(gh.Close)

	checkout := t.TempDir()
	gitRun(t, checkout, "init", "-q", "-b", "main", ".")
	pipeline := `name: tiny
on:
  push: {branches: [main]}
secrets:
  GH: {env: E2E_GH_TOKEN}
commit_status:
  repository: acme/app
  token: GH
  api_url: ` + gh.URL + `
` + stages
	if err := os.MkdirAll(filepath.Join(checkout, ".gantry"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(checkout, ".gantry", "pipeline.yaml"), []byte(pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun(t, checkout, "add", ".")
	gitRun(t, checkout, "commit", "-q", "-m", "tiny pipeline")
	origin := filepath.Join(t.TempDir(), "app.git")
	gitRun(t, checkout, "clone", "-q", "--bare", ".", origin)
	gitRun(t, checkout, "remote", "add", "origin", origin)

	state := t.TempDir()
	st, err := store.Open(context.Background(), state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &queue.Fetcher{AllowLocal: true, CacheDir: filepath.Join(state, "repos")}
	q, err := queue.New(queue.Config{Store: st, StateDir: state, Gantry: gantryBin, Workers: 2, Fetcher: f,
		Env: []string{"E2E_GH_TOKEN=gh-token", "NO_COLOR=1"}, Poll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h, err := webhook.New(webhook.Config{Secrets: [][]byte{hooksSecret}, Repositories: []webhook.Repository{{URL: origin}},
		Deliveries: st, Queue: q, Pipelines: f, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = q.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	hooks := httptest.NewServer(h)
	t.Cleanup(hooks.Close)
	// The API as the auth middleware hands it a token's identity.
	dev := auth.Identity{Name: "dev", Role: auth.RoleDeveloper, Method: auth.MethodToken}
	qapi := q.HTTP([]string{origin}, nil)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer e2e-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		qapi.ServeHTTP(w, r.WithContext(auth.WithIdentity(r.Context(), dev)))
	}))
	t.Cleanup(api.Close)
	return &hooksServer{st: st, q: q, hooks: hooks, api: api, state: state, origin: origin, checkout: checkout,
		sha: gitRun(t, checkout, "rev-parse", "HEAD"), statuses: statuses}
}

func (s *hooksServer) deliver(t *testing.T, id string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.hooks.URL+"/webhooks/github", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", "sha256="+webhook.Sign(hooksSecret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s *hooksServer) waitDone(t *testing.T, id string) store.QueueItem {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		it, err := s.st.QueueItem(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if it.State.Done() {
			return it
		}
		if time.Now().After(deadline) {
			t.Fatalf("item %s still %s", id, it.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSignedWebhookRunsGreen: a signed push delivery queues a run, a
// worker fetches the commit and runs it with the gantry binary, the run
// passes and reports a commit status per stage.
func TestSignedWebhookRunsGreen(t *testing.T) {
	s := newHooksServer(t)
	body, _ := json.Marshal(map[string]any{"ref": "refs/heads/main", "after": s.sha,
		"repository": map[string]any{"clone_url": s.origin}, "pusher": map[string]any{"name": "alice"}})
	code, resp := s.deliver(t, "e2e-1", body)
	if code != http.StatusAccepted {
		t.Fatalf("delivery: %d %s", code, resp)
	}
	var r webhook.Response
	if err := json.Unmarshal([]byte(resp), &r); err != nil {
		t.Fatal(err)
	}
	it := s.waitDone(t, r.ID)
	if it.State != store.QueuePassed || it.RunID == 0 {
		log, _ := os.ReadFile(filepath.Join(s.state, "queue", it.ID+".log"))
		t.Fatalf("item %s: %s run %d (%s)\n%s", it.ID, it.State, it.RunID, it.Message, log)
	}
	run, err := s.st.GetRun(context.Background(), it.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != store.StatusPassed || run.SHA != s.sha || run.Branch != "main" || run.Event != "push" {
		t.Errorf("run %d: %s sha %s branch %s event %s", run.ID, run.Status, run.SHA, run.Branch, run.Event)
	}
	want := []string{"gantry/build pending", "gantry/build success", "gantry/test pending", "gantry/test success"}
	if got := s.statuses.all(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("commit statuses %v, want %v", got, want)
	}
	if _, err := os.Stat(it.Workspace); !os.IsNotExist(err) {
		t.Errorf("the passed run's workspace %s is still there (%v)", it.Workspace, err)
	}
	// The same delivery again is a replay.
	if code, resp := s.deliver(t, "e2e-1", body); code != http.StatusConflict {
		t.Errorf("replay: %d %s, want 409", code, resp)
	}
}

// TestRunServerSubmitsHead: gantry run --server submits the checkout's
// HEAD by its origin URL and, with --follow, exits with the run's status.
func TestRunServerSubmitsHead(t *testing.T) {
	s := newHooksServer(t)
	cmd := exec.Command(gantryBin, "run", "--server", s.api.URL, "--follow", "--poll", "100ms")
	cmd.Dir = s.checkout
	cmd.Env = append(os.Environ(), "GANTRY_TOKEN=e2e-token", "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gantry run --server: %v\n%s", err, out)
	}
	for _, want := range []string{"queued q-", "run 1: " + s.api.URL + "/runs/1", "passed"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// A wrong token is refused with the server's answer.
	cmd = exec.Command(gantryBin, "run", "--server", s.api.URL)
	cmd.Dir = s.checkout
	cmd.Env = append(os.Environ(), "GANTRY_TOKEN=wrong")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "401") {
		t.Errorf("wrong token: %v\n%s", err, out)
	}
}

// TestApprovalHoldsNoWorkerThenResumes: a run that reaches an approval
// leaves its worker (its item waits), the next run takes the worker, and
// once the approval is decided Resume runs the rest in the same
// workspace to green.
func TestApprovalHoldsNoWorkerThenResumes(t *testing.T) {
	s := newHooksServerWith(t, `stages:
  - name: build
    steps: [{name: hello, run: echo built}]
  - name: prod
    approval: {required: true}
    steps: [{name: ship, run: test -f .gantry/pipeline.yaml}]
`)
	ctx := context.Background()
	body, _ := json.Marshal(map[string]any{"ref": "refs/heads/main", "after": s.sha, "repository": map[string]any{"clone_url": s.origin}})
	code, resp := s.deliver(t, "approval-1", body)
	if code != http.StatusAccepted {
		t.Fatalf("delivery: %d %s", code, resp)
	}
	var r webhook.Response
	if err := json.Unmarshal([]byte(resp), &r); err != nil {
		t.Fatal(err)
	}
	it := s.waitDone(t, r.ID)
	if it.State != store.QueueWaiting || it.ExitCode != 75 {
		log, _ := os.ReadFile(filepath.Join(s.state, "queue", it.ID+".log"))
		t.Fatalf("item %s: %s exit %d, want waiting 75\n%s", it.ID, it.State, it.ExitCode, log)
	}
	// The worker is free: a submitted run of another branch runs.
	other, err := s.q.Submit(ctx, queue.Request{Repo: s.origin, Event: "push", Branch: "other", SHA: s.sha, Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.waitDone(t, other.ID); got.State != store.QueueWaiting {
		t.Fatalf("the second run is %s, want it to reach its own approval", got.State)
	}
	approvals, err := s.st.Approvals(ctx, it.RunID)
	if err != nil || len(approvals) != 1 {
		t.Fatalf("approvals of run %d: %v %v", it.RunID, approvals, err)
	}
	if err := s.st.DecideApproval(ctx, approvals[0].ID, store.ApprovalApproved, "lead", "ship it", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.q.Resume(ctx, fmt.Sprint(it.RunID)); err != nil {
		t.Fatal(err)
	}
	cont, err := s.st.QueueItemOfRun(ctx, it.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if done := s.waitDone(t, cont.ID); done.State != store.QueuePassed {
		log, _ := os.ReadFile(filepath.Join(s.state, "queue", cont.ID+".log"))
		t.Fatalf("continuation %s: %s (%s)\n%s", cont.ID, done.State, done.Message, log)
	}
	run, err := s.st.GetRun(ctx, it.RunID)
	if err != nil || run.Status != store.StatusPassed {
		t.Fatalf("run %d after the approval: %v %v", it.RunID, run.Status, err)
	}
}
