// Package golangcilint is the `golangci-lint` step kind: the pinned
// golangci-lint, installed on first use into the tool cache, run with the
// repository's .golangci.yml.
package golangcilint

import (
	"context"
	"path/filepath"
	"strings"

	lint "github.com/gantry-ci/gantry/internal/golangcilint"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/checkstep"
	"github.com/gantry-ci/gantry/internal/toolcache"
)

// Config is the `with:` block.
type Config struct {
	checkstep.Gate `yaml:",inline"`
	// Dir is the module directory, relative to the repository (default ".").
	Dir string `yaml:"dir"`
	// Packages to lint (default ./...).
	Packages []string `yaml:"packages"`
	// Config is the golangci-lint config file (default: found by
	// golangci-lint, usually .golangci.yml).
	Config string `yaml:"config"`
	// NewFromRev reports only issues in code changed after this revision
	// (golangci-lint --new-from-rev): how a repository adopts a linter
	// without judging its existing code.
	NewFromRev string `yaml:"new_from_rev"`
}

// Kind is the step kind.
var Kind = step.Kind{
	Name:    "golangci-lint",
	Gate:    "lint",
	Summary: "lint Go code with a pinned golangci-lint (" + lint.Tool.Version + ") and the repository's .golangci.yml",
	Outputs: checkstep.Outputs,
	New: func(in step.Inputs) (step.Step, error) {
		c, err := checkstep.Decode[Config](in)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(c.NewFromRev, "-") {
			return nil, in.Errorf("new_from_rev", "new_from_rev: %q is not a revision", c.NewFromRev)
		}
		return &Step{cfg: c}, nil
	},
}

// Step runs golangci-lint.
type Step struct{ cfg Config }

var (
	_ step.Step       = (*Step)(nil)
	_ step.PathInputs = (*Step)(nil)
	_ step.Cacheable  = (*Step)(nil)
)

// Run installs the tool if needed and lints.
func (s *Step) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	bin, err := toolcache.New(toolcache.Dir(env.StateDir)).Ensure(ctx, lint.Tool, env.Stdout)
	if err != nil {
		return nil, err
	}
	r, err := lint.Run(ctx, bin, filepath.Join(env.Dir, s.cfg.Dir), lint.Options{Packages: s.cfg.Packages, Config: s.cfg.Config, NewFromRev: s.cfg.NewFromRev, Env: env.Vars})
	if err != nil {
		return nil, err
	}
	return checkstep.Finish(ctx, env, Kind.Name, s.cfg.Gate, nil, r)
}

// CacheKey covers the Go sources, the module files, the config and the
// tool version.
func (s *Step) CacheKey(context.Context, *step.Env) (step.CacheKey, error) {
	d := s.cfg.Dir
	return step.CacheKey{
		Files: []string{filepath.Join(d, "**/*.go"), filepath.Join(d, "go.mod"), filepath.Join(d, "go.sum"), filepath.Join(d, ".golangci.*")},
		Extra: map[string]string{"golangci-lint": lint.Tool.Version, "new_from_rev": s.cfg.NewFromRev},
	}, nil
}

// Paths names the module directory and the config file.
func (s *Step) Paths() []step.PathRef {
	return []step.PathRef{
		{Field: "dir", Value: s.cfg.Dir, Type: step.PathDir},
		{Field: "config", Value: s.cfg.Config, Type: step.PathFile},
	}
}
