// Package tflint is the `tflint` step kind: the pinned tflint, installed
// on first use into the tool cache, run recursively on a Terraform
// directory.
package tflint

import (
	"context"
	"path/filepath"

	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/checkstep"
	lint "github.com/gantry-ci/gantry/internal/tflint"
	"github.com/gantry-ci/gantry/internal/toolcache"
)

// Config is the `with:` block.
type Config struct {
	checkstep.Gate `yaml:",inline"`
	// Dir is linted recursively (default ".").
	Dir string `yaml:"dir"`
	// Config is a .tflint.hcl file relative to Dir.
	Config string `yaml:"config"`
}

// Kind is the step kind.
var Kind = step.Kind{
	Name:    "tflint",
	Gate:    "lint",
	Summary: "lint Terraform with a pinned tflint (" + lint.Tool.Version + ", bundled terraform ruleset)",
	Outputs: checkstep.Outputs,
	New: func(in step.Inputs) (step.Step, error) {
		c, err := checkstep.Decode[Config](in)
		if err != nil {
			return nil, err
		}
		return &Step{cfg: c}, nil
	},
}

// Step runs tflint.
type Step struct{ cfg Config }

var (
	_ step.Step       = (*Step)(nil)
	_ step.PathInputs = (*Step)(nil)
	_ step.Cacheable  = (*Step)(nil)
)

// Run installs tflint if needed and lints.
func (s *Step) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	bin, err := toolcache.New(toolcache.Dir(env.StateDir)).Ensure(ctx, lint.Tool, env.Stdout)
	if err != nil {
		return nil, err
	}
	r, err := lint.Run(ctx, bin, filepath.Join(env.Dir, s.cfg.Dir), lint.Options{Config: s.cfg.Config, Env: env.Vars})
	if err != nil {
		return nil, err
	}
	return checkstep.Finish(ctx, env, Kind.Name, s.cfg.Gate, nil, r)
}

// CacheKey covers the Terraform files, the config and the tool version.
func (s *Step) CacheKey(context.Context, *step.Env) (step.CacheKey, error) {
	d := s.cfg.Dir
	return step.CacheKey{
		Files: []string{filepath.Join(d, "**/*.tf"), filepath.Join(d, "**/*.tfvars"), filepath.Join(d, "**/.tflint.hcl")},
		Extra: map[string]string{"tflint": lint.Tool.Version},
	}, nil
}

// Paths names the directory linted and the config file.
func (s *Step) Paths() []step.PathRef {
	return []step.PathRef{
		{Field: "dir", Value: s.cfg.Dir, Type: step.PathDir},
		{Field: "config", Value: s.cfg.Config, Type: step.PathFile},
	}
}
