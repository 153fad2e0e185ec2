package golangcilint

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	lint "github.com/gantry-ci/gantry/internal/golangcilint"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// TestNoToolNoNetwork checks the error on a machine without the tool and
// without Go: it says what to install.
func TestNoToolNoNetwork(t *testing.T) {
	t.Setenv("GANTRY_TOOL_CACHE", "") // no shared cache: the tool is not there
	t.Setenv("PATH", t.TempDir())
	s, err := Kind.New(steptest.Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	tmp := t.TempDir()
	env, _ := steptest.Env(tmp, tmp, tmp, &log)
	_, err = s.Run(context.Background(), env)
	if err == nil || !strings.Contains(err.Error(), "golangci-lint") || !strings.Contains(err.Error(), lint.Tool.Version) {
		t.Errorf("got %v, want an error naming golangci-lint %s", err, lint.Tool.Version)
	}
}

// TestStep runs the real tool from the tool cache in $GANTRY_TEST_TOOLCACHE
// (installing it on first use).
func TestStep(t *testing.T) {
	cache := os.Getenv("GANTRY_TEST_TOOLCACHE")
	if cache == "" {
		testenv.Missing(t, "GANTRY_TEST_TOOLCACHE", "set it to a tool cache directory to run golangci-lint "+lint.Tool.Version+" (scripts/env.sh does)")
	}
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "go", "install Go")
	}
	state := t.TempDir()
	if err := os.Symlink(cache, filepath.Join(state, "tools")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pkg      string
		findings int
	}{{"./clean/...", 0}, {"./dirty/...", 2}} {
		s, err := Kind.New(steptest.Inputs{YAML: "packages: [" + tc.pkg + "]"})
		if err != nil {
			t.Fatal(err)
		}
		var log bytes.Buffer
		tmp := t.TempDir()
		env, _ := steptest.Env("../../golangcilint/testdata/mod", state, tmp, &log)
		res, err := s.Run(context.Background(), env)
		if (err != nil) != (tc.findings > 0) {
			t.Fatalf("%s: err = %v\n%s", tc.pkg, err, log.String())
		}
		if res.Outputs["findings"] != tc.findings {
			t.Errorf("%s: outputs %v", tc.pkg, res.Outputs)
		}
	}
}

// TestNewFromRev judges only code changed after a revision: the issues
// committed at that revision pass, a new one fails.
func TestNewFromRev(t *testing.T) {
	cache := os.Getenv("GANTRY_TEST_TOOLCACHE")
	if cache == "" {
		testenv.Missing(t, "GANTRY_TEST_TOOLCACHE", "set it to a tool cache directory to run golangci-lint "+lint.Tool.Version+" (scripts/env.sh does)")
	}
	for _, tool := range []string{"go", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, tool, "install "+tool)
		}
	}
	state := t.TempDir()
	if err := os.Symlink(cache, filepath.Join(state, "tools")); err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	for _, f := range []string{"go.mod", "dirty/dirty.go"} {
		b, err := os.ReadFile(filepath.Join("../../golangcilint/testdata/mod", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(repo, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, f), b, 0o644); err != nil {
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
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "initial import")
	rev := git("rev-parse", "HEAD")

	lintWith := func() (any, string) {
		t.Helper()
		s, err := Kind.New(steptest.Inputs{YAML: "new_from_rev: " + rev})
		if err != nil {
			t.Fatal(err)
		}
		var log bytes.Buffer
		env, _ := steptest.Env(repo, state, t.TempDir(), &log)
		res, _ := s.Run(context.Background(), env)
		if res == nil {
			t.Fatalf("no result\n%s", log.String())
		}
		return res.Outputs["findings"], log.String()
	}
	if got, log := lintWith(); got != 0 {
		t.Errorf("issues committed at %s: got %v findings, want 0\n%s", rev, got, log)
	}
	if err := os.WriteFile(filepath.Join(repo, "dirty", "new.go"), []byte("package dirty\n\nimport \"os\"\n\n// Again ignores an error in new code.\nfunc Again(p string) {\n\tos.Remove(p)\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "-A")
	git("commit", "-q", "-m", "feat: more")
	if got, log := lintWith(); got != 1 {
		t.Errorf("one new issue after %s: got %v findings, want 1\n%s", rev, got, log)
	}
}
