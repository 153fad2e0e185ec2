// Package workspace describes the repository a run builds: its commit,
// branch and commit time, read with the git command.
package workspace

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/gantry-ci/gantry/internal/step"
)

// Describe returns the git facts of dir. A directory that is not a git
// checkout gives empty SHA and branch and no error.
func Describe(ctx context.Context, dir string) (step.Git, error) {
	var g step.Git
	if _, err := git(ctx, dir, "rev-parse", "--git-dir"); err != nil {
		return g, nil
	}
	sha, err := git(ctx, dir, "rev-parse", "--verify", "-q", "HEAD")
	if err != nil {
		// A repository without commits.
		return g, nil
	}
	g.SHA = sha
	if b, err := git(ctx, dir, "symbolic-ref", "--short", "-q", "HEAD"); err == nil {
		g.Branch = b
	}
	if t, err := git(ctx, dir, "log", "-1", "--format=%ct", "HEAD"); err == nil {
		g.Time, _ = strconv.ParseInt(t, 10, 64)
	}
	return g, nil
}

// ResolveRev returns the commit a revision names.
func ResolveRev(ctx context.Context, dir, rev string) (string, error) {
	sha, err := git(ctx, dir, "rev-parse", "--verify", "-q", rev+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("%q is not a commit in %s", rev, dir)
	}
	return sha, nil
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}
