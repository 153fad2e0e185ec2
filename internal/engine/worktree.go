package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var shaRE = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// checkout returns the directory a resumed run works in: dir itself when
// its HEAD is the run's commit and no tracked file changed, otherwise
// dir's place in a detached git worktree of sha under the state dir,
// which cleanup removes. A dir that is not a git checkout (or a run without a commit)
// is used as it is.
func (e *Engine) checkout(ctx context.Context, dir, sha string, runID int64) (string, func(), error) {
	nothing := func() {}
	if sha == "" {
		return dir, nothing, nil
	}
	if _, err := gitOut(ctx, dir, "rev-parse", "--git-dir"); err != nil {
		e.log.Warn("resuming outside a git checkout: cannot check the commit", "dir", dir, "sha", sha)
		return dir, nothing, nil
	}
	if !shaRE.MatchString(sha) {
		return "", nothing, fmt.Errorf("recorded commit %q is not a full hexadecimal object name", sha)
	}
	head, _ := gitOut(ctx, dir, "rev-parse", "--verify", "-q", "HEAD")
	dirty, err := gitOut(ctx, dir, "status", "--porcelain", "--untracked-files=no")
	if err != nil {
		return "", nothing, err
	}
	if head == sha && dirty == "" {
		return dir, nothing, nil
	}
	wt, err := filepath.Abs(filepath.Join(e.stateDir, "worktrees", "run-"+strconv.FormatInt(runID, 10)))
	if err != nil {
		return "", nothing, fmt.Errorf("worktree dir: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(wt), 0o755); err != nil {
		return "", nothing, fmt.Errorf("create worktree dir: %w", err)
	}
	remove := func() {
		// Survives the cancellation that ends the run.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, err := gitOut(cctx, dir, "worktree", "remove", "--force", wt); err != nil {
			e.log.Warn("remove run worktree", "dir", wt, "err", err)
			_ = os.RemoveAll(wt)
			_, _ = gitOut(cctx, dir, "worktree", "prune")
		}
	}
	if _, err := os.Stat(wt); err == nil {
		remove() // left by a resumption that was killed
	}
	// dir may be a subdirectory of its repository (a service in a
	// monorepo): the run goes on in the same subdirectory of the worktree.
	prefix, err := gitOut(ctx, dir, "rev-parse", "--show-prefix")
	if err != nil {
		return "", nothing, err
	}
	if _, err := gitOut(ctx, dir, "worktree", "add", "--detach", wt, sha); err != nil {
		return "", nothing, err
	}
	work := filepath.Join(wt, filepath.FromSlash(prefix))
	e.log.Info("resuming in a detached worktree of the run's commit", "dir", work, "sha", sha, "head", head, "dirty", dirty != "")
	return work, remove, nil
}

func gitOut(ctx context.Context, dir string, args ...string) (string, error) {
	b, err := gitRaw(ctx, dir, args...)
	return strings.TrimSpace(string(b)), err
}

// gitRaw runs git in dir and returns its standard output as it is.
func gitRaw(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
		}
		return nil, fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return out.Bytes(), nil
}
