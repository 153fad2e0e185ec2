package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/testenv"
)

var runIDRE = regexp.MustCompile(`(?m)^run ([0-9]+) passed`)

// TestInitThenRun is a new user's first minutes: on each fixture
// repository (a git repository with one conventional commit), `gantry
// init` measures the repository and writes its pipeline, and the first
// `gantry run` passes every stage. The fixtures run one after
// another and share one state dir, so the tool cache, the build cache and
// the embedded registry are set up once.
func TestInitThenRun(t *testing.T) {
	if testing.Short() {
		t.Skip("init then run builds images and runs race tests on five repositories")
	}
	// The sqs server comes on first use (the tool cache); the vulnerability
	// database would be fetched from the network on first use, which tests
	// do not reach: it comes from scripts/env.sh (shared/data).
	for _, v := range []string{"GANTRY_VULN_DB"} {
		if os.Getenv(v) == "" {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not set in CI: run the tests through scripts/test.sh", v)
			}
			t.Skipf("%s is not set (scripts/env.sh sets it)", v)
		}
	}
	state := t.TempDir()
	fixtures := []struct {
		name, src string
		stages    string
	}{
		{"plain", "../internal/scaffold/testdata/repos/plain", "commit=passed build-test=passed security=passed"},
		{"chart", "../internal/scaffold/testdata/repos/chart", "commit=passed build-test=passed security=passed"},
		{"infra", "../internal/scaffold/testdata/repos/infra", "commit=passed build-test=passed security=passed"},
		{"db", "../internal/scaffold/testdata/repos/db", "commit=passed build-test=passed security=passed"},
		{"payment-service", "../examples/payment-service", "commit=passed build-test=passed security=passed"},
	}
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			e := &env{t: t, state: state, repo: t.TempDir()}
			copyTree(t, f.src, e.repo)
			if f.name == "payment-service" {
				// The example has its own pipeline: init leaves it alone
				// unless told to overwrite it.
				if r := e.gantry("init"); r.code != 2 || !strings.Contains(r.stderr, "already exists") {
					t.Fatalf("init over an existing pipeline: got exit %d (%s), want 2 and already exists", r.code, r.stderr)
				}
				if err := os.Remove(filepath.Join(e.repo, ".gantry", "pipeline.yaml")); err != nil {
					t.Fatal(err)
				}
			}
			e.commitAll("feat: first commit")

			dry := e.gantry("init", "--dry-run")
			if dry.code != 0 {
				t.Fatalf("init --dry-run: exit %d\n%s", dry.code, dry.stderr)
			}
			if _, err := os.Stat(filepath.Join(e.repo, ".gantry", "pipeline.yaml")); err == nil {
				t.Fatal("init --dry-run wrote the pipeline")
			}
			r := e.gantry("init")
			if r.code != 0 {
				t.Fatalf("init: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, "wrote .gantry/pipeline.yaml") || !strings.Contains(r.stdout, "found:") {
				t.Errorf("init output lacks what it found and wrote:\n%s", r.stdout)
			}
			got, err := os.ReadFile(filepath.Join(e.repo, ".gantry", "pipeline.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			// The golden files (internal/scaffold TestGolden) are written
			// from a measurement with nothing to relax; here init measured
			// the fixture itself, so only the dry run is compared.
			if !strings.Contains(dry.stdout, string(got)) {
				t.Errorf("init --dry-run did not print the pipeline init wrote:\n%s", dry.stdout)
			}
			if v := e.gantry("validate"); v.code != 0 {
				t.Fatalf("validate: exit %d\n%s", v.code, v.stderr)
			}

			run := e.gantry("run", "--progress", "plain")
			if run.code != 0 {
				t.Fatalf("first run after init: exit %d\n%s\n%s", run.code, tail(run.stdout, 60), run.stderr)
			}
			m := runIDRE.FindStringSubmatch(run.stdout)
			if m == nil {
				t.Fatalf("no run id in the output:\n%s", tail(run.stdout, 5))
			}
			id, _ := strconv.ParseInt(m[1], 10, 64)
			v := e.show(id)
			var stages []string
			for _, st := range v.Stages {
				stages = append(stages, st.Name+"="+st.Status)
			}
			if got := strings.Join(stages, " "); got != f.stages {
				t.Errorf("stages: got %s, want %s", got, f.stages)
			}
		})
	}
}

// TestInitRealModules is the same first minutes on real public Go code:
// modules from the Go module cache, each imported into a new git
// repository with a commit message that is not a Conventional Commit, as
// a team adopting gantry has. Their existing code has lint and gosec
// findings and coverage below the seed's 80 %; init measures them, writes
// a pipeline they pass today and says what it relaxed, and the first run
// is green.
func TestInitRealModules(t *testing.T) {
	if testing.Short() {
		t.Skip("init then run on real modules runs their tests, builds images and scans")
	}
	if os.Getenv("GANTRY_VULN_DB") == "" {
		testenv.Missing(t, "GANTRY_VULN_DB", "scripts/env.sh sets it to the shared Go vulnerability database")
	}
	state := t.TempDir()
	for _, m := range []struct {
		name, module string
		// pipeline and report hold these lines (substrings).
		pipeline, report []string
		stages           string
		// ratchet: a later commit with a lint issue and a message that is
		// not a Conventional Commit fails the commit stage.
		ratchet bool
	}{
		{
			// A library without a main package: lint and gosec findings
			// (G115, weak hashes) in its existing code.
			name: "library", module: "github.com/google/uuid@v1.6.0",
			pipeline: []string{"uses: golangci-lint, with: {new_from_rev: ", "uses: commitlint, with: {from: ", "exclude_rules: [G115, G401, G501, G505]", "gate: steps.unit.outputs.coverage >= 80"},
			report:   []string{"go-lint judges only code changed after", "commits checks the messages of commits after", "sast excludes the gosec rules G115 (13)"},
			stages:   "commit=passed build-test=passed security=passed",
			ratchet:  true,
		},
		{
			// A library whose tests cover about half of it.
			name: "low-coverage", module: "github.com/mitchellh/go-homedir@v1.1.0",
			pipeline: []string{"gate: steps.unit.outputs.coverage >= 52\n", "# Coverage measured by `gantry init`: 52.1%"},
			report:   []string{"coverage gate at 52%, the coverage init measured (52.1%)"},
			stages:   "commit=passed build-test=passed security=passed",
		},
		{
			// A program: its main package at the root becomes an image,
			// pushed, scanned, signed.
			name: "program", module: "github.com/jstemmer/go-junit-report@v1.0.0",
			pipeline: []string{"uses: image-build", "uses: sign", "gate: steps.unit.outputs.coverage >= 4\n"},
			report:   []string{"main package .: an image", "coverage gate at 4%"},
			stages:   "commit=passed build-test=passed security=passed",
		},
	} {
		t.Run(m.name, func(t *testing.T) {
			src := moduleSource(t, m.module)
			e := &env{t: t, state: state, repo: t.TempDir()}
			copyTree(t, src, e.repo)
			e.commitAll("initial import")

			r := e.gantry("init")
			if r.code != 0 {
				t.Fatalf("init: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			got, err := os.ReadFile(filepath.Join(e.repo, ".gantry", "pipeline.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range m.pipeline {
				if !strings.Contains(string(got), w) {
					t.Errorf("pipeline lacks %q:\n%s", w, got)
				}
			}
			for _, w := range m.report {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("init's report lacks %q:\n%s", w, r.stdout)
				}
			}
			run := e.gantry("run", "--progress", "plain")
			if run.code != 0 {
				t.Fatalf("first run after init: exit %d\n%s\n%s\npipeline:\n%s", run.code, tail(run.stdout, 60), run.stderr, got)
			}
			mm := runIDRE.FindStringSubmatch(run.stdout)
			if mm == nil {
				t.Fatalf("no run id in the output:\n%s", tail(run.stdout, 5))
			}
			id, _ := strconv.ParseInt(mm[1], 10, 64)
			var stages []string
			for _, st := range e.show(id).Stages {
				stages = append(stages, st.Name+"="+st.Status)
			}
			if got := strings.Join(stages, " "); got != m.stages {
				t.Errorf("stages: got %s, want %s", got, m.stages)
			}
			if !m.ratchet {
				return
			}
			// What init relaxed covers the code it saw, not new code.
			e.write("ratchet.go", "package uuid\n\nimport \"os\"\n\n// Drop removes p and ignores the error.\nfunc Drop(p string) {\n\tos.Remove(p)\n}\n")
			e.commitAll("wip")
			red := e.gantry("run", "--progress", "plain")
			if red.code == 0 {
				t.Fatalf("run after a commit with a lint issue and a message that is not conventional passed:\n%s", tail(red.stdout, 40))
			}
			for _, w := range []string{"[commit/go-lint] ratchet.go:7:", "[commit/commits] commit ", "[type-empty]"} {
				if !strings.Contains(red.stdout, w) {
					t.Errorf("run after the new commit lacks %q:\n%s", w, tail(red.stdout, 40))
				}
			}
		})
	}
}

// moduleSource is the directory of module@version in the module cache,
// downloaded through the Go module proxy when it is not there yet (a
// cold cache holds only what builds needed).
func moduleSource(t *testing.T, module string) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", module)
	cmd.Dir = t.TempDir() // outside any module
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr != nil || err != nil || info.Error != "" || info.Dir == "" {
		testenv.Missing(t, module, fmt.Sprintf("go mod download %s: %v %s", module, err, info.Error))
	}
	return info.Dir
}
