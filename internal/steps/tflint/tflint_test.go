package tflint

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gantry-ci/gantry/internal/steps/steptest"
	"github.com/gantry-ci/gantry/internal/testenv"
	lint "github.com/gantry-ci/gantry/internal/tflint"
)

// TestStep runs the real tflint from the tool cache in
// $GANTRY_TEST_TOOLCACHE (installing it on first use).
func TestStep(t *testing.T) {
	cache := os.Getenv("GANTRY_TEST_TOOLCACHE")
	if cache == "" {
		testenv.Missing(t, "GANTRY_TEST_TOOLCACHE", "set it to a tool cache directory to run tflint "+lint.Tool.Version+" (scripts/env.sh does)")
	}
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "go", "install Go")
	}
	state := t.TempDir()
	if err := os.Symlink(cache, filepath.Join(state, "tools")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		with     string
		findings int
		fails    bool
	}{{"dir: clean", 0, false}, {"dir: dirty", 3, false}, {"{dir: dirty, fail_on: warning}", 3, true}, {"dir: broken", 1, true}} {
		s, err := Kind.New(steptest.Inputs{YAML: tc.with})
		if err != nil {
			t.Fatal(err)
		}
		var log bytes.Buffer
		tmp := t.TempDir()
		env, _ := steptest.Env("../../tflint/testdata", state, tmp, &log)
		res, err := s.Run(context.Background(), env)
		if (err != nil) != tc.fails {
			t.Fatalf("%s: err = %v\n%s", tc.with, err, log.String())
		}
		if res.Outputs["findings"] != tc.findings {
			t.Errorf("%s: outputs %v\n%s", tc.with, res.Outputs, log.String())
		}
	}
}
