package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/queue"
	"github.com/gantry-ci/gantry/internal/store"
)

var secret = []byte("0123456789abcdef-webhook-secret")

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// fixture is a repository whose default branch (main) runs pushes to
// main and pull requests into main, and a branch "wide" whose own
// pipeline file claims every branch.
type fixture struct {
	h       http.Handler
	st      *store.Store
	repo    string
	sha     string
	wideSHA string
	logs    *bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	repo := t.TempDir()
	git(t, repo, "init", "-q", "-b", "main", ".")
	write := func(body string) {
		if err := os.MkdirAll(filepath.Join(repo, ".gantry"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, ".gantry", "pipeline.yaml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		git(t, repo, "add", ".")
		git(t, repo, "commit", "-q", "-m", "pipeline")
	}
	write("name: t\non:\n  push: {branches: [main, release/*]}\n  pull_request: {branches: [main]}\n  concurrency: 3\nstages: []\n")
	sha := git(t, repo, "rev-parse", "HEAD")
	git(t, repo, "checkout", "-q", "-b", "wide")
	write("name: t\non:\n  push: {branches: ['**']}\nstages: []\n")
	wide := git(t, repo, "rev-parse", "HEAD")
	git(t, repo, "checkout", "-q", "main")

	state := t.TempDir()
	st, err := store.Open(context.Background(), state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &queue.Fetcher{AllowLocal: true, CacheDir: t.TempDir()}
	q, err := queue.New(queue.Config{Store: st, StateDir: state, Fetcher: f, Gantry: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	h, err := New(Config{Secrets: [][]byte{[]byte("an-older-secret-being-rotated"), secret}, Repositories: []Repository{{URL: repo}},
		Deliveries: st, Queue: q, Pipelines: f, MaxBody: 64 << 10, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{h: h, st: st, repo: repo, sha: sha, wideSHA: wide, logs: logs}
}

type delivery struct {
	forge, event, id string
	body             []byte
	sig              string // "" signs with secret; "-" sends none
}

func (f *fixture) send(t *testing.T, d delivery) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/webhooks/"+d.forge, bytes.NewReader(d.body))
	fg := forges[d.forge]
	sig := d.sig
	if sig == "" {
		sig = fg.sigPrefix + Sign(secret, d.body)
	}
	if sig != "-" {
		req.Header.Set(fg.sigHeader, sig)
	}
	req.Header.Set(fg.eventHeader, d.event)
	req.Header.Set(fg.deliveryHeader, d.id)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

const payloadMarker = "PAYLOAD-ONLY-TEXT-7f3a"

func push(repo, ref, sha string) []byte {
	b, _ := json.Marshal(map[string]any{
		"ref": ref, "after": sha, "before": strings.Repeat("0", 40),
		"repository":  map[string]any{"clone_url": repo, "html_url": "https://example.invalid/x"},
		"pusher":      map[string]any{"name": "alice"},
		"head_commit": map[string]any{"message": payloadMarker},
	})
	return b
}

func pr(repo, action, head, base, sha string) []byte {
	b, _ := json.Marshal(map[string]any{
		"action": action,
		"pull_request": map[string]any{
			"head": map[string]any{"ref": head, "sha": sha},
			"base": map[string]any{"ref": base, "repo": map[string]any{"clone_url": repo}},
			"user": map[string]any{"login": "bob"},
			"body": payloadMarker,
		},
	})
	return b
}

func TestDeliveries(t *testing.T) {
	f := newFixture(t)
	n := 0
	id := func() string { n++; return fmt.Sprintf("d-%d", n) }
	tests := []struct {
		name   string
		d      delivery
		status int
		want   string // in the body
	}{
		{"signed push to main", delivery{"github", "push", id(), push(f.repo, "refs/heads/main", f.sha), ""}, 202, `"status":"queued"`},
		{"gitea push", delivery{"gitea", "push", id(), push(f.repo, "refs/heads/release/1", f.sha), ""}, 202, `"status":"queued"`},
		{"unsigned", delivery{"github", "push", id(), push(f.repo, "refs/heads/main", f.sha), "-"}, 401, "signature"},
		{"wrong signature", delivery{"github", "push", id(), push(f.repo, "refs/heads/main", f.sha), "sha256=" + Sign([]byte("wrong-secret-0123456"), []byte("x"))}, 401, "signature"},
		{"signature without prefix", delivery{"github", "push", id(), push(f.repo, "refs/heads/main", f.sha), Sign(secret, push(f.repo, "refs/heads/main", f.sha))}, 401, "signature"},
		{"malformed JSON", delivery{"github", "push", id(), []byte(`{"ref": "refs/heads/main",`), ""}, 400, "malformed JSON"},
		{"wrong JSON type", delivery{"github", "push", id(), []byte(`{"ref": 7}`), ""}, 400, "field ref"},
		{"push elsewhere", delivery{"github", "push", id(), push(f.repo, "refs/heads/feature/x", f.sha), ""}, 200, "not triggered by on:"},
		{"branch cannot widen its triggers", delivery{"github", "push", id(), push(f.repo, "refs/heads/wide", f.wideSHA), ""}, 200, "not triggered by on:"},
		{"tag", delivery{"github", "push", id(), push(f.repo, "refs/tags/v1", f.sha), ""}, 200, "tags run nothing"},
		{"deleted branch", delivery{"github", "push", id(), push(f.repo, "refs/heads/main", strings.Repeat("0", 40)), ""}, 200, "deletion"},
		{"short sha", delivery{"github", "push", id(), push(f.repo, "refs/heads/main", "abc123"), ""}, 400, "hex digits"},
		{"unknown repository", delivery{"github", "push", id(), push("https://example.com/other/repo.git", "refs/heads/main", f.sha), ""}, 422, "not one this server builds"},
		{"pr opened into main", delivery{"github", "pull_request", id(), pr(f.repo, "opened", "feature/x", "main", f.sha), ""}, 202, `"status":"queued"`},
		{"pr synchronize (gitea)", delivery{"gitea", "pull_request", id(), pr(f.repo, "synchronized", "feature/x", "main", f.sha), ""}, 202, `"status":"queued"`},
		{"pr into dev", delivery{"github", "pull_request", id(), pr(f.repo, "opened", "feature/x", "dev", f.sha), ""}, 200, "not triggered"},
		{"pr closed", delivery{"github", "pull_request", id(), pr(f.repo, "closed", "feature/x", "main", f.sha), ""}, 200, "runs nothing"},
		{"other event", delivery{"github", "issues", id(), []byte(`{}`), ""}, 200, "runs nothing"},
		{"ping", delivery{"github", "ping", id(), []byte(`{"zen":"x"}`), ""}, 200, "pong"},
		{"no delivery id", delivery{"github", "push", "", push(f.repo, "refs/heads/main", f.sha), ""}, 400, "X-GitHub-Delivery"},
		{"oversized", delivery{"github", "push", id(), bytes.Repeat([]byte(" "), 65<<10), ""}, 413, "over"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.send(t, tt.d)
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.want) {
				t.Errorf("got %d %s, want %d with %q", rec.Code, rec.Body.String(), tt.status, tt.want)
			}
		})
	}
	if strings.Contains(f.logs.String(), payloadMarker) {
		t.Errorf("the logs carry payload text:\n%s", f.logs.String())
	}
	items, err := f.st.QueueItems(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 4 {
		t.Errorf("queued %d runs, want 4 (two pushes, two pull requests)", len(items))
	}
	for _, it := range items {
		if it.Repo != f.repo {
			t.Errorf("item %s fetches from %q, want the configured %q", it.ID, it.Repo, f.repo)
		}
		if it.Concurrency != 3 {
			t.Errorf("item %s has concurrency %d, want 3 (on.concurrency of the default branch)", it.ID, it.Concurrency)
		}
	}
}

func TestReplayedDeliveryRefused(t *testing.T) {
	f := newFixture(t)
	d := delivery{"github", "push", "same-id", push(f.repo, "refs/heads/main", f.sha), ""}
	if rec := f.send(t, d); rec.Code != http.StatusAccepted {
		t.Fatalf("first delivery: %d %s", rec.Code, rec.Body)
	}
	rec := f.send(t, d)
	if rec.Code != http.StatusConflict {
		t.Fatalf("replay: got %d %s, want 409", rec.Code, rec.Body)
	}
	items, _ := f.st.QueueItems(context.Background(), "")
	if len(items) != 1 {
		t.Errorf("%d runs queued, want 1", len(items))
	}
}

// TestHostileBranchNames sends names that would run a command if they
// reached a shell or git's option parser: each is refused, nothing runs.
func TestHostileBranchNames(t *testing.T) {
	f := newFixture(t)
	marker := filepath.Join(t.TempDir(), "pwned")
	names := []string{
		"$(touch " + marker + ")",
		"`touch " + marker + "`",
		"--upload-pack=touch " + marker,
		"-c core.sshCommand=touch " + marker,
		"main;touch " + marker,
	}
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			for _, d := range []delivery{
				{"github", "push", fmt.Sprintf("p-%d", i), push(f.repo, "refs/heads/"+name, f.sha), ""},
				{"github", "pull_request", fmt.Sprintf("h-%d", i), pr(f.repo, "opened", name, "main", f.sha), ""},
				{"github", "pull_request", fmt.Sprintf("b-%d", i), pr(f.repo, "opened", "x", name, f.sha), ""},
			} {
				rec := f.send(t, d)
				if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "invalid value") {
					t.Errorf("%s: got %d %s, want 400 invalid value", d.id, rec.Code, rec.Body)
				}
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("a hostile branch name ran a command")
			}
		})
	}
	items, _ := f.st.QueueItems(context.Background(), "")
	if len(items) != 0 {
		t.Errorf("%d runs queued from hostile names", len(items))
	}
}

func TestReadSecrets(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "secret")
	if err := os.WriteFile(p, []byte("\nfirst-secret-0123456789\nsecond-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSecrets(p)
	if err != nil || len(got) != 2 || string(got[1]) != "second-secret-0123456789" {
		t.Fatalf("ReadSecrets = %q, %v", got, err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecrets(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("ReadSecrets of a world-readable file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("push", string(push("/r", "refs/heads/main", strings.Repeat("a", 40))))
	f.Add("pull_request", string(pr("/r", "opened", "a", "main", strings.Repeat("b", 40))))
	f.Add("push", `{"ref": "refs/heads/..", "after": "`+strings.Repeat("0", 40)+`"}`)
	f.Fuzz(func(t *testing.T, kind, body string) {
		ev, err := parse(kind, []byte(body))
		if err != nil {
			return
		}
		if queue.CheckBranch(ev.branch) != nil || queue.CheckSHA(ev.sha) != nil {
			t.Fatalf("parse accepted branch %q sha %q", ev.branch, ev.sha)
		}
		if ev.kind == "pull_request" && queue.CheckBranch(ev.base) != nil {
			t.Fatalf("parse accepted base %q", ev.base)
		}
	})
}
