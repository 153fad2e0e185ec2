package gotest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/testenv"
)

func needGo(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "go", "install Go")
	}
}

func TestNewRejects(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"unknown field", "rac: true\n", "pipeline.yaml:1:1"},
		{"bad type", "race: [1]\n", "pipeline.yaml:1:7"},
		{"min coverage", "min_coverage: 120\n", "min_coverage"},
		{"dir outside", "dir: ../x\n", "dir"},
		{"json in args", "args: [-json]\n", "args.0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(inputs{YAML: c.yaml})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New(%q) error = %v, want it to mention %q", c.yaml, err, c.want)
			}
		})
	}
}

func TestRunUnitAndIntegrationMerged(t *testing.T) {
	needGo(t)
	dir, _ := filepath.Abs("testdata")
	env, log, art := newEnv(t, dir)

	unit, err := New(inputs{YAML: "dir: cover\n"})
	if err != nil {
		t.Fatal(err)
	}
	ur, err := unit.Run(context.Background(), env)
	if err != nil {
		t.Fatalf("unit: %v\n%s", err, log)
	}
	if got, want := ur.Outputs["tests"], 5; got != want {
		t.Errorf("tests = %v, want %v", got, want)
	}
	if got, want := ur.Outputs["skipped"], 1; got != want {
		t.Errorf("skipped = %v, want %v", got, want)
	}
	for _, a := range []string{"junit.xml", "coverage.out", "coverage.html"} {
		if _, err := os.Stat(filepath.Join(art, a)); err != nil {
			t.Errorf("artifact %s: %v", a, err)
		}
	}
	byPkg := ur.Outputs["coverage_by_package"].(map[string]float64)
	if _, ok := byPkg["example.com/cover/calc"]; !ok {
		t.Errorf("coverage_by_package = %v, want example.com/cover/calc", byPkg)
	}

	env.Step = "integration"
	env.Outputs = func(stage, step string) (map[string]any, bool) {
		if stage == "build-test" && step == "unit" {
			return ur.Outputs, true
		}
		return nil, false
	}
	integ, err := New(inputs{YAML: "dir: cover\ntags: [integration]\nmerge: [unit]\n"})
	if err != nil {
		t.Fatal(err)
	}
	ir, err := integ.Run(context.Background(), env)
	if err != nil {
		t.Fatalf("integration: %v\n%s", err, log)
	}
	if u, i := ur.Outputs["coverage"].(float64), ir.Outputs["coverage"].(float64); !(i > u) {
		t.Errorf("merged coverage %v not above unit coverage %v", i, u)
	}
	// The merged figure equals go tool cover -func on the merged profile.
	cmd := exec.Command("go", "tool", "cover", "-func="+filepath.Join(art, "coverage.out"))
	cmd.Dir = filepath.Join(dir, "cover")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := strings.Fields(lines[len(lines)-1])
	if got, want := last[len(last)-1], strFloat(ir.Outputs["coverage"].(float64))+"%"; got != want {
		t.Errorf("go tool cover -func total = %s, step output = %s", got, want)
	}
}

func strFloat(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

func TestRunFailingTest(t *testing.T) {
	needGo(t)
	dir, _ := filepath.Abs("testdata")
	env, log, _ := newEnv(t, dir)
	s, err := New(inputs{YAML: "dir: fail\ncoverage: false\n"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Run(context.Background(), env)
	if err == nil || !strings.Contains(err.Error(), "TestFails") {
		t.Fatalf("err = %v, want TestFails named", err)
	}
	if res == nil || res.Outputs["failed"] != 1 {
		t.Errorf("result = %+v, want failed=1", res)
	}
	if !strings.Contains(log.String(), "--- FAIL: TestFails") || !strings.Contains(log.String(), "got 1, want 2") {
		t.Errorf("log lacks the failing test's own output:\n%s", log)
	}
	if strings.Contains(log.String(), "--- FAIL: TestPasses") {
		t.Errorf("log shows a passing test as failed")
	}
}

func TestRunRace(t *testing.T) {
	needGo(t)
	dir, _ := filepath.Abs("testdata")
	env, log, _ := newEnv(t, dir)
	s, err := New(inputs{YAML: "dir: race\nrace: true\n"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Run(context.Background(), env)
	if err == nil || !strings.Contains(err.Error(), "data race") {
		t.Fatalf("err = %v, want a data race failure", err)
	}
	if res.Outputs["races"].(int) < 1 {
		t.Errorf("races = %v", res.Outputs["races"])
	}
	if !strings.Contains(log.String(), "WARNING: DATA RACE") || !strings.Contains(log.String(), "race.go:") {
		t.Errorf("log lacks the race report:\n%s", log)
	}
}

func TestMinCoverageGate(t *testing.T) {
	needGo(t)
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("package gen\n\nvar x int\n\nfunc Covered() {\n")
	b.WriteString(strings.Repeat("\tx++\n", 799))
	b.WriteString("}\n\nfunc Uncovered() {\n")
	b.WriteString(strings.Repeat("\tx--\n", 201))
	b.WriteString("}\n")
	for n, c := range map[string]string{
		"go.mod":      "module example.com/gen\n\ngo 1.22\n",
		"gen.go":      b.String(),
		"gen_test.go": "package gen\n\nimport \"testing\"\n\nfunc TestCovered(t *testing.T) { Covered() }\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env, log, _ := newEnv(t, dir)
	s, err := New(inputs{YAML: "min_coverage: 80\n"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Run(context.Background(), env)
	if err == nil || !strings.Contains(err.Error(), "79.9%") {
		t.Fatalf("err = %v, want coverage 79.9%% below 80\n%s", err, log)
	}
	if got, want := res.Outputs["coverage"], 79.9; got != want {
		t.Errorf("coverage = %v, want %v", got, want)
	}
}
