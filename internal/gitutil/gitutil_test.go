package gitutil

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"testing"

	"github.com/gantry-ci/gantry/internal/testenv"
)

func TestRepo(t *testing.T) {
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
	git("commit", "-q", "--allow-empty", "-m", "feat: one")
	git("tag", "v0.1.0")
	git("commit", "-q", "--allow-empty", "-m", "fix: two\n\nwith a body\n\nand a footer")
	git("checkout", "-q", "-b", "topic")
	git("commit", "-q", "--allow-empty", "-m", "feat: three")
	git("tag", "v0.2.0")

	ctx := context.Background()
	r := Repo{Dir: dir, Env: env}
	all, err := r.Commits(ctx, "", "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, c := range all {
		if len(c.SHA) != 40 {
			t.Errorf("SHA %q", c.SHA)
		}
		msgs = append(msgs, c.Message)
	}
	if want := []string{"feat: one", "fix: two\n\nwith a body\n\nand a footer", "feat: three"}; !slices.Equal(msgs, want) {
		t.Errorf("messages %q, want %q (oldest first)", msgs, want)
	}
	since, err := r.Commits(ctx, "v0.1.0", "HEAD")
	if err != nil || len(since) != 2 {
		t.Errorf("v0.1.0..HEAD: %d commits, %v", len(since), err)
	}
	tags, err := r.TagsMerged(ctx, "main", "v*")
	if err != nil || !slices.Equal(tags, []string{"v0.1.0"}) {
		t.Errorf("tags merged into main: %v %v", tags, err)
	}
	if def, err := r.DefaultBranch(ctx); err != nil || def != "main" {
		t.Errorf("default branch %q %v", def, err)
	}
	mb, err := r.MergeBase(ctx, "main", "topic")
	if err != nil {
		t.Fatal(err)
	}
	if main, _ := r.Resolve(ctx, "main"); mb != main {
		t.Errorf("merge base %s, want main %s", mb, main)
	}
	if _, err := r.Resolve(ctx, "no-such-rev"); err == nil {
		t.Error("Resolve(no-such-rev): want error")
	}
}
