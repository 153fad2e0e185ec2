package nextversion

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
	"github.com/gantry-ci/gantry/internal/testenv"
)

func TestStep(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		testenv.Missing(t, "git", "apt-get install git")
	}
	dir := t.TempDir()
	env := append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"}, {"commit", "-q", "--allow-empty", "-m", "feat: one"}, {"tag", "v1.3.2"},
		{"commit", "-q", "--allow-empty", "-m", "fix: two"}, {"commit", "-q", "--allow-empty", "-m", "feat(api): three"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	s, err := Kind.New(steptest.Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	tmp := t.TempDir()
	e, _ := steptest.Env(dir, tmp, tmp, &log)
	e.Vars, e.Git = env, step.Git{SHA: "HEAD"}
	res, err := s.Run(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"version": "1.4.0", "previous": "1.3.2", "bump": "minor", "tag": "v1.4.0"}
	for k, v := range want {
		if res.Outputs[k] != v {
			t.Errorf("%s = %v, want %v", k, res.Outputs[k], v)
		}
	}
}
