package scaffold_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/scaffold"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/steps/builtin"
)

var update = flag.Bool("update", false, "rewrite the golden pipelines in testdata/golden")

// fixtures are the repositories init is tried on: testdata/repos/NAME, and
// the payment example.
var fixtures = map[string]string{
	"plain":           "testdata/repos/plain",
	"chart":           "testdata/repos/chart",
	"infra":           "testdata/repos/infra",
	"db":              "testdata/repos/db",
	"payment-service": "../../examples/payment-service",
}

func registry() spec.Registry {
	var names []string
	for n := range builtin.Services() {
		names = append(names, n)
	}
	// deploy and blue-green are registered by the CLI with its
	// controller; parsing needs only their inputs.
	return spec.NewRegistry(append(builtin.Kinds(), builtin.Deploy(nil), builtin.BlueGreen(nil)), names)
}

func plan(t *testing.T, dir string) *scaffold.Plan {
	t.Helper()
	r, err := scaffold.Detect(context.Background(), dir)
	if err != nil {
		t.Fatalf("Detect(%s): %v", dir, err)
	}
	return scaffold.Generate(r, scaffold.Options{Name: filepath.Base(dir), Measured: passing()})
}

// passing is a measurement of a repository that passes every check with
// 85 % coverage: nothing is relaxed.
func passing() *scaffold.Measurement {
	cov := 85.0
	return &scaffold.Measurement{Coverage: &cov}
}

// TestGolden checks the generated pipelines against testdata/golden and
// that each is a valid pipeline whose paths exist in its repository.
func TestGolden(t *testing.T) {
	for name, dir := range fixtures {
		t.Run(name, func(t *testing.T) {
			p := plan(t, dir)
			golden := filepath.Join("testdata", "golden", name+".yaml")
			if *update {
				if err := os.WriteFile(golden, p.Pipeline, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if !bytes.Equal(p.Pipeline, want) {
				t.Errorf("pipeline for %s differs from %s (go test -update refreshes it):\n%s", name, golden, p.Pipeline)
			}
			if _, err := spec.Parse(scaffold.PipelinePath, p.Pipeline, registry(), spec.WithRepository(dir)); err != nil {
				t.Errorf("generated pipeline does not validate in %s:\n%v", dir, err)
			}
		})
	}
}

// TestPaymentExampleEquivalent compares, stage by stage, the pipeline init
// writes for the payment example with the example's own: same steps, kinds,
// inputs, needs, services, secrets and gates. Only the security stage's
// Slack notification differs: init cannot know the team's webhook, so it
// leaves on_failure as a comment.
func TestPaymentExampleEquivalent(t *testing.T) {
	dir := fixtures["payment-service"]
	got, err := spec.Parse("generated.yaml", plan(t, dir).Pipeline, registry())
	if err != nil {
		t.Fatal(err)
	}
	want, err := spec.Load(filepath.Join(dir, spec.DefaultPath), registry())
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != want.Name {
		t.Errorf("name: got %q, want %q", got.Name, want.Name)
	}
	// gantry init writes stages 1-3; the example goes on to deploy its
	// own staging environment and to promote to its prod environment.
	if g, w := stageNames(got), stageNames(want); !slices.Equal(append(g, "deploy-staging", "promote-prod"), w) {
		t.Fatalf("stages: got %v, want %v plus deploy-staging and promote-prod", g, w)
	}
	for i := range got.Stages {
		ws, gs := &want.Stages[i], &got.Stages[i]
		t.Run(ws.Name, func(t *testing.T) {
			if g, w := gateOf(gs), gateOf(ws); g != w {
				t.Errorf("gate: got %q, want %q", g, w)
			}
			if ws.Name != "security" {
				if g, w := actions(gs), actions(ws); g != w {
					t.Errorf("on_failure: got %s, want %s", g, w)
				}
			}
			if g, w := len(gs.Steps), len(ws.Steps); g != w {
				t.Errorf("steps: got %d, want %d", g, w)
			}
			for j := range min(len(gs.Steps), len(ws.Steps)) {
				if g, w := describe(t, &gs.Steps[j]), describe(t, &ws.Steps[j]); g != w {
					t.Errorf("step %d:\n got %s\nwant %s", j, g, w)
				}
			}
		})
	}
}

func stageNames(p *spec.Pipeline) []string {
	var n []string
	for _, s := range p.Stages {
		n = append(n, s.Name)
	}
	return n
}

func gateOf(s *spec.Stage) string {
	var g []string
	for _, e := range s.Gate.Exprs {
		g = append(g, e.Value)
	}
	if s.Gate.IsAllPassed() {
		return spec.AllPassed
	}
	return strings.Join(g, " && ")
}

func actions(s *spec.Stage) string {
	var a []string
	for _, x := range s.OnFailure {
		a = append(a, x.Notify+"|"+x.Rollback+"|"+map[bool]string{true: "stop"}[x.Stop])
	}
	return strings.Join(a, ",")
}

// describe renders what a step does, its with: block decoded and
// re-encoded so that flow and block style compare equal.
func describe(t *testing.T, s *spec.Step) string {
	t.Helper()
	var with any
	if s.HasWith() {
		if err := s.With.Decode(&with); err != nil {
			t.Fatal(err)
		}
	}
	w, err := yaml.Marshal(with)
	if err != nil {
		t.Fatal(err)
	}
	names := func(xs []string) string { return strings.Join(xs, ",") }
	var after, svc, sec []string
	for _, a := range s.After {
		after = append(after, a.Value)
	}
	for _, x := range s.Services {
		svc = append(svc, x.Value)
	}
	for _, x := range s.Secrets {
		sec = append(sec, x.Value)
	}
	return strings.Join([]string{"name=" + s.Name, "uses=" + s.Uses, "run=" + s.Run, "needs=" + names(s.NeedNames()),
		"after=" + names(after), "services=" + names(svc), "secrets=" + names(sec), "if=" + s.If,
		"with=" + strings.TrimSpace(string(w))}, " ")
}

func TestDetect(t *testing.T) {
	r, err := scaffold.Detect(context.Background(), fixtures["payment-service"])
	if err != nil {
		t.Fatal(err)
	}
	m := r.Module
	tests := []struct {
		what      string
		got, want any
	}{
		{"module", m.Path, "github.com/examplepay/payment-service"},
		{"mains", m.Mains, []string{"./cmd/payment-service"}},
		{"tags", m.Tags, []string{"integration"}},
		{"services", len(m.Services), 3},
		{"terraform", r.Terraform, []string{"deploy/terraform"}},
		{"charts", r.Charts, []string{"deploy/chart"}},
		{"overlays", r.Overlays, []string{"deploy/overlays/prod", "deploy/overlays/staging"}},
		{"manifests", r.Manifests, []string{"kubernetes/deployments", "kubernetes/local"}},
		{"kyverno", r.Kyverno, []string{"kubernetes/deployments/kyverno-image-verification.yaml", "kubernetes/local/kyverno-image-verification.yaml"}},
		{"postman", r.Postman, []string{"tests/postman/payment-flow.json"}},
		{"k6", r.K6, []string{"tests/k6/smoke.js", "tests/k6/soak.js"}},
		{"rules", r.Rules, []string{"deploy/prometheus/alerts.yaml"}},
		{"dockerfiles", r.Dockerfiles, []string{"Dockerfile"}},
		{"golangci config", r.GolangciConfig, ".golangci.yml"},
		{"golangci v1", r.GolangciV1, false},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			if !equal(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func equal(a, b any) bool {
	as, aok := a.([]string)
	bs, bok := b.([]string)
	if aok && bok {
		return slices.Equal(as, bs)
	}
	return a == b
}

// TestDetectGo covers the Go facts on small trees written by the test:
// tags that are platforms are not test groups, examples get no image,
// indirect requirements start no service.
func TestDetectGo(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"go.mod":                           "module example.com/lib/v2\n\ngo 1.26\n\nrequire (\n\tgithub.com/lib/pq v1.10.9\n\tgithub.com/redis/go-redis/v9 v9.7.3 // indirect\n)\n",
		"lib.go":                           "package lib\n",
		"lib_linux_test.go":                "//go:build linux && !race\n\npackage lib\n",
		"e2e_test.go":                      "//go:build e2e || (smoke && !windows)\n\npackage lib\n",
		"examples/demo/main.go":            "package main\n\nfunc main() {}\n",
		"cmd/tool/main.go":                 "package main\n\nfunc main() {}\n",
		"cmd/tool/ignored.go":              "//go:build ignore\n\npackage other\n",
		"nested/go.mod":                    "module example.com/nested\n",
		".golangci.yml":                    "linters:\n  enable: [errcheck]\n",
		"nested/main.go":                   "package main\n\nfunc main() {}\n",
		"testdata/x/main.go":               "package main\n\nfunc main() {}\n",
		"deploy/app/deploy.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
		"deploy/app/values.yaml":           "replicas: 2\n",
		"infra/main.tf":                    "",
		"infra/modules/db/main.tf":         "",
		"ops/alerts.yml":                   "groups:\n  - name: x\n    rules:\n      - alert: Down\n        expr: up == 0\n",
		"ops/alerts_test.yml":              "rule_files: [alerts.yml]\ngroups:\n  - alert: x\n",
		"load/script.js":                   "import http from 'k6/http';\nexport default function () { http.get('http://x'); }\n",
		"load/helper.js":                   "import http from 'k6/http';\nexport function f() {}\n",
		"api/collection.json":              `{"info": {"_postman_id": "1", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"}}`,
		"api/other.json":                   `{"info": {}}`,
		"charts/app/Chart.yaml":            "apiVersion: v2\nname: app\nversion: 0.1.0\n",
		"charts/app/charts/sub/Chart.yaml": "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
	})
	r, err := scaffold.Detect(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	m := r.Module
	tests := []struct {
		what      string
		got, want any
	}{
		{"tags", m.Tags, []string{"e2e", "smoke"}},
		{"mains", m.Mains, []string{"./cmd/tool"}},
		{"skipped mains", m.SkippedMains, []string{"./examples/demo"}},
		{"services", len(m.Services), 1},
		{"service", m.Services[0].Name, "postgres"},
		{"other modules", r.OtherModules, []string{"nested"}},
		{"manifests", r.Manifests, []string{"deploy/app/deploy.yaml"}},
		{"terraform", r.Terraform, []string{"infra"}},
		{"rules", r.Rules, []string{"ops/alerts.yml"}},
		{"k6", r.K6, []string{"load/script.js"}},
		{"postman", r.Postman, []string{"api/collection.json"}},
		{"charts", r.Charts, []string{"charts/app"}},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			if !equal(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	p := scaffold.Generate(r, scaffold.Options{})
	if !r.GolangciV1 || !slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, "golangci-lint migrate") }) {
		t.Errorf("a v1 .golangci.yml: got GolangciV1 %v and notes %q, want a note to migrate it", r.GolangciV1, p.Notes)
	}
	if !strings.Contains(string(p.Pipeline), "name: lib\n") {
		t.Errorf("pipeline name: want lib (the module without /v2):\n%s", p.Pipeline)
	}
	if len(p.Companions) != 0 {
		t.Errorf("companions: got %v, want none beside the repository's own .golangci.yml", p.Companions)
	}
	r.GolangciConfig = ""
	p2 := scaffold.Generate(r, scaffold.Options{})
	if len(p2.Companions) != 1 || p2.Companions[0].Path != ".golangci.yml" || !strings.Contains(string(p2.Companions[0].Content), "- e2e\n") {
		t.Errorf("companions: got %v, want a .golangci.yml with the build tags", p2.Companions)
	}
	if _, err := spec.Parse(scaffold.PipelinePath, p.Pipeline, registry(), spec.WithRepository(dir)); err != nil {
		t.Errorf("generated pipeline does not validate:\n%v\n%s", err, p.Pipeline)
	}
}

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := plan(t, fixtures["db"])
	written, err := scaffold.Write(dir, p, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := written, []string{".gantry/pipeline.yaml", ".golangci.yml"}; !slices.Equal(got, want) {
		t.Errorf("written: got %v, want %v", got, want)
	}
	mine := []byte("# mine\n")
	if err := os.WriteFile(filepath.Join(dir, ".golangci.yml"), mine, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := scaffold.Write(dir, p, false); !errors.Is(err, scaffold.ErrExists) {
		t.Errorf("second Write: got %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".golangci.yml")); !bytes.Equal(b, mine) {
		t.Errorf("refused Write changed .golangci.yml: got %q", b)
	}
	if _, err := scaffold.Write(dir, p, true); err != nil {
		t.Errorf("Write with force: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, scaffold.PipelinePath)); !bytes.Equal(b, p.Pipeline) {
		t.Errorf("forced Write: pipeline not written")
	}
}

// FuzzGenerate feeds hostile directory and file names (as a repository
// could hold) through the generator: the pipeline must still be one
// valid YAML document with the names as values, never as structure.
func FuzzGenerate(f *testing.F) {
	f.Add("deploy/terraform", "deploy/chart")
	f.Add("a\nname: evil", "x # y")
	f.Add("\"quoted\"", "{flow}: [x]")
	f.Add("\u2028x", "..")
	f.Fuzz(func(t *testing.T, tf, chart string) {
		r := &scaffold.Repo{Terraform: []string{tf}, Charts: []string{chart}}
		p := scaffold.Generate(r, scaffold.Options{Name: chart})
		var doc struct {
			Name   string `yaml:"name"`
			Stages []struct {
				Steps []struct {
					With struct {
						Dir   string `yaml:"dir"`
						Chart string `yaml:"chart"`
					} `yaml:"with"`
				} `yaml:"steps"`
			} `yaml:"stages"`
		}
		if err := yaml.Unmarshal(p.Pipeline, &doc); err != nil {
			if !strings.ContainsFunc(tf+chart, invalidYAML) {
				t.Fatalf("pipeline is not YAML: %v\n%s", err, p.Pipeline)
			}
			return
		}
		if doc.Name != chart {
			t.Errorf("name: got %q, want %q", doc.Name, chart)
		}
		steps := doc.Stages[0].Steps
		if steps[0].With.Dir != tf {
			t.Errorf("tf-fmt dir: got %q, want %q", steps[0].With.Dir, tf)
		}
	})
}

// invalidYAML reports characters YAML cannot hold even quoted.
func invalidYAML(r rune) bool {
	return r == 0xfffd || (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0xfeff || r >= 0xfffe && r <= 0xffff
}
