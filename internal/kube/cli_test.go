package kube_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gantry-ci/gantry/internal/cli"
	"github.com/gantry-ci/gantry/internal/kubetest"
)

// gantry runs the CLI in-process and returns its exit code and output.
func gantry(t *testing.T, args ...string) (int, string) {
	t.Helper()
	root := cli.New()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		fmt.Fprintln(&out, "gantry:", err)
	}
	return cli.Code(err), out.String()
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// chartRepo writes a repository holding testdata/CHART as deploy/chart
// and pipeline as its pipeline file.
func chartRepo(t *testing.T, chart, pipeline string) string {
	t.Helper()
	repo := t.TempDir()
	copyDir(t, filepath.Join("testdata", chart), filepath.Join(repo, "deploy", "chart"))
	if err := os.MkdirAll(filepath.Join(repo, ".gantry"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, ".gantry", "pipeline.yaml"), []byte(pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	return repo
}

// TestCLIKubernetesEnvironment drives a runtime: kubernetes environment
// of a pipeline file through gantry deploy, gantry env status, history
// and rollback: no serve process, the cluster holds the state.
func TestCLIKubernetesEnvironment(t *testing.T) {
	b := kubetest.Start(t)
	repo := chartRepo(t, "web", fmt.Sprintf(`name: web
environments:
  staging:
    runtime: kubernetes
    set: {replicas: 1}
    kubernetes: {kubeconfig: %q, namespace: cli-ns, release: web, timeout: 2m}
  later:
    runtime: kubernetes
    kubernetes: {kubeconfig: %q, namespace: cli-later, release: web}
stages:
  - name: s
    steps: [{name: a, run: "true"}]
`, b.Kubeconfig, b.Kubeconfig))
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "init"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	state := t.TempDir()
	g := []string{"--state-dir", state}
	for _, n := range []int{1, 2} {
		code, out := gantry(t, append(g, "deploy", "registry.example/web@"+fmt.Sprintf("sha256:%064x", n), "--env", "staging", "--dir", repo)...)
		if want := fmt.Sprintf("staging: revision %d of helm release web runs sha256:%064x", n, n); code != 0 || !strings.Contains(out, want) {
			t.Fatalf("gantry deploy %d: exit %d\n%s\nwant exit 0 and %q", n, code, out, want)
		}
	}
	// gantry env ls lists it without a serve process, with its revision
	// and ready pod, and a kubernetes environment not installed yet.
	code, out := gantry(t, append(g, "env", "ls", "--dir", repo, "-o", "json")...)
	if code != 0 || !strings.Contains(out, `"name": "staging"`) || !strings.Contains(out, `"number": 2`) || !strings.Contains(out, `"name": "later"`) ||
		!strings.Contains(out, "gantry serve is not running: listing the pipeline file's kubernetes environments only") {
		t.Errorf("gantry env ls: exit %d\n%s\nwant staging at revision 2 and later, without a serve process", code, out)
	}
	code, out = gantry(t, append(g, "env", "history", "staging", "--dir", repo)...)
	if code != 0 || !strings.Contains(out, "superseded") || !strings.Contains(out, "serving") {
		t.Errorf("gantry env history: exit %d\n%s\nwant revisions 1 superseded and 2 serving", code, out)
	}
	code, out = gantry(t, append(g, "env", "status", "staging", "--dir", repo, "-o", "json")...)
	if code != 0 || !strings.Contains(out, `"number": 2`) || !strings.Contains(out, `"state": "ready"`) {
		t.Errorf("gantry env status: exit %d\n%s\nwant revision 2 with a ready instance", code, out)
	}
	// gantry env logs: the pods' logs through the API server (kwok's
	// kubelet API serves kubetest.PodLog), each line prefixed with its pod.
	code, out = gantry(t, append(g, "env", "logs", "staging", "--dir", repo)...)
	if code != 0 || !kubetest.HasPodLogs(out, "web-web-") {
		t.Errorf("gantry env logs: exit %d\n%s\nwant the lines %q, each prefixed with a pod of web-web", code, out, kubetest.PodLog)
	}
	code, out = gantry(t, append(g, "env", "logs", "later", "--dir", repo)...)
	if code != 1 || !strings.Contains(out, "has no revision yet") {
		t.Errorf("gantry env logs of an environment not installed: exit %d\n%s\nwant exit 1, no revision yet", code, out)
	}
	code, out = gantry(t, append(g, "env", "rollback", "staging", "--dir", repo)...)
	if want := fmt.Sprintf("staging: revision 3 serves sha256:%064x", 1); code != 0 || !strings.Contains(out, want) {
		t.Errorf("gantry env rollback: exit %d\n%s\nwant %q", code, out, want)
	}
	dep, err := b.Client.AppsV1().Deployments("cli-ns").Get(context.Background(), "web-web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := dep.Spec.Template.Spec.Containers[0].Image, fmt.Sprintf("registry.example/web@sha256:%064x", 1); got != want {
		t.Errorf("after gantry env rollback the Deployment runs %s, want %s", got, want)
	}
	code, out = gantry(t, append(g, "env", "rollback", "staging", "--dir", repo, "--to-revision", "9")...)
	if code != 1 || !strings.Contains(out, "revision 9 is not in its history") {
		t.Errorf("gantry env rollback --to-revision 9: exit %d\n%s\nwant exit 1 naming revision 9", code, out)
	}
}

// TestRunRollsBackKubernetesEnvironment: a stage that deployed and then
// failed rolls the kubernetes environment back (on_failure), through
// Helm's history, in the run's own process.
func TestRunRollsBackKubernetesEnvironment(t *testing.T) {
	b := kubetest.Start(t)
	img := func(n int) string { return fmt.Sprintf("registry.example/web@sha256:%064x", n) }
	repo := t.TempDir()
	copyDir(t, filepath.Join("testdata", "web"), filepath.Join(repo, "deploy", "chart"))
	pipeline := fmt.Sprintf(`name: web
environments:
  staging:
    runtime: kubernetes
    set: {replicas: 1}
    kubernetes: {kubeconfig: %q, namespace: run-ns, release: web}
stages:
  - name: first
    steps: [{name: d1, uses: deploy, with: {environment: staging, image: %q}}]
  - name: second
    steps:
      - {name: d2, uses: deploy, with: {environment: staging, image: %q}}
      - {name: check, needs: [d2], run: "exit 1"}
    on_failure: [{rollback: staging}]
`, b.Kubeconfig, img(1), img(2))
	if err := os.MkdirAll(filepath.Join(repo, ".gantry"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, ".gantry", "pipeline.yaml"), []byte(pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "init"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	code, out := gantry(t, "--state-dir", t.TempDir(), "run", "--dir", repo)
	want := fmt.Sprintf("rollback staging: sha256:%064x -> sha256:%064x (revision 3)", 2, 1)
	if code != 1 || !strings.Contains(out, want) {
		t.Fatalf("gantry run: exit %d\n%s\nwant exit 1 and %q", code, out, want)
	}
	dep, err := b.Client.AppsV1().Deployments("run-ns").Get(context.Background(), "web-web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := dep.Spec.Template.Spec.Containers[0].Image; got != img(1) {
		t.Errorf("after the run the Deployment runs %s, want %s", got, img(1))
	}
}

// TestCLIRolloutKubernetes drives the blue/green Rollout of a
// runtime: kubernetes environment with gantry rollout: the verbs act on
// the cluster's Argo Rollouts controller, no serve process involved.
func TestCLIRolloutKubernetes(t *testing.T) {
	b := kubetest.Start(t)
	repo := chartRepo(t, "bluegreen", fmt.Sprintf(`name: web
environments:
  prod:
    runtime: kubernetes
    kubernetes: {kubeconfig: %q, namespace: cli-bg, release: web, timeout: 2m}
stages: []
`, b.Kubeconfig))
	g := []string{"--state-dir", t.TempDir()}
	for _, n := range []int{1, 2} {
		if code, out := gantry(t, append(g, "deploy", fmt.Sprintf("registry.example/web@sha256:%064x", n), "--env", "prod", "--dir", repo)...); code != 0 {
			t.Fatalf("gantry deploy %d: exit %d\n%s", n, code, out)
		}
	}
	status := func() string {
		t.Helper()
		code, out := gantry(t, append(g, "rollout", "status", "prod", "--dir", repo, "-o", "json")...)
		if code != 0 {
			t.Fatalf("gantry rollout status: exit %d\n%s", code, out)
		}
		return out
	}
	if out := status(); !strings.Contains(out, `"phase": "Paused"`) || !strings.Contains(out, fmt.Sprintf(`"digest": "sha256:%064x"`, 2)) {
		t.Fatalf("after the second deploy: want Paused on digest 2\n%s", out)
	}
	code, out := gantry(t, append(g, "rollout", "promote", "prod", "--dir", repo)...)
	if code != 0 || !strings.Contains(out, "prod: promote by") {
		t.Fatalf("gantry rollout promote: exit %d\n%s", code, out)
	}
	code, out = gantry(t, append(g, "rollout", "status", "prod", "--dir", repo, "--watch")...)
	if code != 0 {
		t.Fatalf("gantry rollout status --watch: exit %d, want 0 once Healthy\n%s", code, out)
	}
	if out := status(); !strings.Contains(out, `"phase": "Healthy"`) {
		t.Errorf("after the promotion: want Healthy\n%s", out)
	}
	code, out = gantry(t, append(g, "rollout", "abort", "prod", "--dir", repo)...)
	if code != 2 {
		t.Errorf("gantry rollout abort of a completed rollout: exit %d, want 2 (not allowed in its state)\n%s", code, out)
	}
}
