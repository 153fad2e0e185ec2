package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestCommitStatuses runs a pipeline configured to post commit statuses
// against a local server that checks every request as GitHub would.
func TestCommitStatuses(t *testing.T) {
	type post struct {
		path, auth string
		body       map[string]string
	}
	var (
		mu    sync.Mutex
		posts []post
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "method", http.StatusMethodNotAllowed)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var body map[string]string
		if err := json.Unmarshal(b, &body); err != nil {
			http.Error(w, "json", http.StatusBadRequest)
			return
		}
		mu.Lock()
		posts = append(posts, post{path: r.URL.Path, auth: r.Header.Get("Authorization"), body: body})
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id": 1}`)
	}))
	defer srv.Close()

	e := newEnv(t)
	e.write(".gantry/pipeline.yaml", `name: statuses
secrets:
  GH_TOKEN: {env: TEST_GH_TOKEN}
commit_status:
  repository: examplepay/payment-service
  token: GH_TOKEN
  api_url: `+srv.URL+`/api/v3
  target_url: https://ci.example.test/runs/${run.id}
stages:
  - name: commit
    steps: [{name: ok, run: 'true'}]
  - name: build-test
    steps: [{name: bad, run: 'exit 1'}]
`)
	e.commitAll("ci: statuses")
	sha := e.git("rev-parse", "HEAD")
	t.Setenv("TEST_GH_TOKEN", "ghp_e2etoken000000")
	r := e.gantry("run", "--dir", e.repo, "--progress", "plain")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []struct{ context, state string }{
		{"gantry/commit", "pending"}, {"gantry/commit", "success"},
		{"gantry/build-test", "pending"}, {"gantry/build-test", "failure"},
	}
	if len(posts) != len(want) {
		t.Fatalf("posts: got %d (%+v), want %d", len(posts), posts, len(want))
	}
	for i, w := range want {
		p := posts[i]
		if p.path != "/api/v3/repos/examplepay/payment-service/statuses/"+sha {
			t.Errorf("post %d path: got %s", i, p.path)
		}
		if p.auth != "Bearer ghp_e2etoken000000" {
			t.Errorf("post %d auth: got %q", i, p.auth)
		}
		if p.body["context"] != w.context || p.body["state"] != w.state {
			t.Errorf("post %d: got %s=%s, want %s=%s", i, p.body["context"], p.body["state"], w.context, w.state)
		}
		if p.body["target_url"] != "https://ci.example.test/runs/1" {
			t.Errorf("post %d target_url: got %q", i, p.body["target_url"])
		}
	}
	if !strings.Contains(posts[3].body["description"], "failed") {
		t.Errorf("failure description: got %q", posts[3].body["description"])
	}
}
