package scaffold_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/inventory"
	"github.com/gantry-ci/gantry/internal/policy"
	"github.com/gantry-ci/gantry/internal/scaffold"
	"github.com/gantry-ci/gantry/internal/steps/gotest"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/gantry-ci/gantry/internal/vuln"
)

// TestMeasureCoverageIsTheGateNumber runs Measure on a real module and the
// go-test step kind on the same module: the coverage init sets the gate
// from is the coverage the gate reads.
func TestMeasureCoverageIsTheGateNumber(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "go", "install Go")
	}
	dir, err := filepath.Abs("testdata/repos/measured")
	if err != nil {
		t.Fatal(err)
	}
	r, err := scaffold.Detect(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := scaffold.Measure(context.Background(), dir, r, scaffold.MeasureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Coverage == nil {
		t.Fatalf("no coverage measured: %s", m.CoverageNote)
	}
	s, err := gotest.Kind.New(steptest.Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	env, _ := steptest.Env(dir, t.TempDir(), t.TempDir(), &log)
	res, err := s.Run(context.Background(), env)
	if err != nil {
		t.Fatalf("go-test step: %v\n%s", err, log.String())
	}
	if got, want := *m.Coverage, res.Outputs["coverage"]; got != want {
		t.Errorf("coverage: init measured %v, the go-test step computes %v", got, want)
	}
	if *m.Coverage <= 0 || *m.Coverage >= 80 {
		t.Errorf("coverage %v: want the fixture's partial coverage", *m.Coverage)
	}
	if len(m.FailedTests) != 0 {
		t.Errorf("failed tests: got %v, want none", m.FailedTests)
	}
	for _, rule := range []string{"G401", "G501"} {
		if m.Gosec[rule] != 1 {
			t.Errorf("gosec %s: got %d findings, want 1 (all: %v)", rule, m.Gosec[rule], m.Gosec)
		}
	}
	if len(m.Vulns)+len(m.Licenses) != 0 {
		t.Errorf("vulns %v, licences %v: want none (no dependencies)", m.Vulns, m.Licenses)
	}
}

// TestMeasureFailingTests reports the tests that fail at init, and the
// packages whose tests ended before writing coverage (a panic): the
// coverage leaves them out and the notes say so.
func TestMeasureFailingTests(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "go", "install Go")
	}
	dir := t.TempDir()
	for name, content := range map[string]string{
		"go.mod":            "module example.com/red\n\ngo 1.22\n",
		"red.go":            "package red\n\n// One is 1.\nfunc One() int { return 1 }\n",
		"red_test.go":       "package red\n\nimport \"testing\"\n\nfunc TestOne(t *testing.T) {\n\tif One() != 2 {\n\t\tt.Error(\"want 2\")\n\t}\n}\n",
		"boom/boom.go":      "package boom\n\n// Two is 2.\nfunc Two() int { return 2 }\n",
		"boom/boom_test.go": "package boom\n\nimport \"testing\"\n\nfunc TestTwo(t *testing.T) {\n\tvar m map[string]int\n\tm[\"x\"] = Two()\n}\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := scaffold.Detect(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := scaffold.Measure(context.Background(), dir, r, scaffold.MeasureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m.FailedTests)
	if got, want := m.FailedTests, []string{"example.com/red.TestOne", "example.com/red/boom.TestTwo"}; !slices.Equal(got, want) {
		t.Errorf("failed tests: got %v, want %v", got, want)
	}
	if got, want := m.Uncounted, []string{"example.com/red/boom"}; !slices.Equal(got, want) {
		t.Errorf("packages left out of the coverage: got %v, want %v", got, want)
	}
	if m.Coverage == nil || *m.Coverage != 100 {
		t.Errorf("coverage = %v (%s), want 100%% (red's one statement; boom left out)", m.Coverage, m.CoverageNote)
	}
	p := scaffold.Generate(r, scaffold.Options{Measured: m})
	if !containsLine(p.Notes, "tests fail today") {
		t.Errorf("notes do not say tests fail: %v", p.Notes)
	}
	if !containsLine(p.Notes, "leaves out example.com/red/boom, whose tests failed before writing coverage") {
		t.Errorf("notes do not say the coverage leaves boom out: %v", p.Notes)
	}
}

// TestMeasureVulnsBecomeExceptions measures a module that requires a
// vulnerable golang.org/x/text with the real Go vulnerability database:
// the exceptions init records cover exactly what fails the gate it
// generates, and they expire.
func TestMeasureVulnsBecomeExceptions(t *testing.T) {
	db := testenv.RequireData(t, "go-vulndb-osv.tar.gz")
	dir := t.TempDir()
	for name, content := range map[string]string{
		"go.mod": "module example.com/old\n\ngo 1.22\n\nrequire golang.org/x/text v0.3.5\n",
		"old.go": "// Package old depends on an old x/text.\npackage old\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := scaffold.Detect(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	m, err := scaffold.Measure(context.Background(), dir, r, scaffold.MeasureOptions{VulnDB: db, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Vulns) == 0 {
		t.Fatalf("no vulnerability of golang.org/x/text v0.3.5 measured (notes: %v)", m.Notes)
	}
	p := scaffold.Generate(r, scaffold.Options{Measured: m, Today: now})
	var exc []byte
	for _, f := range p.Companions {
		if f.Path == policy.DefaultExceptionsFile {
			exc = f.Content
		}
	}
	if exc == nil {
		t.Fatalf("no %s written", policy.DefaultExceptionsFile)
	}
	x, err := policy.ParseExceptions(policy.DefaultExceptionsFile, exc)
	if err != nil {
		t.Fatalf("%v\n%s", err, exc)
	}
	vdb, err := vuln.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(context.Background(), dir, inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gate := vuln.Gate{FailOn: []vuln.Level{vuln.High, vuln.Critical}, NoFixOlderThan: 30 * 24 * time.Hour, Exceptions: x}
	if v := gate.Apply(vuln.Scan(inv, vdb), now); !v.Passed() || v.Excepted == 0 {
		t.Errorf("with init's exceptions: %d failing, %d excepted; want 0 failing", v.Failing, v.Excepted)
	}
	if v := gate.Apply(vuln.Scan(inv, vdb), now.AddDate(0, 0, scaffold.ExceptionDays+1)); v.Passed() {
		t.Errorf("%d days later the exceptions still cover every finding; want them expired", scaffold.ExceptionDays+1)
	}
}
