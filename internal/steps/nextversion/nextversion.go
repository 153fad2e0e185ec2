// Package nextversion is the `next-version` step kind: the next semantic
// version from the Conventional Commits since the last vX.Y.Z tag, for the
// build stage to tag images with.
package nextversion

import (
	"context"
	"fmt"

	"github.com/gantry-ci/gantry/internal/gitutil"
	nv "github.com/gantry-ci/gantry/internal/nextversion"
	"github.com/gantry-ci/gantry/internal/step"
)

// Config is the `with:` block.
type Config struct {
	// Rev is the commit to version (default: the commit being built).
	Rev string `yaml:"rev"`
}

// Kind is the step kind.
var Kind = step.Kind{
	Name:    "next-version",
	Summary: "compute the next semantic version from Conventional Commits since the last vX.Y.Z tag",
	Outputs: []string{"version", "previous", "bump", "tag"},
	New: func(in step.Inputs) (step.Step, error) {
		var c Config
		if err := in.Decode(&c); err != nil {
			return nil, err
		}
		return &Step{cfg: c}, nil
	},
}

// Step computes the version.
type Step struct{ cfg Config }

var _ step.Step = (*Step)(nil)

// Run computes the version and sets version (1.4.0), previous (1.3.2,
// empty without a tag), bump (major, minor, patch, none) and tag (v1.4.0).
func (s *Step) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	rev := s.cfg.Rev
	if rev == "" {
		rev = env.Git.SHA
	}
	repo := gitutil.Repo{Dir: env.Dir, Env: env.Vars}
	var res nv.Result
	if rev == "" && !hasCommits(ctx, repo) {
		// No commit yet (or no repository yet): the first release.
		res.Version = nv.Initial.String()
	} else {
		var err error
		if res, err = nv.Compute(ctx, repo, rev); err != nil {
			return nil, err
		}
	}
	prev := res.Previous
	from := "no release tag"
	if res.Tag != "" {
		from = res.Tag
	}
	if env.Stdout != nil {
		if _, err := fmt.Fprintf(env.Stdout, "%d commit(s) since %s: %s bump -> %s\n", res.Commits, from, res.Bump, res.Version); err != nil {
			return nil, fmt.Errorf("write step log: %w", err)
		}
	}
	return &step.Result{
		Outputs: map[string]any{"version": res.Version, "previous": prev, "bump": res.Bump.String(), "tag": "v" + res.Version},
		Summary: fmt.Sprintf("%s (%s bump from %s)", res.Version, res.Bump, from),
	}, nil
}

// hasCommits reports whether the repository has a HEAD commit.
func hasCommits(ctx context.Context, repo gitutil.Repo) bool {
	_, err := repo.Resolve(ctx, "HEAD")
	return err == nil
}
