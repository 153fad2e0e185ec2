package commitlint

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/gantry-ci/gantry/internal/steps/steptest"
)

// TestNoHistory: with no commit yet there is nothing to lint; the step
// passes with zero commits instead of failing on git log.
func TestNoHistory(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not on PATH")
	}
	for _, tc := range []struct {
		name string
		init bool
	}{{"fresh git init", true}, {"not a repository", false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.init {
				cmd := exec.Command("git", "init", "-q", "-b", "main")
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("git init: %v\n%s", err, out)
				}
			}
			s, err := Kind.New(steptest.Inputs{})
			if err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			tmp := t.TempDir()
			e, _ := steptest.Env(dir, tmp, tmp, &log)
			e.Vars = append(os.Environ(), "GIT_CEILING_DIRECTORIES="+tmp+":"+dir)
			res, err := s.Run(context.Background(), e)
			if err != nil {
				t.Fatalf("got %v, want a pass with nothing to lint", err)
			}
			if got := res.Outputs["commits"]; got != 0 {
				t.Errorf("commits: got %v, want 0", got)
			}
		})
	}
}
