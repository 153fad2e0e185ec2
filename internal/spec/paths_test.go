package spec_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/steps/builtin"
	"github.com/gantry-ci/gantry/internal/yamlx"
)

func builtinRegistry() spec.Registry {
	var names []string
	for n := range builtin.Services() {
		names = append(names, n)
	}
	return spec.NewRegistry(builtin.Kinds(), names)
}

// repo writes a small repository: a chart, overlays, Terraform, a file.
func repo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"deploy/chart/Chart.yaml":                       "apiVersion: v2\nname: x\nversion: 0.1.0\n",
		"deploy/overlays/staging/kustomization.yaml":    "resources: []\n",
		"deploy/overlays/prod/kustomization.yaml":       "resources: []\n",
		"deploy/terraform/main.tf":                      "",
		"deploy/notachart/values.yaml":                  "",
		"tests/k6/smoke.js":                             "",
		"kubernetes/deployments/policy.yaml":            "",
		"docs/readme.md":                                "",
		"deploy/overlays/empty/.keep":                   "",
		"infra/live/main.tf":                            "",
		"deploy/chart/templates/analysis-template.yaml": "",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const pipelineHead = `name: p
stages:
  - name: s
    steps:
`

func TestPaths(t *testing.T) {
	root := repo(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		step string
		// want is the error: its sentinel, its line:col and text in it;
		// nil sentinel means valid.
		want    error
		at      string
		msg     string
		suggest string
	}{
		{name: "chart exists", step: `{name: a, uses: helm-lint, with: {chart: deploy/chart}}`},
		{name: "misspelt chart", step: `{name: a, uses: helm-lint, with: {chart: deploy/chrat}}`,
			want: spec.ErrPathNotFound, at: "5:50", msg: "deploy/chrat does not exist", suggest: "deploy/chart"},
		{name: "chart without its directory", step: `{name: a, uses: helm-template, with: {chart: chart}}`,
			want: spec.ErrPathNotFound, at: "5:54", suggest: "deploy/chart"},
		{name: "not a chart", step: `{name: a, uses: helm-lint, with: {chart: deploy/notachart}}`,
			want: spec.ErrPathType, at: "5:50", msg: "not a Helm chart (no Chart.yaml)", suggest: "deploy/chart"},
		{name: "missing far from anything", step: `{name: a, uses: terraform-fmt, with: {dir: zzzzzz/qqqq}}`,
			want: spec.ErrPathNotFound, at: "5:52", msg: "zzzzzz/qqqq does not exist in the repository"},
		{name: "terraform moved", step: `{name: a, uses: tflint, with: {dir: infra/terraform}}`,
			want: spec.ErrPathNotFound, suggest: "deploy/terraform"},
		{name: "file where a directory is needed", step: `{name: a, uses: tflint, with: {dir: docs/readme.md}}`,
			want: spec.ErrPathType, msg: "is a file, not a directory"},
		{name: "second overlay missing", step: "{name: a, uses: kubeconform, with: {kustomize: [deploy/overlays/staging, deploy/overlays/prd]}}",
			want: spec.ErrPathNotFound, at: "5:82", suggest: "deploy/overlays/prod"},
		{name: "overlay without kustomization", step: "{name: a, uses: kubeconform, with: {kustomize: [deploy/overlays/empty]}}",
			want: spec.ErrPathType, msg: "not a kustomize directory"},
		{name: "helm entry", step: "{name: a, uses: kubeconform, with: {helm: [{chart: deploy/chart}, {chart: deploy/chart2}]}}",
			want: spec.ErrPathNotFound, suggest: "deploy/chart"},
		{name: "k6 script", step: `{name: a, uses: k6, with: {script: tests/k6/smoke.js}}`},
		{name: "analysis template misspelt", step: `{name: a, uses: analysis, with: {template: deploy/chart/templates/analysis-templates.yaml}}`,
			want: spec.ErrPathNotFound, suggest: "deploy/chart/templates/analysis-template.yaml"},
		{name: "parent directory", step: `{name: a, uses: terraform-fmt, with: {dir: ../elsewhere}}`,
			want: spec.ErrPathOutside, msg: "leaves the repository"},
		{name: "parent inside the path", step: `{name: a, uses: k6, with: {script: tests/../../x.js}}`,
			want: spec.ErrPathOutside},
		{name: "absolute", step: `{name: a, uses: golangci-lint, with: {config: /etc/passwd}}`,
			want: spec.ErrPathOutside, msg: "not an absolute path"},
		{name: "symbolic link out", step: `{name: a, uses: sast, with: {dir: escape}}`,
			want: spec.ErrPathOutside, msg: "through a symbolic link"},
		{name: "database may live outside", step: `{name: a, uses: vuln-scan, with: {target: ., db: /var/lib/osv}}`},
		{name: "default exceptions file may be absent", step: `{name: a, uses: vuln-scan, with: {target: .}}`},
		{name: "named exceptions file must exist", step: `{name: a, uses: vuln-scan, with: {target: ., exceptions: risk.yaml}}`,
			want: spec.ErrPathNotFound},
		{name: "expression left for the run", step: `{name: a, uses: helm-lint, with: {chart: "deploy/${branch}"}}`},
		{name: "image package", step: `{name: a, uses: image-build, with: {package: ./cmd/missing}}`,
			want: spec.ErrPathNotFound, msg: "package: cmd/missing does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := pipelineHead + "      - " + tt.step + "\n"
			_, err := spec.Parse("p.yaml", []byte(src), builtinRegistry(), spec.WithRepository(root))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			var pe *spec.PathError
			if !errors.As(err, &pe) {
				t.Fatalf("got %T, want a *spec.PathError", err)
			}
			var ye *yamlx.Error
			if !errors.As(err, &ye) {
				t.Fatalf("got %v, want it located", err)
			}
			if tt.at != "" {
				if got := fmt.Sprintf("%d:%d", ye.Line, ye.Column); got != tt.at {
					t.Errorf("at: got %s, want %s (%v)", got, tt.at, err)
				}
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message: got %q, want it to hold %q", err, tt.msg)
			}
			if pe.Suggestion != tt.suggest {
				t.Errorf("suggestion: got %q, want %q (%v)", pe.Suggestion, tt.suggest, err)
			}
			if tt.suggest != "" && !strings.Contains(err.Error(), "did you mean "+tt.suggest+"?") {
				t.Errorf("message %q does not suggest %s", err, tt.suggest)
			}
		})
	}
}

// TestPathsWithoutRepository: without WithRepository only paths that
// leave the repository are errors.
func TestPathsWithoutRepository(t *testing.T) {
	src := pipelineHead + "      - {name: a, uses: helm-lint, with: {chart: nowhere}}\n      - {name: b, uses: tflint, with: {dir: ../up}}\n"
	_, err := spec.Parse("p.yaml", []byte(src), builtinRegistry())
	if !errors.Is(err, spec.ErrPathOutside) {
		t.Fatalf("got %v, want ErrPathOutside for ../up", err)
	}
	if errors.Is(err, spec.ErrPathNotFound) {
		t.Errorf("got %v: nowhere reported without a repository", err)
	}
}
