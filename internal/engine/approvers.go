package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gantry-ci/gantry/internal/spec"
)

// ErrNoDefaultBranch is returned by LoadApprovers when the repository has
// no default branch to read the approvers file from.
var ErrNoDefaultBranch = errors.New("cannot find the repository's default branch")

// LoadApprovers reads who may approve. An operator's file
// STATE_DIR/approvers.yaml wins; otherwise .gantry/approvers.yaml is read
// with git from the tip of the repository's default branch (origin/HEAD,
// else main, else master), never from the working tree or from the commit
// under review: a branch must not be able to name its own approvers. It
// returns the approvers (nil if the file does not exist there) and where
// they were read.
func LoadApprovers(ctx context.Context, repoDir, stateDir string) (spec.Approvers, string, error) {
	if stateDir != "" {
		path := filepath.Join(stateDir, "approvers.yaml")
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			a, err := spec.ParseApprovers(path, data)
			return a, path, err
		case !errors.Is(err, os.ErrNotExist):
			return nil, path, fmt.Errorf("read approvers: %w", err)
		}
	}
	ref, err := defaultBranch(ctx, repoDir)
	if err != nil {
		return nil, "", err
	}
	source := ref + ":" + spec.ApproversPath
	if _, err := gitOut(ctx, repoDir, "cat-file", "-e", source); err != nil {
		return nil, source, nil
	}
	data, err := gitRaw(ctx, repoDir, "show", source)
	if err != nil {
		return nil, source, fmt.Errorf("read approvers: %w", err)
	}
	a, err := spec.ParseApprovers(source, data)
	return a, source, err
}

// defaultBranch names the repository's default branch as a ref.
func defaultBranch(ctx context.Context, dir string) (string, error) {
	if ref, err := gitOut(ctx, dir, "symbolic-ref", "-q", "refs/remotes/origin/HEAD"); err == nil && ref != "" {
		return ref, nil
	}
	for _, b := range []string{"refs/heads/main", "refs/heads/master"} {
		if _, err := gitOut(ctx, dir, "rev-parse", "--verify", "-q", b); err == nil {
			return b, nil
		}
	}
	return "", fmt.Errorf("read approvers in %s: %w (no origin/HEAD, main or master)", dir, ErrNoDefaultBranch)
}
