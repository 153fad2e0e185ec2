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
