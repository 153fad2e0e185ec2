package nextversion

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/gantry-ci/gantry/internal/steps/steptest"
)

// TestNoHistory: a repository without commits (a fresh git init, or a
// directory that is not a repository yet) has no release to compute from;
// the step passes with the initial version, as `gantry init` promises.
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
				t.Fatalf("got %v, want the initial version", err)
			}
			if got, want := res.Outputs["version"], "0.1.0"; got != want {
				t.Errorf("version: got %v, want %v", got, want)
			}
			if got, want := res.Outputs["bump"], "none"; got != want {
				t.Errorf("bump: got %v, want %v", got, want)
			}
		})
	}
}
