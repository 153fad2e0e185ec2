package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var runIDRE = regexp.MustCompile(`(?m)^run ([0-9]+) passed`)

// TestInitThenRun is a new user's first minutes: on each fixture
// repository (a git repository with one conventional commit), `gantry
// init` writes the pipeline checked in as the fixture's golden file, and
// the first `gantry run` passes every stage. The fixtures run one after
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
			want, err := os.ReadFile(filepath.Join("../internal/scaffold/testdata/golden", f.name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("init wrote a pipeline other than the golden one:\n%s", got)
			}
			if !strings.Contains(dry.stdout, string(want)) {
				t.Errorf("init --dry-run did not print the pipeline:\n%s", dry.stdout)
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
