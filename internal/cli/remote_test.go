package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/artifact"
	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/runview"
	"github.com/gantry-ci/gantry/internal/serve"
	"github.com/gantry-ci/gantry/internal/store"
)

const testToken = "test-token-4f1c2b"

// serveState serves the API over the run history of state on a real
// HTTP server whose requests carrying testToken act as name with role,
// as the auth middleware will.
func serveState(t *testing.T, state, name string, role auth.Role) *httptest.Server {
	t.Helper()
	st, err := store.Open(t.Context(), state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	arts, err := artifact.New(filepath.Join(state, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(st, arts, state)
	if err != nil {
		t.Fatal(err)
	}
	api := serve.NewAPI(nil, func() serve.Health { return serve.Health{} }, func() {}, t.Context(), slog.New(slog.DiscardHandler))
	api.SetRuns(serve.Runs{Store: st, Artifacts: arts, StateDir: state, Decider: eng})
	h := api.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer "+testToken {
			r = r.WithContext(auth.WithIdentity(r.Context(), auth.Identity{Name: name, Role: role, Method: auth.MethodToken, Remote: r.RemoteAddr}))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

const secretPipeline = `name: secretive
secrets:
  DEPLOY_KEY: {env: GANTRY_TEST_DEPLOY_KEY}
stages:
  - name: build
    steps:
      - name: leak
        secrets: [DEPLOY_KEY]
        outputs: [key]
        run: |
          echo "key=$DEPLOY_KEY"
          printf '%s' "$DEPLOY_KEY" | base64
          echo "key=$DEPLOY_KEY" >> "$GANTRY_OUTPUT"
          echo "failing with $DEPLOY_KEY" >&2
          exit 3
`

// TestAPINeverAnswersSecrets runs a pipeline whose step prints, outputs
// and fails with a secret, then reads every endpoint of the run: neither
// the secret nor its base64 or URL-encoded forms are in any answer.
func TestAPINeverAnswersSecrets(t *testing.T) {
	const secret = "s3cr3t-Deploy/Key+value=="
	t.Setenv("GANTRY_TEST_DEPLOY_KEY", secret)
	repo := gitRepo(t, secretPipeline)
	state := t.TempDir()
	if _, stderr, code := gantry(t, state, "run", "--dir", repo, "--progress", "plain"); code != ExitFailed {
		t.Fatalf("gantry run: exit %d, want %d (the step fails)\n%s", code, ExitFailed, stderr)
	}
	srv := serveState(t, state, "vic", auth.RoleViewer)
	get := func(path string) string {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s %s", path, resp.Status, b)
		}
		return string(b)
	}
	paths := []string{"/api/v1/runs", "/api/v1/runs/1", "/api/v1/runs/1/logs", "/api/v1/runs/1/logs?stage=build&step=leak",
		"/api/v1/runs/1/logs/stream", "/api/v1/runs/1/artifacts", "/api/v1/runs/1/approvals", "/api/v1/approvals"}
	var arts serve.Page[runview.Artifact]
	if err := json.Unmarshal([]byte(get("/api/v1/runs/1/artifacts")), &arts); err != nil {
		t.Fatal(err)
	}
	for _, a := range arts.Items {
		paths = append(paths, "/api/v1/runs/1/artifacts/"+a.Digest)
	}
	forms := map[string]string{
		"plain":      secret,
		"base64":     base64.StdEncoding.EncodeToString([]byte(secret)),
		"base64url":  base64.URLEncoding.EncodeToString([]byte(secret)),
		"url":        url.QueryEscape(secret),
		"path":       url.PathEscape(secret),
		"json":       strings.Trim(mustJSON(t, secret), `"`),
		"json-slash": strings.ReplaceAll(secret, "/", `\/`),
	}
	sawMask := false
	for _, p := range paths {
		body := get(p)
		sawMask = sawMask || strings.Contains(body, "***")
		for name, form := range forms {
			if strings.Contains(body, form) {
				t.Errorf("GET %s answers the secret (%s form %q):\n%s", p, name, form, body)
			}
		}
	}
	if !sawMask {
		t.Errorf("no answer shows the masked secret ***: the step's output did not reach the API")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const remotePipeline = `name: remote
stages:
  - name: build
    steps:
      - name: hello
        outputs: [greeting]
        run: |
          echo "hello from $GANTRY_STAGE"
          echo "greeting=hi" >> "$GANTRY_OUTPUT"
  - name: prod
    approval: {required: true, roles: [oncall-lead]}
    steps:
      - {name: ship, run: 'echo shipped'}
`

// TestRemoteCommandsPrintAsLocal: runs, show and logs with --server
// print what they print on the state dir itself; approve and reject
// decide on the server as the token's user.
func TestRemoteCommandsPrintAsLocal(t *testing.T) {
	repo := gitRepo(t, remotePipeline)
	writeFile(t, filepath.Join(repo, ".gantry", "approvers.yaml"), "oncall-lead: [alice]\n")
	gitCommitAll(t, repo, "chore: approvers")
	state := t.TempDir()
	if _, stderr, code := gantry(t, state, "run", "--dir", repo, "--progress", "plain"); code != ExitWaiting {
		t.Fatalf("gantry run: exit %d, want %d (waiting)\n%s", code, ExitWaiting, stderr)
	}
	srv := serveState(t, state, "alice", auth.RoleOncallLead)
	t.Setenv("GANTRY_TOKEN", testToken)
	other := t.TempDir() // the remote commands must not read the local state
	for _, args := range [][]string{
		{"runs"},
		{"runs", "-o", "json"},
		{"runs", "--status", "waiting", "-o", "yaml"},
		{"show", "1"},
		{"show", "1", "-o", "json"},
		{"logs", "1"},
		{"logs", "1", "hello"},
		{"logs", "1", "build/hello", "-f"},
		{"logs", "1", "-f"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			local, lerr, lcode := gantry(t, state, args...)
			remote, rerr, rcode := gantry(t, other, append(args, "--server", srv.URL)...)
			if lcode != 0 || rcode != 0 {
				t.Fatalf("exit local %d remote %d\n%s\n%s", lcode, rcode, lerr, rerr)
			}
			if remote != local {
				t.Errorf("--server output differs\nremote:\n%s\nlocal:\n%s", remote, local)
			}
			if strings.TrimSpace(local) == "" {
				t.Errorf("no output")
			}
		})
	}

	t.Run("errors keep their exit status", func(t *testing.T) {
		for _, tt := range []struct {
			args []string
			code int
		}{
			{[]string{"show", "99"}, ExitUsage},
			{[]string{"logs", "1", "nope"}, ExitUsage},
		} {
			_, lerr, lcode := gantry(t, state, tt.args...)
			_, rerr, rcode := gantry(t, other, append(tt.args, "--server", srv.URL)...)
			if lcode != tt.code || rcode != tt.code {
				t.Errorf("%v: exit local %d remote %d, want %d\n%s\n%s", tt.args, lcode, rcode, tt.code, lerr, rerr)
			}
		}
	})

	t.Run("reject as the token's user", func(t *testing.T) {
		out, stderr, code := gantry(t, other, "reject", "1", "--reason", "not now", "--server", srv.URL)
		if code != 0 || !strings.Contains(out, "rejected stage prod of run 1 as alice") {
			t.Fatalf("reject: exit %d\n%s%s", code, out, stderr)
		}
		out, _, _ = gantry(t, state, "show", "1")
		if !strings.Contains(out, "rejected") {
			t.Errorf("local show after the remote rejection:\n%s", out)
		}
		_, stderr, code = gantry(t, other, "approve", "1", "--server", srv.URL)
		if code != ExitUsage {
			t.Errorf("approve a rejected run: exit %d, want %d\n%s", code, ExitUsage, stderr)
		}
	})
}

// TestRemoteRefusals: a bad server URL or token source is bad usage; a
// role the approvers file does not give is 77.
func TestRemoteRefusals(t *testing.T) {
	repo := gitRepo(t, remotePipeline)
	state := t.TempDir()
	if _, stderr, code := gantry(t, state, "run", "--dir", repo, "--progress", "plain"); code != ExitWaiting {
		t.Fatalf("gantry run: exit %d\n%s", code, stderr)
	}
	srv := serveState(t, state, "mallory", auth.RoleOncallLead)
	loose := filepath.Join(t.TempDir(), "token")
	writeFile(t, loose, testToken)
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	tight := filepath.Join(t.TempDir(), "token")
	writeFile(t, tight, testToken+"\n")
	if err := os.Chmod(tight, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  string
		args []string
		code int
		says string
	}{
		{"plain http off the loopback", testToken, []string{"runs", "--server", "http://ci.example.com"}, ExitUsage, "https://"},
		{"no token", "", []string{"runs", "--server", srv.URL}, ExitUsage, "GANTRY_TOKEN"},
		{"token file readable by others", "", []string{"runs", "--server", srv.URL, "--token-file", loose}, ExitUsage, "readable by other users"},
		{"token file without server", "", []string{"runs", "--token-file", tight}, ExitUsage, "--token-file goes with --server"},
		{"wrong token", "wrong", []string{"runs", "--server", srv.URL}, ExitForbidden, "not logged in"},
		{"not an approver", testToken, []string{"approve", "1", "--no-resume", "--server", srv.URL}, ExitForbidden, "holds none of the roles"},
		{"no queue on the server", testToken, []string{"approve", "1", "--server", srv.URL}, ExitFailed, "cannot resume runs yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GANTRY_TOKEN", tt.env)
			out, stderr, code := gantry(t, t.TempDir(), tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.says) {
				t.Errorf("exit %d, want %d; stderr %q, want it to say %q\n%s", code, tt.code, stderr, tt.says, out)
			}
		})
	}
	t.Run("token file", func(t *testing.T) {
		t.Setenv("GANTRY_TOKEN", "")
		out, stderr, code := gantry(t, t.TempDir(), "runs", "--server", srv.URL, "--token-file", tight)
		if code != 0 || !strings.Contains(out, "waiting") {
			t.Errorf("exit %d\n%s%s", code, out, stderr)
		}
	})
}

func gitCommitAll(t *testing.T, dir, msg string) {
	t.Helper()
	for _, args := range [][]string{
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "add", "."},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", msg},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
}

var (
	_ = context.Background
	_ = fmt.Sprint
	_ = time.Second
)

// TestRemoteRolloutStatus: rollout status (and --watch) with --server
// print what they print through the socket.
func TestRemoteRolloutStatus(t *testing.T) {
	dir := t.TempDir()
	f := &rollerFixture{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() {
		err := serve.Run(ctx, serve.Config{StateDir: dir, Deployer: &fixture{}, Roller: f})
		if err != nil {
			t.Error(err)
		}
		done <- Code(err)
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitServing(t, dir, done)

	api := serve.NewAPI(&fixture{}, func() serve.Health { return serve.Health{} }, func() {}, t.Context(), slog.New(slog.DiscardHandler))
	api.SetRoller(f)
	h := api.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer "+testToken {
			r = r.WithContext(auth.WithIdentity(r.Context(), auth.Identity{Name: "vic", Role: auth.RoleViewer, Method: auth.MethodToken}))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("GANTRY_TOKEN", testToken)
	for _, args := range [][]string{
		{"rollout", "status", "prod"},
		{"rollout", "status", "bad", "-o", "json"},
		{"rollout", "status", "done", "--watch"},
		{"rollout", "status", "none"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			local, lerr, lcode := gantry(t, dir, args...)
			remote, rerr, rcode := gantry(t, t.TempDir(), append(args, "--server", srv.URL)...)
			if lcode != rcode || remote != local {
				t.Errorf("--server: exit %d, want %d\n%s%s\nlocal:\n%s%s", rcode, lcode, remote, rerr, local, lerr)
			}
		})
	}
}

// TestRemoteRolloutVerbs: the rollout verbs with --server are taken by
// the server as the token's user, after its own role check.
func TestRemoteRolloutVerbs(t *testing.T) {
	state := t.TempDir()
	st, err := store.Open(t.Context(), state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	arts, err := artifact.New(filepath.Join(state, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	f := &rollerFixture{}
	api := serve.NewAPI(&fixture{}, func() serve.Health { return serve.Health{} }, func() {}, t.Context(), slog.New(slog.DiscardHandler))
	api.SetRoller(f)
	api.SetRuns(serve.Runs{Store: st, Artifacts: arts, StateDir: state})
	h := api.Handler()
	role := auth.RoleOncallLead
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer "+testToken {
			r = r.WithContext(auth.WithIdentity(r.Context(), auth.Identity{Name: "lee", Role: role, Method: auth.MethodToken}))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("GANTRY_TOKEN", testToken)

	out, stderr, code := gantry(t, t.TempDir(), "rollout", "abort", "prod", "--reason", "latency", "--server", srv.URL)
	if code != 0 || !strings.Contains(out, "prod: abort by gantry: Degraded") || f.Calls()[0] != "abort prod reason=latency who-set=true" {
		t.Errorf("abort: exit %d, calls %v\n%s%s", code, f.Calls(), out, stderr)
	}
	audit, err := st.AuditLog(t.Context(), 1)
	if err != nil || len(audit) != 1 || audit[0].Actor != "lee" || audit[0].Action != "rollout.abort" {
		t.Errorf("audit: got %+v (%v), want lee's rollout.abort", audit, err)
	}
	if _, stderr, code := gantry(t, t.TempDir(), "rollout", "promote", "prod", "--role", "x", "--server", srv.URL); code != ExitUsage || !strings.Contains(stderr, "--role does not go with --server") {
		t.Errorf("--role with --server: exit %d, want %d\n%s", code, ExitUsage, stderr)
	}
	role = auth.RoleDeveloper
	if _, stderr, code := gantry(t, t.TempDir(), "rollout", "promote", "prod", "--server", srv.URL); code != ExitForbidden || !strings.Contains(stderr, "needs the role oncall-lead") {
		t.Errorf("as a developer: exit %d, want %d\n%s", code, ExitForbidden, stderr)
	}
}
