package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/mask"
	"github.com/gantry-ci/gantry/internal/webhook"
)

// sweepSecret is the value the sweep's step uses: long enough that its
// encoded forms never occur by chance, with characters that URL encoding
// changes.
const sweepSecret = "sw33p-T0ken/9f3c+q7Zx=Kd81m"

const sweepPipeline = `name: sweep
on:
  push: {branches: ["**"]}
secrets:
  SWEEP_TOKEN: {env: SWEEP_TOKEN}
stages:
  - name: build
    steps:
      - name: leak
        secrets: [SWEEP_TOKEN]
        outputs: [out]
        artifacts: [reports/leak.junit.xml, reports/leak.txt, reports/leak.json]
        run: |
          echo "plain: $SWEEP_TOKEN"
          printf 'base64: %s\n' "$(printf '%s' "$SWEEP_TOKEN" | base64)"
          mkdir -p reports
          printf '<testsuites><testsuite name="leak" tests="1" failures="1"><testcase classname="leak" name="prints"><failure message="%s">%s</failure><system-out>%s</system-out></testcase></testsuite></testsuites>\n' "$SWEEP_TOKEN" "$SWEEP_TOKEN" "$SWEEP_TOKEN" > reports/leak.junit.xml
          printf 'token=%s\nb64=%s\n' "$SWEEP_TOKEN" "$(printf '%s' "$SWEEP_TOKEN" | base64)" > reports/leak.txt
          printf '{"token": "%s"}\n' "$SWEEP_TOKEN" > reports/leak.json
          echo "out=$SWEEP_TOKEN" >> "$GANTRY_OUTPUT"
      - name: after
        needs: [leak]
        secrets: [SWEEP_TOKEN]
        run: |
          echo "again: $SWEEP_TOKEN" >&2
  - name: release
    approval: {required: true, roles: [oncall-lead]}
    steps:
      - name: announce
        run: echo released
`

// sweepRequest is one request of the sweep.
type sweepRequest struct {
	method, path, body string
	// session: sent with the browser session (cookie and CSRF token)
	// instead of the API token.
	session bool
	// agent: sent with a probe agent's token (bound to eu-west) instead
	// of the admin's.
	agent bool
	// stream: an endpoint that may keep the connection open; what
	// arrived before the deadline is swept.
	stream bool
	// ok: the statuses the request must answer (none: any answer).
	ok []int
}

// TestSecretNeverLeaves: a run whose steps use a secret (print it, print
// its base64, write it into artifacts, a JUnit report and an output)
// is read back through EVERY operation of docs/openapi.yaml and every
// page and asset of the web UI of a real gantry serve --listen; no
// answer, and not the server's own log, holds the secret in any form
// internal/mask knows (plain, base64 at any offset, URL-encoded,
// JSON-escaped). An operation of the document the sweep does not
// exercise fails the test, so a new endpoint is swept from the day it
// is documented.
func TestSecretNeverLeaves(t *testing.T) {
	e := newEnv(t)
	os.Chmod(e.state, 0o700)
	e.write(".gantry/pipeline.yaml", sweepPipeline)
	e.write("README", "sweep\n")
	e.commitAll("feat: the sweep's repository")
	t.Setenv("SWEEP_TOKEN", sweepSecret)
	masker := mask.New(sweepSecret)
	leaks := func(what string, b []byte) {
		t.Helper()
		if s := string(b); masker.Mask(s) != s {
			t.Errorf("%s holds the secret (in some form):\n%s", what, truncate(s, 2000))
		}
	}

	// Run 1 from the CLI: it waits for its release approval.
	r := e.gantry("run", "--progress", "plain")
	if r.code != 75 {
		t.Fatalf("gantry run: exit %d, want 75 (waiting for approval)\n%s%s", r.code, r.stdout, r.stderr)
	}
	leaks("gantry run's output", []byte(r.stdout+r.stderr))
	_ = e.gantry("serve", "stop")

	origin := filepath.Join(t.TempDir(), "sweep.git")
	e.git("clone", "-q", "--bare", ".", origin)
	sha := e.git("rev-parse", "HEAD")
	cmd := e.cmd(context.Background(), "user", "add", "ada", "--role", "admin")
	password := "correct horse battery staple ada"
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	tok := e.gantry("token", "create", "--user", "ada")
	if tok.code != 0 {
		t.Fatalf("token create: exit %d %s", tok.code, tok.stderr)
	}
	token := strings.TrimSpace(tok.stdout)
	tok = e.gantry("token", "create", "--user", "ada", "--location", "eu-west")
	if tok.code != 0 {
		t.Fatalf("token create --location: exit %d %s", tok.code, tok.stderr)
	}
	agentToken := strings.TrimSpace(tok.stdout)
	hookSecret := "sweep-webhook-secret-0123456789"
	secretFile := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(secretFile, []byte(hookSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	srv := e.cmd(ctx, "serve", "--listen", addr, "--repo", origin, "--webhook-secret-file", secretFile,
		"--allow-local-repos", "--workers", "1")
	srv.Cancel = func() error { return srv.Process.Signal(syscall.SIGTERM) }
	srv.WaitDelay = time.Minute
	var srvLog bytes.Buffer
	srv.Stdout, srv.Stderr = &srvLog, &srvLog
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			_ = srv.Wait()
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("gantry serve:\n%s", srvLog.String())
		}
	})
	base := "http://" + addr
	waitHTTP(t, base+"/login")

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	csrf := ""
	do := func(q sweepRequest) (int, []byte) {
		t.Helper()
		rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer rcancel()
		req, err := http.NewRequestWithContext(rctx, q.method, base+q.path, strings.NewReader(q.body))
		if err != nil {
			t.Fatal(err)
		}
		if q.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if q.session {
			req.Header.Set("X-CSRF-Token", csrf)
			req.Header.Set("Origin", base)
		} else if q.agent {
			req.Header.Set("Authorization", "Bearer "+agentToken)
		} else if strings.HasPrefix(q.path, "/api/") {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Errorf("%s %s: %v", q.method, q.path, err)
			return 0, nil
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil && !(q.stream && rctx.Err() != nil) {
			t.Errorf("%s %s: read the answer: %v", q.method, q.path, err)
		}
		var head strings.Builder
		for k, v := range resp.Header {
			fmt.Fprintf(&head, "%s: %s\n", k, strings.Join(v, ", "))
		}
		what := q.method + " " + q.path
		leaks(what+" (headers)", []byte(head.String()))
		leaks(what, b)
		if len(q.ok) > 0 && !slices.Contains(q.ok, resp.StatusCode) {
			t.Errorf("%s: got %s, want one of %v\n%s", what, resp.Status, q.ok, truncate(string(b), 500))
		}
		return resp.StatusCode, b
	}
	getJSON := func(path string, v any) {
		t.Helper()
		code, b := do(sweepRequest{method: "GET", path: path, ok: []int{200}})
		if code == 200 {
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatalf("GET %s: %v\n%s", path, err, b)
			}
		}
	}

	// Run 2 through the queue (POST /api/v1/runs) and run 3 through a
	// signed webhook: both run in children of the server, which have the
	// secret in their environment as the server has.
	code, b := do(sweepRequest{method: "POST", path: "/api/v1/runs", ok: []int{202},
		body: fmt.Sprintf(`{"repo": %q, "ref": "refs/heads/main", "sha": %q}`, origin, sha)})
	var item struct {
		ID string `json:"id"`
	}
	if code != 202 || json.Unmarshal(b, &item) != nil || item.ID == "" {
		t.Fatalf("POST /api/v1/runs: %d %s", code, b)
	}
	// The webhook's run is of another branch, so that it does not
	// cancel the queued run of main.
	e.git("push", "-q", origin, "HEAD:refs/heads/feature/sweep")
	hook, _ := json.Marshal(map[string]any{"ref": "refs/heads/feature/sweep", "after": sha,
		"repository": map[string]any{"clone_url": origin}, "pusher": map[string]any{"name": "alice"}})
	hookReq := func(id string, sign bool) (int, []byte) {
		req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/github", bytes.NewReader(hook))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", id)
		if sign {
			req.Header.Set("X-Hub-Signature-256", "sha256="+webhook.Sign([]byte(hookSecret), hook))
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("webhook: %v", err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		leaks("POST /webhooks/github", out)
		return resp.StatusCode, out
	}
	if code, out := hookReq("sweep-1", true); code != 202 {
		t.Fatalf("signed webhook: %d %s", code, out)
	}
	// Both queued runs reach their approval.
	deadline := time.Now().Add(10 * time.Minute)
	var waiting []int64
	for {
		var page struct {
			Items []struct {
				ID     int64  `json:"id"`
				Status string `json:"status"`
			} `json:"items"`
		}
		getJSON("/api/v1/runs?status=waiting", &page)
		waiting = waiting[:0]
		for _, it := range page.Items {
			waiting = append(waiting, it.ID)
		}
		if len(waiting) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting runs: got %v, want 3\n%s", waiting, srvLog.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	sort.Slice(waiting, func(i, j int) bool { return waiting[i] < waiting[j] })

	// The browser session, for the auth routes.
	login := sweepRequest{method: "POST", path: "/login", ok: []int{200},
		body: fmt.Sprintf(`{"user": "ada", "password": %q}`, password)}
	var sess struct {
		CSRF string `json:"csrfToken"`
	}
	if code, b := do(login); code == 200 {
		_ = json.Unmarshal(b, &sess)
	}
	csrf = sess.CSRF
	if code, b := do(sweepRequest{method: "GET", path: "/auth/session", session: true, ok: []int{200}}); code == 200 && csrf == "" {
		_ = json.Unmarshal(b, &sess)
		csrf = sess.CSRF
	}

	// What each documented operation is sent. Requests that change
	// state come after the reads; shutdown is last.
	var reqs []sweepRequest
	var post []sweepRequest
	exercised := map[string]bool{}
	add := func(op string, qs ...sweepRequest) {
		exercised[op] = true
		reqs = append(reqs, qs...)
	}
	later := func(op string, qs ...sweepRequest) {
		exercised[op] = true
		post = append(post, qs...)
	}
	get := func(path string, ok ...int) sweepRequest {
		return sweepRequest{method: "GET", path: path, ok: ok}
	}
	add("GET /api/v1/health", get("/api/v1/health", 200))
	add("GET /api/v1/openapi.yaml", get("/api/v1/openapi.yaml", 200))
	add("GET /api/v1/runs", get("/api/v1/runs", 200), get("/api/v1/runs?limit=1", 200),
		get("/api/v1/runs?branch=main&pipeline=sweep", 200), get("/api/v1/runs?status=waiting", 200))
	add("GET /api/v1/approvals", get("/api/v1/approvals", 200))
	add("GET /api/v1/audit", get("/api/v1/audit", 200), get("/api/v1/audit?limit=500", 200))
	add("GET /api/v1/queue/{id}", get("/api/v1/queue/"+item.ID, 200))
	for _, id := range waiting {
		run := fmt.Sprintf("/api/v1/runs/%d", id)
		var detail struct {
			Stages []struct {
				Name  string `json:"name"`
				Steps []struct {
					Name      string `json:"name"`
					Artifacts []struct {
						Digest string `json:"digest"`
					} `json:"artifacts"`
					Outputs map[string]any `json:"outputs"`
				} `json:"steps"`
			} `json:"stages"`
		}
		getJSON(run, &detail)
		add("GET /api/v1/runs/{id}")
		add("GET /api/v1/runs/{id}/logs", get(run+"/logs", 200))
		add("GET /api/v1/runs/{id}/logs/stream", sweepRequest{method: "GET", path: run + "/logs/stream", ok: []int{200}, stream: true})
		var digests []string
		for _, st := range detail.Stages {
			for _, s := range st.Steps {
				q := fmt.Sprintf("?stage=%s&step=%s", st.Name, s.Name)
				add("GET /api/v1/runs/{id}/logs", get(run+"/logs"+q, 200), get(run+"/logs"+q+"&after=1&limit=1", 200))
				add("GET /api/v1/runs/{id}/logs/stream", sweepRequest{method: "GET", path: run + "/logs/stream" + q, ok: []int{200}, stream: true})
				for _, a := range s.Artifacts {
					digests = append(digests, a.Digest)
				}
			}
		}
		if len(digests) < 3 {
			t.Errorf("run %d lists %d artifacts, want the leak step's 3", id, len(digests))
		}
		var tests struct {
			Items []struct {
				Failures int `json:"failures"`
			} `json:"items"`
		}
		getJSON(run+"/tests", &tests)
		if len(tests.Items) != 1 || tests.Items[0].Failures != 1 {
			t.Errorf("run %d's tests: got %+v, want the leak step's report with its failure", id, tests.Items)
		}
		add("GET /api/v1/runs/{id}/artifacts", get(run+"/artifacts", 200))
		for _, d := range digests {
			add("GET /api/v1/runs/{id}/artifacts/{digest}", get(run+"/artifacts/"+d, 200))
			add("GET /api/v1/evidence/{digest}", get("/api/v1/evidence/"+d))
		}
		for _, rep := range []string{"tests", "coverage", "vulnerabilities", "sbom", "sarif", "exceptions", "approvals"} {
			add("GET /api/v1/runs/{id}/"+rep, get(run+"/"+rep, 200))
		}
	}
	add("GET /api/v1/environments", get("/api/v1/environments", 200))
	for _, p := range []string{"", "/revisions", "/logs", "/rollout", "/rollout/watch", "/rollout/events"} {
		add("GET /api/v1/environments/{env}"+p, sweepRequest{method: "GET", path: "/api/v1/environments/staging" + p, stream: true})
	}
	add("GET /api/v1/monitors/assignments", sweepRequest{method: "GET", path: "/api/v1/monitors/assignments?location=eu-west", agent: true, ok: []int{200}},
		get("/api/v1/monitors/assignments?location=eu-west", 403))
	add("GET /auth/session")
	add("GET /auth/methods", get("/auth/methods", 200))
	add("GET /auth/oidc/login", get("/auth/oidc/login"))
	add("GET /auth/oidc/callback", get("/auth/oidc/callback?state=x&code=y"))
	add("POST /login", login, sweepRequest{method: "POST", path: "/login", body: `{"user": "ada", "password": "wrong"}`, ok: []int{401}})

	// State-changing requests: each environment verb on an environment
	// the server does not have, the approval decisions, the queue's
	// verbs, an unsigned webhook.
	for _, v := range []string{"deploy", "rollback", "rollout", "promote", "abort", "retry", "undo"} {
		later("POST /api/v1/environments/{env}/"+v, sweepRequest{method: "POST", path: "/api/v1/environments/staging/" + v, body: `{"who": "ada"}`})
	}
	later("POST /api/v1/runs/{id}/approvals/{stage}",
		sweepRequest{method: "POST", path: fmt.Sprintf("/api/v1/runs/%d/approvals/release", waiting[0]), body: `{"decision": "reject", "comment": "swept"}`})
	later("POST /api/v1/runs")
	later("POST /api/v1/queue/{id}/retry", sweepRequest{method: "POST", path: "/api/v1/queue/" + item.ID + "/retry"})
	later("POST /api/v1/runs/{id}/cancel", sweepRequest{method: "POST", path: fmt.Sprintf("/api/v1/runs/%d/cancel", waiting[len(waiting)-1])})
	later("POST /api/v1/monitors/results", sweepRequest{method: "POST", path: "/api/v1/monitors/results", agent: true,
		body: `{"location": "eu-west", "reports": [{"environment": "staging", "revision": 1, "results": [{"monitor": "health", "location": "eu-west", "at": "2026-11-30T10:00:00Z", "ok": true, "latency": 1000000}]}]}`})
	later("POST /webhooks/{provider}")
	later("POST /logout", sweepRequest{method: "POST", path: "/logout", session: true, ok: []int{204}})
	later("POST /api/v1/shutdown", sweepRequest{method: "POST", path: "/api/v1/shutdown"})

	// Every operation of the document is exercised.
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	raw, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for p, item := range doc.Paths {
		for m := range item {
			switch m {
			case "get", "post", "put", "patch", "delete":
				documented = append(documented, strings.ToUpper(m)+" "+p)
			}
		}
	}
	sort.Strings(documented)
	for _, op := range documented {
		if !exercised[op] {
			t.Errorf("docs/openapi.yaml documents %s, which the sweep does not exercise: add it", op)
		}
	}
	for op := range exercised {
		if !slices.Contains(documented, op) {
			t.Errorf("the sweep exercises %s, which docs/openapi.yaml does not document", op)
		}
	}

	for _, q := range reqs {
		do(q)
	}
	// The web UI: its pages and every embedded file.
	for _, p := range []string{"/", "/login", "/runs", fmt.Sprintf("/runs/%d", waiting[0]), "/approvals", "/audit", "/environments"} {
		do(get(p, 200))
	}
	static := filepath.Join("..", "internal", "ui", "static")
	err = filepath.WalkDir(static, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(static, p)
		do(get("/"+filepath.ToSlash(rel), 200))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if code, out := hookReq("sweep-2", false); code != 401 {
		t.Errorf("unsigned webhook: got %d, want 401: %s", code, out)
	}
	if code, out := hookReq("sweep-1", true); code != 409 {
		t.Errorf("replayed webhook: got %d, want 409: %s", code, out)
	}
	// The session of the last login, for the logout.
	if code, b := do(sweepRequest{method: "GET", path: "/auth/session", ok: []int{200}}); code == 200 {
		_ = json.Unmarshal(b, &sess)
		csrf = sess.CSRF
	}
	for _, q := range post {
		do(q)
	}
	stop()
	leaks("gantry serve's log", srvLog.Bytes())
	t.Logf("swept %d operations of docs/openapi.yaml with %d requests", len(documented), len(reqs)+len(post))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
