package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/store"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// oneOffSecret is the value of the secret both ways of running a step
// declare; the workspace puts it where the tools print it (a module
// path, a directory name, a commit subject, a binary's name).
const (
	oneOffSecret    = "s3cr3tv4lue"
	oneOffSecretEnv = "GANTRY_ONEOFF_SECRET"
)

// oneOffWorkspace is a git repository holding a Go module named after the
// secret (a package, its test, a weak-crypto warning for sast, a main
// package to build), a formatted Terraform file, two commits whose
// subjects hold the secret (one with a commitlint warning) and a Go
// binary with known vulnerabilities under bin/.
func oneOffWorkspace(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "go", "install Go")
	}
	ws := t.TempDir()
	files := map[string]string{
		"go.mod":                      "module example.com/" + oneOffSecret + "\n\ngo 1.22\n",
		oneOffSecret + "/lib.go":      "package lib\n\n// Add adds.\nfunc Add(a, b int) int { return a + b }\n",
		oneOffSecret + "/lib_test.go": "package lib\n\nimport \"testing\"\n\nfunc TestAdd(t *testing.T) {\n\tif Add(1, 2) != 3 {\n\t\tt.Fatal(\"bad\")\n\t}\n}\n",
		oneOffSecret + "/sum.go":      "package lib\n\nimport \"crypto/md5\"\n\n// Sum sums.\nfunc Sum(b []byte) [16]byte { return md5.Sum(b) }\n",
		"cmd/app/main.go":             "package main\n\nfunc main() {}\n",
		"main.tf":                     "resource \"x\" \"y\" {\n  a = 1\n}\n",
	}
	for name, content := range files {
		path := filepath.Join(ws, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = ws
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", "main")
	git("add", ".")
	git("commit", "-q", "-m", "chore: init")
	git("commit", "-q", "--allow-empty", "-m", "feat: add "+oneOffSecret, "-m", "body")
	git("commit", "-q", "--allow-empty", "-m", "feat: more "+oneOffSecret+"\nbody right after the subject")
	src, err := filepath.Abs("../vuln/testdata/vulnapp")
	if err != nil {
		t.Fatal(err)
	}
	build := proc.Command(t.Context(), "go", "build", "-o", filepath.Join(ws, "bin", oneOffSecret+"-app"), ".")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=readonly")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return ws
}

// TestOneOffCommandsMatchPipeline runs each one-off command and the same
// step inside a pipeline file through gantry run, twice each: both ways
// record a run with the step, mask the secret in what is printed and
// stored, and repeat a cacheable step as a cache hit.
func TestOneOffCommandsMatchPipeline(t *testing.T) {
	ws := oneOffWorkspace(t)
	db := filepath.Join(sharedData(t), "go-vulndb-osv.tar.gz")
	t.Setenv(oneOffSecretEnv, oneOffSecret)
	t.Setenv("GANTRY_VULN_DB", "")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	app := filepath.Join(ws, "bin", oneOffSecret+"-app")

	tests := []struct {
		name string
		// command is what a one-off run records; args its command line.
		command string
		args    []string
		// stage and step are the same step in a pipeline file.
		stage, step string
		code        int
		// masked: the tool prints the secret, which must show as ***.
		masked bool
		// cached: the kind is cacheable, so the second run is a hit.
		cached bool
	}{
		{name: "test", command: "test", args: []string{"test", ws, "--race=false"},
			stage: "test", step: "{name: test, uses: go-test, with: {race: false}}", masked: true, cached: true},
		{name: "check terraform-fmt", command: "check terraform-fmt", args: []string{"check", "terraform-fmt", ws},
			stage: "check", step: "{name: terraform-fmt, uses: terraform-fmt, with: {fail_on: error}}", cached: true},
		{name: "check commitlint", command: "check commitlint", args: []string{"check", "commitlint", ws, "--from", "HEAD~2", "--to", "HEAD"},
			stage: "check", step: "{name: commitlint, uses: commitlint, with: {from: HEAD~2, to: HEAD}}", masked: true},
		{name: "sast", command: "sast", args: []string{"sast", ws, "--history", "none", "--fail-on", "error"},
			stage: "security", step: "{name: sast, uses: sast, with: {history: none, fail_on: error}}", masked: true, cached: true},
		{name: "licenses", command: "licenses", args: []string{"licenses", ws},
			stage: "security", step: "{name: licenses, uses: license-check}", masked: true, cached: true},
		{name: "scan", command: "scan", args: []string{"scan", app, "--db", db, "--unscored", "ignore"},
			stage: "security", step: fmt.Sprintf("{name: scan, uses: vuln-scan, with: {target: ./bin/%s-app, db: %s, unscored: ignore}}", oneOffSecret, db),
			// A path target is not cacheable (the kind digests images,
			// not files), either way.
			masked: true},
		{name: "sbom", command: "sbom", args: []string{"sbom", app},
			stage: "security", step: fmt.Sprintf("{name: sbom, uses: sbom, with: {target: bin/%s-app, attach: false}}", oneOffSecret), masked: true},
		{name: "build", command: "build", args: []string{"build", ws, "--package", "./cmd/app", "--platform", "linux/amd64"},
			stage: "build", step: "{name: image, uses: image-build, with: {package: ./cmd/app, platforms: [linux/amd64]}}"},
		{name: "load", command: "load", args: []string{"load", "--url", srv.URL, "--rate", "5", "--duration", "1s"},
			stage: "load", step: fmt.Sprintf("{name: load, uses: load-test, with: {url: %q, rate: 5, duration: 1s}}", srv.URL)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pipeline := filepath.Join(t.TempDir(), "pipeline.yaml")
			if err := os.WriteFile(pipeline, []byte(fmt.Sprintf(`name: both-ways
secrets:
  %[1]s: {env: %[1]s}
stages:
  - name: %[2]s
    steps:
      - %[3]s
`, oneOffSecretEnv, tt.stage, withSecrets(tt.step))), 0o644); err != nil {
				t.Fatal(err)
			}
			ways := []struct {
				name, command string
				args          []string
			}{
				{"one-off", tt.command, append(append([]string{}, tt.args...), "--secret", oneOffSecretEnv)},
				{"pipeline", "", []string{"run", "--dir", ws, "--pipeline", pipeline, "--progress", "plain"}},
			}
			for _, way := range ways {
				state := t.TempDir()
				for i := 1; i <= 2; i++ {
					out, code := runCLIIn(t, state, way.args...)
					if code != tt.code {
						t.Fatalf("%s, run %d: exit %d, want %d\n%s", way.name, i, code, tt.code, out)
					}
					if strings.Contains(out, oneOffSecret) {
						t.Errorf("%s, run %d: the secret is printed:\n%s", way.name, i, out)
					}
					if tt.masked && i == 1 && !strings.Contains(out, "***") {
						t.Errorf("%s, run %d: want the secret masked as ***:\n%s", way.name, i, out)
					}
					run, st := lastRun(t, state)
					if run.Request.Command != way.command {
						t.Errorf("%s, run %d: recorded command %q, want %q", way.name, i, run.Request.Command, way.command)
					}
					if run.Status != store.StatusPassed {
						t.Errorf("%s, run %d: run %d is %s (%s), want passed", way.name, i, run.ID, run.Status, run.Message)
					}
					stepName := strings.TrimSuffix(strings.Fields(tt.step)[1], ",") // {name: NAME, ...}
					status, logs := recordedStep(t, st, run.ID, stepName)
					wantStatus := store.StatusPassed
					if tt.cached && i == 2 {
						wantStatus = store.StatusCached
					}
					if status != wantStatus {
						t.Errorf("%s, run %d: step %s is %s, want %s", way.name, i, stepName, status, wantStatus)
					}
					if strings.Contains(logs, oneOffSecret) {
						t.Errorf("%s, run %d: the stored log holds the secret:\n%s", way.name, i, logs)
					}
					if tt.masked && status == store.StatusPassed && !strings.Contains(logs, "***") {
						t.Errorf("%s, run %d: the stored log lacks the masked secret:\n%s", way.name, i, logs)
					}
					st.Close()
				}
			}
		})
	}
}

// withSecrets adds secrets: [the test's secret] to a step written as a
// YAML flow mapping.
func withSecrets(step string) string {
	return strings.TrimSuffix(step, "}") + ", secrets: [" + oneOffSecretEnv + "]}"
}

// lastRun opens the history in state and returns its newest run; the
// caller closes the store.
func lastRun(t *testing.T, state string) (store.Run, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), state)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := st.ListRuns(context.Background(), store.ListOptions{Limit: 1})
	if err != nil || len(runs) != 1 {
		st.Close()
		t.Fatalf("runs in %s: %v, %v; want one", state, runs, err)
	}
	return runs[0], st
}

// recordedStep returns the status of step name of run id and its stored
// log.
func recordedStep(t *testing.T, st *store.Store, id int64, name string) (store.Status, string) {
	t.Helper()
	ctx := context.Background()
	steps, err := st.Steps(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if s.Name != name {
			continue
		}
		lines, err := st.Logs(ctx, id, s.Stage, s.Name, 0)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, l := range lines {
			b.WriteString(l.Text + "\n")
		}
		return s.Status, b.String()
	}
	t.Fatalf("run %d recorded no step %s (steps: %+v)", id, name, steps)
	return "", ""
}

// TestOneOffFlagValuesAreLiteral: a ${...} in a flag value reaches the
// kind as written; it is neither evaluated nor refused as an expression.
func TestOneOffFlagValuesAreLiteral(t *testing.T) {
	job := &oneOff{command: "check terraform-fmt", stage: "check",
		steps: []oneOffStep{{name: "kubeconform", uses: "kubeconform", with: map[string]any{
			"skip_kinds": []string{"${secrets.X}", "Job"},
			"helm":       []map[string]any{{"chart": "c", "set": []string{"a=${env.HOME}"}}},
		}}}}
	data, err := job.pipelineFile()
	if err != nil {
		t.Fatal(err)
	}
	p, err := spec.Parse("one-off", data, builtinRegistry())
	if err != nil {
		t.Fatalf("the one-off pipeline does not validate: %v\n%s", err, data)
	}
	var with struct {
		SkipKinds []string `yaml:"skip_kinds"`
		Helm      []struct {
			Set []string `yaml:"set"`
		} `yaml:"helm"`
	}
	if err := p.Stages[0].Steps[0].With.Decode(&with); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ got, want string }{
		{with.SkipKinds[0], "$${secrets.X}"},
		{with.Helm[0].Set[0], "a=$${env.HOME}"},
	} {
		if tc.got != tc.want {
			t.Errorf("with: got %q, want %q (escaped, so that the run reads it literally)", tc.got, tc.want)
		}
	}
}
