package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/testenv"
)

// TestInitNoMeasure: with --no-measure init runs nothing, writes no
// coverage gate and says so; lint and commit messages are judged from the
// commit it saw, and the report says that too.
func TestInitNoMeasure(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		testenv.Missing(t, "git", "install git")
	}
	repo := t.TempDir()
	for name, content := range map[string]string{
		"go.mod":      "module example.com/lib\n\ngo 1.22\n",
		"lib.go":      "// Package lib is one function.\npackage lib\n\n// One is 1.\nfunc One() int { return 1 }\n",
		"lib_test.go": "package lib\n\nimport \"testing\"\n\nfunc TestOne(t *testing.T) {\n\tif One() != 1 {\n\t\tt.Fail()\n\t}\n}\n",
	} {
		if err := os.WriteFile(filepath.Join(repo, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@t.invalid"}, args...)...)
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	git("add", "-A")
	git("commit", "-q", "-m", "initial import")
	head := git("rev-parse", "HEAD")

	out, code := runCLIIn(t, t.TempDir(), "init", "--no-measure", repo)
	if code != 0 {
		t.Fatalf("init --no-measure: exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"relaxed (the repository does not pass these today; each is a comment in the file):",
		"no coverage gate: init ran nothing (--no-measure)",
		"commits checks the messages of commits after " + head[:12],
		"wrote .gantry/pipeline.yaml",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("init output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "measuring:") {
		t.Errorf("init --no-measure measured:\n%s", out)
	}
	b, err := os.ReadFile(filepath.Join(repo, ".gantry", "pipeline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); strings.Contains(got, "\n    gate: steps.unit") || !strings.Contains(got, "uses: commitlint, with: {from: "+head+"}}") {
		t.Errorf("pipeline: want no coverage gate and commitlint from %s:\n%s", head, got)
	}
}
