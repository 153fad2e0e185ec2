package commitlint

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/gitutil"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
	"github.com/gantry-ci/gantry/internal/testenv"
)

type repo struct {
	t   *testing.T
	dir string
	env []string
}

func newRepo(t *testing.T) *repo {
	if _, err := exec.LookPath("git"); err != nil {
		testenv.Missing(t, "git", "apt-get install git")
	}
	r := &repo{t: t, dir: t.TempDir(), env: append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")}
	r.git("init", "-q", "-b", "main")
	return r
}

func (r *repo) git(args ...string) string {
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env = r.dir, r.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (r *repo) commit(msg string) string {
	r.git("commit", "-q", "--allow-empty", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

func TestStepEvents(t *testing.T) {
	r := newRepo(t)
	r.commit("Initial Commit.") // bad, but before every range below
	base := r.commit("feat: base")
	r.git("checkout", "-q", "-b", "feature")
	r.commit("fix: good one")
	r.commit("Fix: Bad one")
	merge := r.commit("Merge branch 'main' into feature")
	head := r.commit("feat(api): fine")
	if err := os.WriteFile(filepath.Join(r.dir, ".commitlintrc.json"), []byte(`{"extends": ["@commitlint/config-conventional"], "rules": {"subject-case": [1, "never", ["sentence-case"]]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = merge
	for _, tc := range []struct {
		name          string
		git           step.Git
		with          string
		commits, errs int
		warns         int
	}{
		{"pull request", step.Git{SHA: head, Event: "pull_request", BaseRef: "main"}, "", 4, 2, 1},
		{"push with previous head", step.Git{SHA: head, Event: "push", BaseRef: base}, "", 4, 2, 1},
		{"push without previous head on a branch", step.Git{SHA: head, Event: "push", BaseRef: "0000000000000000000000000000000000000000"}, "", 4, 2, 1},
		{"explicit range", step.Git{SHA: head}, "{from: " + base + ", to: " + head + "}", 4, 2, 1},
		{"fail on warnings", step.Git{SHA: head, Event: "push", BaseRef: base}, "fail_on: warning", 4, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Kind.New(steptest.Inputs{YAML: tc.with})
			if err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			tmp := t.TempDir()
			env, _ := steptest.Env(r.dir, tmp, tmp, &log)
			env.Vars, env.Git = r.env, tc.git
			res, err := s.Run(context.Background(), env)
			if err == nil {
				t.Fatalf("want a failure (one bad commit)\n%s", log.String())
			}
			if res.Outputs["commits"] != tc.commits || res.Outputs["errors"] != tc.errs || res.Outputs["warnings"] != tc.warns {
				t.Errorf("outputs = %v\n%s", res.Outputs, log.String())
			}
			if !strings.Contains(log.String(), `type must be lower-case ("Fix: Bad one") [type-case]`) {
				t.Errorf("log:\n%s", log.String())
			}
		})
	}
}

func TestRangeOnDefaultBranch(t *testing.T) {
	r := newRepo(t)
	r.commit("Bad: old")
	head := r.commit("feat: new")
	from, to, err := Range(context.Background(), gitutil.Repo{Dir: r.dir, Env: r.env}, step.Git{SHA: head, Event: "push"})
	if err != nil {
		t.Fatal(err)
	}
	parent := r.git("rev-parse", head+"^")
	if from != parent || to != head {
		t.Errorf("range %s..%s, want %s..%s (only the head commit)", from, to, parent, head)
	}
	// The first commit of a repository has no parent: lint just it.
	r2 := newRepo(t)
	first := r2.commit("feat: first")
	from, to, err = Range(context.Background(), gitutil.Repo{Dir: r2.dir, Env: r2.env}, step.Git{SHA: first, Event: "push"})
	if err != nil || from != "" || to != first {
		t.Errorf("got %q..%q %v", from, to, err)
	}
}
