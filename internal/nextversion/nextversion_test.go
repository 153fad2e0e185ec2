package nextversion

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/gantry-ci/gantry/internal/gitutil"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// newRepo makes a git repository with one empty commit per message; a
// message starting with "tag:" tags HEAD instead.
func newRepo(t *testing.T, steps ...string) gitutil.Repo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		testenv.Missing(t, "git", "apt-get install git")
	}
	dir := t.TempDir()
	env := append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	git := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", "main")
	for _, s := range steps {
		if tag, ok := cutPrefix(s, "tag:"); ok {
			git("tag", tag)
			continue
		}
		git("commit", "-q", "--allow-empty", "-m", s)
	}
	return gitutil.Repo{Dir: dir, Env: env}
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return s, false
}

func TestCompute(t *testing.T) {
	for _, tc := range []struct {
		name                string
		steps               []string
		version, prev, bump string
		commits             int
	}{
		{"feat", []string{"feat: a", "tag:v1.3.2", "fix: b", "feat(api): c", "docs: d"}, "1.4.0", "1.3.2", "minor", 3},
		{"fix", []string{"feat: a", "tag:v1.3.2", "fix: b", "chore: c"}, "1.3.3", "1.3.2", "patch", 2},
		{"bang", []string{"chore: init", "tag:v0.0.0", "tag:v1.3.2", "feat!: drop", "fix: b"}, "2.0.0", "1.3.2", "major", 2},
		{"footer", []string{"feat: a", "tag:v1.3.2", "refactor: x\n\nBREAKING CHANGE: renamed"}, "2.0.0", "1.3.2", "major", 1},
		{"nothing", []string{"feat: a", "tag:v1.3.2", "docs: b"}, "1.3.2", "1.3.2", "none", 1},
		{"highest tag", []string{"feat: a", "tag:v1.10.0", "tag:v1.9.0", "tag:v2.0.0-rc.1", "fix: b"}, "1.10.1", "1.10.0", "patch", 1},
		{"no tag", []string{"chore: init", "fix: b"}, "0.1.0", "", "patch", 2},
		{"no tag feat", []string{"feat: a", "feat: b"}, "0.1.0", "", "minor", 2},
		{"no tag breaking", []string{"feat!: a"}, "1.0.0", "", "major", 1},
		{"merge and revert ignored", []string{"feat: a", "tag:v1.0.0", "Revert \"feat!: x\"\n\nThis reverts commit 1234567.", "Merge branch 'x' into main"}, "1.0.0", "1.0.0", "none", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := newRepo(t, tc.steps...)
			got, err := Compute(context.Background(), repo, "HEAD")
			if err != nil {
				t.Fatal(err)
			}
			if got.Version != tc.version || got.Previous != tc.prev || got.Bump.String() != tc.bump || got.Commits != tc.commits {
				t.Errorf("got version %s previous %q bump %s commits %d, want %s %q %s %d",
					got.Version, got.Previous, got.Bump, got.Commits, tc.version, tc.prev, tc.bump, tc.commits)
			}
		})
	}
}

func TestParseTag(t *testing.T) {
	for _, tc := range []struct {
		tag string
		ok  bool
	}{{"v1.2.3", true}, {"1.2.3", false}, {"v1.2", false}, {"v01.2.3", false}, {"v1.2.3-rc.1", false}, {"v0.0.0", true}} {
		if _, ok := ParseTag(tc.tag); ok != tc.ok {
			t.Errorf("ParseTag(%q) ok = %v, want %v", tc.tag, ok, tc.ok)
		}
	}
}
