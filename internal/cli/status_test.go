package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/notify/githubstatus"
	"github.com/gantry-ci/gantry/internal/store"
)

// statusAPI is a local GitHub statuses API that records the last state
// posted per context, in order.
type statusAPI struct {
	mu    sync.Mutex
	posts []string
	last  map[string]string
}

func newStatusAPI(t *testing.T, onPost func(post string)) (*statusAPI, *httptest.Server) {
	t.Helper()
	api := &statusAPI{last: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.Contains(r.URL.Path, "/statuses/") {
			http.Error(w, "not a statuses call", http.StatusNotFound)
			return
		}
		var body struct{ State, Context string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		api.mu.Lock()
		api.posts = append(api.posts, body.Context+"="+body.State)
		api.last[body.Context] = body.State
		api.mu.Unlock()
		if onPost != nil {
			onPost(body.Context + "=" + body.State)
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "{}")
	}))
	t.Cleanup(srv.Close)
	return api, srv
}

// gitRepo makes a repository with one commit and the pipeline file.
func gitRepo(t *testing.T, pipeline string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, ".gantry"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".gantry", "pipeline.yaml"), []byte(pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "add", "."},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "chore: init"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

// TestRunCommitStatusesForSkippedStages runs real pipelines with `gantry
// run` against a local statuses API: only a passed stage, or one skipped
// by its own when:, may be green.
func TestRunCommitStatusesForSkippedStages(t *testing.T) {
	const head = `name: statuses
secrets:
  GH_TOKEN: {env: GANTRY_TEST_STATUS_TOKEN}
notify:
  hook: {webhook: "%s"}
commit_status:
  repository: examplepay/payment-service
  token: GH_TOKEN
  api_url: "%s"
stages:
`
	const failing = `  - name: commit
    steps:
      - {name: lint, run: "exit 1"}
    on_failure: [{notify: hook}]
  - name: build
    steps:
      - {name: unit, run: "true"}
  - name: docs
    when: branch == "release"
    steps:
      - {name: render, run: "true"}
`
	const long = `  - name: commit
    steps:
      - {name: lint, run: "true"}
  - name: build
    steps:
      - {name: unit, run: "sleep 120"}
  - name: docs
    steps:
      - {name: render, run: "true"}
`
	for _, tc := range []struct {
		name   string
		stages string
		// cancelOn cancels the run when the failure notification
		// ("hook") or this status reaches the API.
		cancelOn string
		want     map[string]string
	}{
		{"skipped after a failure", failing, "", map[string]string{
			"gantry/commit": "failure", "gantry/build": "failure", "gantry/docs": "success"}},
		{"skipped because the run was cancelled", failing, "hook", map[string]string{
			"gantry/commit": "failure", "gantry/build": "error", "gantry/docs": "error"}},
		{"cancelled while a stage runs", long, "gantry/build=pending", map[string]string{
			"gantry/commit": "success", "gantry/build": "error", "gantry/docs": "error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GANTRY_TEST_STATUS_TOKEN", "status-token-1234")
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			api, srv := newStatusAPI(t, func(post string) {
				if post == tc.cancelOn {
					cancel()
				}
			})
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.cancelOn == "hook" {
					cancel()
				}
				w.WriteHeader(http.StatusOK)
			}))
			defer hook.Close()
			dir := gitRepo(t, fmt.Sprintf(head, hook.URL, srv.URL)+tc.stages)
			_, stderr, code := gantryCtx(t, ctx, t.TempDir(), "run", "--dir", dir, "--progress", "plain", "--no-cache")
			if code == 0 {
				t.Fatalf("gantry run exited 0; stderr:\n%s", stderr)
			}
			api.mu.Lock()
			defer api.mu.Unlock()
			for ctxName, want := range tc.want {
				if got := api.last[ctxName]; got != want {
					t.Errorf("last status of %s = %q, want %q (posted %v)", ctxName, got, want, api.posts)
				}
			}
		})
	}
}

// TestStatusObserverMapping feeds the observer the stage endings the
// engine reports and checks the state posted for each.
func TestStatusObserverMapping(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   engine.Event
		want githubstatus.State
	}{
		{"passed", engine.Event{Status: store.StatusPassed}, githubstatus.Success},
		{"failed", engine.Event{Status: store.StatusFailed}, githubstatus.Failure},
		{"cancelled", engine.Event{Status: store.StatusCancelled}, githubstatus.Error},
		{"interrupted", engine.Event{Status: store.StatusInterrupted}, githubstatus.Error},
		{"waiting for approval", engine.Event{Status: store.StatusWaiting}, githubstatus.Pending},
		{"rejected", engine.Event{Status: store.StatusRejected}, githubstatus.Failure},
		{"skipped by when", engine.Event{Status: store.StatusSkipped, Skip: engine.SkipWhen}, githubstatus.Success},
		{"skipped after failure", engine.Event{Status: store.StatusSkipped, Skip: engine.SkipAfterFailure}, githubstatus.Failure},
		{"skipped as cancelled", engine.Event{Status: store.StatusSkipped, Skip: engine.SkipCancelled}, githubstatus.Error},
		{"skipped for no known reason", engine.Event{Status: store.StatusSkipped}, githubstatus.Error},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api, srv := newStatusAPI(t, nil)
			c, err := githubstatus.New("t", githubstatus.WithBaseURL(srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			obs := &statusObserver{r: githubstatus.NewReporter(c, "o/r", "abc", nil)}
			ev := tc.ev
			ev.Type, ev.Stage = engine.StageFinished, "s"
			obs.Observe(ev)
			obs.Close()
			if got := api.last["gantry/s"]; got != string(tc.want) {
				t.Errorf("posted %q, want %q", got, tc.want)
			}
		})
	}
}
