package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-ci/gantry/internal/runtime"
)

const deployDigest = "sha256:feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface"

// controller is a runtime.Deployer that records what the CLI asks.
type controller struct {
	mu        sync.Mutex
	deploys   []runtime.DeployRequest
	rollbacks []string // "env who reason"
	current   *runtime.Revision
	deployErr error
	// hist is what History answers, histErr its error.
	hist    []runtime.Revision
	histErr error
}

var _ runtime.Deployer = (*controller)(nil)

func (c *controller) Deploy(_ context.Context, req runtime.DeployRequest) (runtime.Revision, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deploys = append(c.deploys, req)
	if c.deployErr != nil {
		return runtime.Revision{}, c.deployErr
	}
	img := req.Workloads[0].Image
	rev := runtime.Revision{Environment: req.Environment, Number: 1, Digest: img[strings.Index(img, "@")+1:], Status: "serving"}
	c.current = &rev
	return rev, nil
}

func (c *controller) Rollback(_ context.Context, env string, to int, who, reason string) (runtime.Revision, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rollbacks = append(c.rollbacks, fmt.Sprintf("%s %d %s %s", env, to, who, reason))
	rev := runtime.Revision{Environment: env, Number: 3, Digest: "sha256:0ld", Status: "serving"}
	c.current = &rev
	return rev, nil
}

func (c *controller) Status(_ context.Context, env string) (runtime.EnvironmentStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return runtime.EnvironmentStatus{Name: env, URL: "http://127.0.0.1:18080", Current: c.current}, nil
}

func (c *controller) List(context.Context) ([]runtime.EnvironmentStatus, error) { return nil, nil }
func (c *controller) History(context.Context, string) ([]runtime.Revision, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hist, c.histErr
}
func (c *controller) Logs(context.Context, string, bool, io.Writer) error { return nil }

// withController points connectDeployer at c for the test.
func withController(t *testing.T, c *controller) {
	t.Helper()
	old := connectDeployer
	t.Cleanup(func() { connectDeployer = old })
	if c == nil {
		connectDeployer = nil
		return
	}
	connectDeployer = func(context.Context, string) (runtime.Deployer, error) { return c, nil }
}

func TestDeployCommand(t *testing.T) {
	example, err := filepath.Abs("../../examples/payment-service")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(file, []byte("name: payment-service\nenvironments:\n  staging:\n    values: [deploy/chart/values-local.yaml]\n    services: [postgres, redis, sqs]\nstages: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	image := "127.0.0.1:5000/payment-service@" + deployDigest
	base := []string{"deploy", "--dir", example, "--file", file}
	tests := []struct {
		name       string
		args       []string
		controller *controller
		code       int
		want       string
	}{
		{"serves", append(base, image, "--env", "staging"), &controller{}, 0, "staging: revision 1 serves " + deployDigest + " at http://127.0.0.1:18080"},
		{"tag", append(base, "payment-service:1.0", "--env", "staging"), &controller{}, 2, `"payment-service:1.0" is not REPO@sha256:...: gantry deploys an image by digest, never a tag`},
		{"no env flag", append(base, image), &controller{}, 2, "--env is required"},
		{"unknown environment", append(base, image, "--env", "prod"), &controller{}, 2, `has no environment "prod" (it declares staging)`},
		{"not ready", append(base, image, "--env", "staging"), &controller{deployErr: fmt.Errorf("%w: GET /readyz: 503", runtime.ErrNotReady)}, 1, "deploy to staging: revision did not become ready: GET /readyz: 503"},
		{"no controller in this build", append(base, image, "--env", "staging"), nil, 1, "this gantry has no environment controller (gantry serve) yet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			withController(t, tc.controller)
			out, code := runCLI(t, "", tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want %d; output lacks %q:\n%s", code, tc.code, tc.want, out)
			}
			if tc.code != 0 {
				return
			}
			if len(tc.controller.deploys) != 1 {
				t.Fatalf("%d deploys, want 1", len(tc.controller.deploys))
			}
			req := tc.controller.deploys[0]
			if req.Reason != "gantry deploy" || req.Who == "" || req.Run != 0 || req.Workloads[0].Image != image || req.Workloads[0].Replicas != 2 {
				t.Errorf("request: reason %q who %q run %d image %s replicas %d", req.Reason, req.Who, req.Run, req.Workloads[0].Image, req.Workloads[0].Replicas)
			}
		})
	}
}

// TestRunRollsBackDeclaredEnvironment: a stage that fails runs its
// rollback of a declared environment through the controller, and the run
// says which digest was rolled back to what.
func TestRunRollsBackDeclaredEnvironment(t *testing.T) {
	repo := rollbackRepo(t)
	c := &controller{current: &runtime.Revision{Number: 4, Digest: "sha256:new"}, hist: []runtime.Revision{
		{Number: 3, Digest: "sha256:0ld", Status: "superseded"},
		{Number: 4, Digest: "sha256:new", Status: "serving"},
	}}
	withController(t, c)
	out, code := runCLI(t, "", "run", "--dir", repo, "--progress", "plain")
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	if want := "rollback staging: sha256:new -> sha256:0ld (revision 3)"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	if len(c.rollbacks) != 1 || !strings.HasPrefix(c.rollbacks[0], "staging 0 ") || !strings.HasSuffix(c.rollbacks[0], " on_failure of stage deploy-staging") {
		t.Errorf("rollbacks: got %q, want staging to the previous revision, on_failure of stage deploy-staging", c.rollbacks)
	}

	// Without a controller the rollback fails saying why; the run still
	// ends failed, not broken.
	withController(t, nil)
	out, code = runCLI(t, "", "run", "--dir", repo, "--progress", "plain")
	if code != 1 || !strings.Contains(out, "this gantry has no environment controller (gantry serve) yet") {
		t.Errorf("exit %d, want 1 with the missing controller named:\n%s", code, out)
	}
}

func TestRollbackLine(t *testing.T) {
	tests := []struct {
		from string
		rev  runtime.Revision
		want string
	}{
		{"sha256:b", runtime.Revision{Number: 2, Digest: "sha256:a"}, "rollback staging: sha256:b -> sha256:a (revision 2)"},
		{"", runtime.Revision{Number: 1, Digest: "sha256:a"}, "rollback staging: nothing serving -> sha256:a (revision 1)"},
	}
	for _, tc := range tests {
		if got := rollbackLine("staging", tc.from, tc.rev); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// TestValidateDeployKind: with a controller the deploy kind is known and
// its inputs are checked; without one it is an unknown kind at
// validation, not a failure at run time.
func TestValidateDeployKind(t *testing.T) {
	repo := t.TempDir()
	for name, data := range map[string]string{
		"deploy/chart/Chart.yaml": "apiVersion: v2\nname: x\nversion: 0.1.0\n",
		".gantry/pipeline.yaml":   "name: demo\nenvironments:\n  staging: {}\nstages:\n  - name: d\n    steps: [{name: deploy, uses: deploy, with: {environment: staging}}]\n",
		".gantry/tag.yaml":        "name: demo\nenvironments:\n  staging: {}\nstages:\n  - name: d\n    steps: [{name: deploy, uses: deploy, with: {environment: staging, image: 'app:1'}}]\n",
	} {
		p := filepath.Join(repo, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name       string
		controller *controller
		file       string
		code       int
		want       string
	}{
		{"with a controller", &controller{}, ".gantry/pipeline.yaml", 0, "pipeline demo is valid: 1 stages, 1 steps"},
		{"a tag", &controller{}, ".gantry/tag.yaml", 2, "tag.yaml:6:78: with.image \"app:1\" is not REPO@sha256:..."},
		{"without a controller", nil, ".gantry/pipeline.yaml", 2, `unknown step kind "deploy"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			withController(t, tc.controller)
			out, code := runCLI(t, "", "validate", filepath.Join(repo, filepath.FromSlash(tc.file)))
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, want %d; output lacks %q:\n%s", code, tc.code, tc.want, out)
			}
		})
	}
}

// rollbackRepo is a git repository whose pipeline declares staging and
// has a stage that fails with on_failure rollback of it.
func rollbackRepo(t *testing.T) string {
	t.Helper()
	repo := t.TempDir()
	files := map[string]string{
		"deploy/chart/Chart.yaml": "apiVersion: v2\nname: x\nversion: 0.1.0\n",
		".gantry/pipeline.yaml": `name: demo
environments:
  staging: {}
stages:
  - name: deploy-staging
    steps: [{name: smoke, run: 'false'}]
    on_failure: [{rollback: staging}]
`,
	}
	for name, data := range files {
		p := filepath.Join(repo, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "init"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return repo
}
