package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testenv"
)

// uiFixture is what e2e/ui/tests/fixture.js reads: the server, its users,
// the runs prepared for the specs and the webhook delivery they send.
type uiFixture struct {
	URL     string            `json:"url"`
	Users   map[string]uiUser `json:"users"`
	Webhook uiWebhook         `json:"webhook"`
	Runs    uiRuns            `json:"runs"`
}

type uiUser struct {
	Name     string `json:"name"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

type uiWebhook struct {
	Path   string `json:"path"`
	Event  string `json:"event"`
	Body   string `json:"body"`
	Secret string `json:"secret"`
}

type uiRuns struct {
	Failed struct {
		ID      int64  `json:"id"`
		Stage   string `json:"stage"`
		Step    string `json:"step"`
		LogText string `json:"logText"`
	} `json:"failed"`
	Waiting struct {
		ID          int64  `json:"id"`
		Stage       string `json:"stage"`
		Digest      string `json:"digest"`
		Environment string `json:"environment"`
		Revision    int    `json:"revision"`
	} `json:"waiting"`
}

// TestUI runs the web UI's browser tests (e2e/ui, Playwright in Debian's
// Chromium) against a real gantry serve --listen: users of each role log
// in; a signed webhook triggers a run that goes green on the page; a
// failed step's log opens; a viewer cannot approve; the on-call lead
// approves a waiting promotion and promotes its blue/green rollout.
func TestUI(t *testing.T) {
	npm := testenv.RequireNPMInstall(t, "the UI's browser tests install @playwright/test (about 10 s once)")
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = testenv.RequireTool(t, "chromium", "apt-get install chromium")
	}
	e := newEnv(t)
	os.Chmod(e.state, 0o700)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	// The OS user approves the first promotion from the CLI; "lead"
	// approves from the UI.
	if err := os.WriteFile(filepath.Join(e.state, "approvers.yaml"), []byte("oncall-lead: [lead, "+me.Username+"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	uiRepo(t, e, "v1")
	t.Cleanup(func() { e.gantry("serve", "stop") })

	// Revision 1 of prod: a run approved from the CLI, a first rollout.
	if r := e.gantry("run", "--progress", "plain"); r.code != 75 {
		t.Fatalf("first run: exit %d, want 75 (waiting for approval)\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := e.gantry("approve", "1", "--progress", "plain"); r.code != 0 {
		t.Fatalf("approve 1: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A failed run: its check fails.
	if r := e.gantry("run", "--progress", "plain", "--var", "fail=1"); r.code != 1 {
		t.Fatalf("failing run: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Version 2 waits for its promotion.
	e.write("main.go", uiMain(t, "v2"))
	e.commitAll("feat: version v2")
	r := e.gantry("run", "--progress", "plain")
	if r.code != 75 {
		t.Fatalf("third run: exit %d, want 75\n%s%s", r.code, r.stdout, r.stderr)
	}
	waiting := e.show(3)
	_, push, _ := waiting.step("build", "push")
	digest, _ := push["digest"].(string)
	if digest == "" {
		t.Fatalf("run 3 pushed no digest: %v", push)
	}

	// A branch for the webhook, in a bare origin the server fetches from.
	origin := filepath.Join(t.TempDir(), "svc.git")
	e.git("clone", "-q", "--bare", ".", origin)
	e.git("checkout", "-q", "-b", "feature/ui")
	e.write("main.go", uiMain(t, "v3"))
	e.commitAll("feat: version v3 on a branch")
	e.git("push", "-q", origin, "feature/ui")
	sha := e.git("rev-parse", "HEAD")

	// The server: the CLI's serve stops; one with the TCP listener, the
	// queue and the webhooks takes its place.
	if r := e.gantry("serve", "stop"); r.code != 0 {
		t.Fatalf("serve stop: %d %s", r.code, r.stderr)
	}
	users := map[string]uiUser{
		"admin":     {Name: "admin", Role: "admin"},
		"developer": {Name: "dev", Role: "developer"},
		"lead":      {Name: "lead", Role: "oncall-lead"},
		"viewer":    {Name: "viewer", Role: "viewer"},
	}
	for k, u := range users {
		u.Password = "correct horse battery staple " + u.Name
		cmd := e.cmd(context.Background(), "user", "add", u.Name, "--role", u.Role)
		cmd.Stdin = strings.NewReader(u.Password + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("user add %s: %v\n%s", u.Name, err, out)
		}
		users[k] = u
	}
	secret := "ui-webhook-secret-0123456789abcdef"
	secretFile := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	srv := e.cmd(ctx, "serve", "--listen", addr, "--repo", origin, "--webhook-secret-file", secretFile,
		"--allow-local-repos", "--workers", "2")
	// Stopped as a user stops it, so that it stops the environments'
	// instances it started.
	srv.Cancel = func() error { return srv.Process.Signal(syscall.SIGTERM) }
	srv.WaitDelay = time.Minute
	var srvLog bytes.Buffer
	srv.Stdout, srv.Stderr = &srvLog, &srvLog
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = srv.Wait()
		if t.Failed() {
			t.Logf("gantry serve:\n%s", srvLog.String())
		}
	})
	base := "http://" + addr
	waitHTTP(t, base+"/login")

	body, _ := json.Marshal(map[string]any{"ref": "refs/heads/feature/ui", "after": sha,
		"repository": map[string]any{"clone_url": origin}, "pusher": map[string]any{"name": "alice"}})
	fx := uiFixture{URL: base, Users: users,
		Webhook: uiWebhook{Path: "/webhooks/github", Event: "push", Body: string(body), Secret: secret}}
	fx.Runs.Failed.ID, fx.Runs.Failed.Stage, fx.Runs.Failed.Step, fx.Runs.Failed.LogText = 2, "check", "unit", "the widget broke"
	fx.Runs.Waiting.ID, fx.Runs.Waiting.Stage, fx.Runs.Waiting.Digest = 3, "promote-prod", digest
	fx.Runs.Waiting.Environment, fx.Runs.Waiting.Revision = "prod", 2
	fixture := filepath.Join(t.TempDir(), "fixture.json")
	b, _ := json.Marshal(fx)
	if err := os.WriteFile(fixture, b, 0o600); err != nil {
		t.Fatal(err)
	}

	dir, err := filepath.Abs("ui")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@playwright", "test")); err != nil {
		install := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		install.Dir = dir
		install.Env = append(os.Environ(), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1")
		if out, err := install.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in e2e/ui: %v\n%s", err, out)
		}
	}
	results := filepath.Join(t.TempDir(), "results")
	pw := exec.Command(filepath.Join(dir, "node_modules", ".bin", "playwright"), "test")
	pw.Dir = dir
	pw.Env = append(os.Environ(), "GANTRY_UI_FIXTURE="+fixture, "GANTRY_UI_OUTPUT="+results, "CHROMIUM="+chromium)
	out, err := pw.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	pw.Stderr = pw.Stdout
	if err := pw.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		t.Log(sc.Text())
	}
	if err := pw.Wait(); err != nil {
		keep := os.Getenv("GANTRY_UI_KEEP")
		if keep != "" {
			_ = exec.Command("cp", "-r", results, keep).Run()
		}
		t.Fatalf("playwright: %v (traces: set GANTRY_UI_KEEP=DIR to keep %s)", err, results)
	}
}

// uiRepo writes e2e/testdata/uisvc into the test's repository at version
// v and commits it on main.
func uiRepo(t *testing.T, e *env, v string) {
	t.Helper()
	copyTestdata(t, e, "uisvc")
	e.write("main.go", uiMain(t, v))
	e.commitAll("feat: version " + v)
}

func uiMain(t *testing.T, v string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "uisvc", "main.go.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), `"VERSION"`, fmt.Sprintf("%q", v))
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitHTTP waits until url answers at all.
func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
