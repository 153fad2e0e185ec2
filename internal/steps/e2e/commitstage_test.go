// Package e2e runs the whole commit stage on the example repository
// (examples/payment-service, or $GANTRY_EXAMPLE_DIR): it must pass, and a
// copy with one planted defect per tool must fail with exactly that
// finding.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/checkstep"
	"github.com/gantry-ci/gantry/internal/steps/commitlint"
	"github.com/gantry-ci/gantry/internal/steps/golangcilint"
	"github.com/gantry-ci/gantry/internal/steps/helmlint"
	"github.com/gantry-ci/gantry/internal/steps/kubeconform"
	"github.com/gantry-ci/gantry/internal/steps/nextversion"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
	"github.com/gantry-ci/gantry/internal/steps/terraformfmt"
	"github.com/gantry-ci/gantry/internal/steps/tflint"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// stage is the seed's commit stage as gantry steps.
var stage = []struct {
	name string
	kind step.Kind
	with string
	tool bool // needs a pinned tool from the tool cache
}{
	{"go-lint", golangcilint.Kind, "", true},
	{"tf-fmt", terraformfmt.Kind, "dir: deploy/terraform", false},
	{"tflint", tflint.Kind, "dir: deploy/terraform", true},
	{"manifests", kubeconform.Kind, "{paths: [kubernetes], kustomize: [deploy/overlays/staging, deploy/overlays/prod], helm: [{chart: deploy/chart}]}", false},
	{"chart", helmlint.Kind, "chart: deploy/chart", false},
	{"commits", commitlint.Kind, "", false},
	{"version", nextversion.Kind, "", false},
}

func exampleDir(t *testing.T) string {
	dir := os.Getenv("GANTRY_EXAMPLE_DIR")
	if dir == "" {
		dir = "../../../examples/payment-service"
	}
	for _, p := range []string{"deploy/chart/Chart.yaml", "deploy/terraform", "kubernetes", ".golangci.yml"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Skipf("example repository incomplete (%s missing in %s)", p, dir)
		}
	}
	if _, err := exec.LookPath("git"); err != nil {
		testenv.Missing(t, "git", "apt-get install git")
	}
	return dir
}

// copyRepo copies the example into a fresh git repository with clean
// conventional commits.
func copyRepo(t *testing.T, src string) (string, []string) {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	git(t, dst, env, "init", "-q", "-b", "main")
	git(t, dst, env, "add", "-A")
	git(t, dst, env, "commit", "-q", "-m", "feat: payment service")
	git(t, dst, env, "tag", "v1.3.2")
	git(t, dst, env, "commit", "-q", "--allow-empty", "-m", "fix(api): reject negative amounts")
	return dst, env
}

func git(t *testing.T, dir string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env = dir, env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

type outcome struct {
	res   *step.Result
	err   error
	sarif []*findings.Report
	log   string
}

func runStage(t *testing.T, dir string, env []string, only, with string) map[string]outcome {
	t.Helper()
	cache := os.Getenv("GANTRY_TEST_TOOLCACHE")
	out := map[string]outcome{}
	for _, s := range stage {
		if only != "" && s.name != only {
			continue
		}
		if s.tool && cache == "" {
			t.Logf("skipping %s: set GANTRY_TEST_TOOLCACHE to run the pinned tools", s.name)
			continue
		}
		w := s.with
		if with != "" {
			w = with
		}
		st, err := s.kind.New(steptest.Inputs{YAML: w})
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		state := t.TempDir()
		if cache != "" {
			if err := os.Symlink(cache, filepath.Join(state, "tools")); err != nil {
				t.Fatal(err)
			}
		}
		var log bytes.Buffer
		tmp := t.TempDir()
		e, _ := steptest.Env(dir, state, tmp, &log)
		e.Vars, e.Git = env, step.Git{SHA: "HEAD", Event: "push", Branch: "main"}
		res, err := st.Run(context.Background(), e)
		o := outcome{res: res, err: err, log: log.String()}
		if data, rerr := os.ReadFile(filepath.Join(tmp, s.kind.Name+".sarif")); rerr == nil {
			o.sarif, _ = findings.ReadSARIF(data)
		}
		out[s.name] = o
	}
	return out
}

func TestExamplePasses(t *testing.T) {
	dir, env := copyRepo(t, exampleDir(t))
	for name, o := range runStage(t, dir, env, "", "") {
		if o.err != nil {
			t.Errorf("%s failed: %v\n%s", name, o.err, o.log)
		}
	}
}

func TestPlantedDefects(t *testing.T) {
	src := exampleDir(t)
	for _, tc := range []struct {
		step  string
		with  string // overrides the stage's with: block
		plant func(t *testing.T, dir string, env []string)
		rule  string
		file  string
	}{
		{"go-lint", "", func(t *testing.T, dir string, _ []string) {
			write(t, dir, "internal/planted/planted.go", "// Package planted has one unchecked error.\npackage planted\n\nimport \"strconv\"\n\n// Parse parses a number and drops the error.\nfunc Parse() {\n\tstrconv.Atoi(\"42\")\n}\n")
		}, "errcheck", "internal/planted/planted.go"},
		{"tf-fmt", "", func(t *testing.T, dir string, _ []string) {
			write(t, dir, "deploy/terraform/planted.tf", "locals {\n  planted=1\n}\n")
		}, "terraform-fmt", "planted.tf"},
		{"tflint", "{dir: deploy/terraform, fail_on: warning}", func(t *testing.T, dir string, _ []string) {
			appendFile(t, dir, "deploy/terraform/variables.tf", "\nvariable \"planted\" {\n  description = \"A variable nothing uses.\"\n  type        = string\n}\n")
		}, "terraform_unused_declarations", "variables.tf"},
		{"manifests", "", func(t *testing.T, dir string, _ []string) {
			write(t, dir, "kubernetes/planted.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: planted\nspec:\n  selector: {app: x}\n  ports:\n    - port: 80\n      targetPortt: 8080\n")
		}, "unknown-field", "kubernetes/planted.yaml"},
		{"chart", "", func(t *testing.T, dir string, _ []string) {
			write(t, dir, "deploy/chart/templates/planted.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: planted\ndata:\n  a: {{ .Values.planted.missing }}\n")
		}, "helm-lint", "deploy/chart/templates/planted.yaml"},
		{"commits", "", func(t *testing.T, dir string, env []string) {
			git(t, dir, env, "commit", "-q", "--allow-empty", "-m", "feat: add the thing.")
		}, "subject-full-stop", "commit "},
	} {
		t.Run(tc.step, func(t *testing.T) {
			// The same step on the unplanted copy gives the baseline; the
			// planted defect must add exactly one finding.
			clean, cenv := copyRepo(t, src)
			base, ok := runStage(t, clean, cenv, tc.step, tc.with)[tc.step]
			if !ok {
				testenv.Missing(t, "the tool of step "+tc.step, "scripts/deps.sh installs the commit stage's tools")
			}
			dir, env := copyRepo(t, src)
			tc.plant(t, dir, env)
			o := runStage(t, dir, env, tc.step, tc.with)[tc.step]
			var fe *checkstep.FailedError
			if !errors.As(o.err, &fe) {
				t.Fatalf("step did not fail on the planted defect: %v\n%s", o.err, o.log)
			}
			seen := map[string]bool{}
			for _, r := range base.sarif {
				for _, f := range r.Findings {
					seen[f.Rule+" "+f.File+" "+f.Message] = true
				}
			}
			var added []findings.Finding
			for _, r := range o.sarif {
				for _, f := range r.Findings {
					if !seen[f.Rule+" "+f.File+" "+f.Message] {
						added = append(added, f)
					}
				}
			}
			if len(added) != 1 || added[0].Rule != tc.rule || !strings.HasPrefix(added[0].File, tc.file) {
				t.Errorf("want exactly one new %s finding in %s, got %v\n%s", tc.rule, tc.file, added, o.log)
			}
		})
	}
}

func write(t *testing.T, dir, rel, data string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, dir, rel, data string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, rel), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
