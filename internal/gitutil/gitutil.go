// Package gitutil reads commits and tags of a repository through the git
// command line.
package gitutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/gantry-ci/gantry/internal/proc"
)

// Repo is a git working tree.
type Repo struct {
	Dir string
	// Env is the environment for git (nil: inherit).
	Env []string
}

// Commit is one commit's id and message.
type Commit struct {
	SHA     string
	Message string
}

// ErrNoGit is returned when the git command is not on PATH.
var ErrNoGit = errors.New("git is not on PATH (install git)")

func (r Repo) run(ctx context.Context, args ...string) (string, error) {
	bin, err := exec.LookPath("git")
	if err != nil {
		return "", ErrNoGit
	}
	cmd := proc.Command(ctx, bin, args...)
	cmd.Dir = r.Dir
	cmd.Env = r.Env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// Resolve returns the full commit id of rev, or an error if it names none.
func (r Repo) Resolve(ctx context.Context, rev string) (string, error) {
	out, err := r.run(ctx, "rev-parse", "--verify", "--quiet", rev+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("resolve %q: no such commit", rev)
	}
	return strings.TrimSpace(out), nil
}

// MergeBase returns the best common ancestor of a and b.
func (r Repo) MergeBase(ctx context.Context, a, b string) (string, error) {
	out, err := r.run(ctx, "merge-base", a, b)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(out), nil
}

// Commits lists the commits reachable from to and not from from, oldest
// first, merges included. An empty from means every ancestor of to.
func (r Repo) Commits(ctx context.Context, from, to string) ([]Commit, error) {
	rng := to
	if from != "" {
		rng = from + ".." + to
	}
	out, err := r.run(ctx, "log", "--reverse", "--format=%H%x00%B%x00", rng, "--")
	if err != nil {
		return nil, err
	}
	var commits []Commit
	fields := strings.Split(out, "\x00")
	for i := 0; i+1 < len(fields); i += 2 {
		sha := strings.TrimSpace(fields[i])
		if sha == "" {
			continue
		}
		commits = append(commits, Commit{SHA: sha, Message: strings.TrimRight(fields[i+1], "\n")})
	}
	return commits, nil
}

// TagsMerged lists the tags matching pattern (a git glob such as "v*")
// that are ancestors of rev.
func (r Repo) TagsMerged(ctx context.Context, rev, pattern string) ([]string, error) {
	out, err := r.run(ctx, "tag", "--merged", rev, "--list", pattern)
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// DefaultBranch guesses the default branch: origin's HEAD, else main or
// master if they exist locally or on origin.
func (r Repo) DefaultBranch(ctx context.Context) (string, error) {
	if out, err := r.run(ctx, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"); err == nil {
		return strings.TrimSpace(out), nil
	}
	for _, b := range []string{"main", "master", "origin/main", "origin/master"} {
		if _, err := r.Resolve(ctx, b); err == nil {
			return b, nil
		}
	}
	return "", errors.New("no default branch (no origin/HEAD, main or master)")
}
