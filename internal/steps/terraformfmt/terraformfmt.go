// Package terraformfmt is the `terraform-fmt` step kind: terraform fmt
// -check -diff -recursive, in-process with hclwrite.
package terraformfmt

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/checkstep"
	"github.com/gantry-ci/gantry/internal/tfmt"
)

// Config is the `with:` block.
type Config struct {
	checkstep.Gate `yaml:",inline"`
	// Dir is checked recursively (default ".").
	Dir string `yaml:"dir"`
}

// Kind is the step kind.
var Kind = step.Kind{
	Name:    "terraform-fmt",
	Gate:    "lint",
	Summary: "check Terraform formatting in-process (same verdict and diff as terraform fmt -check -diff -recursive)",
	Outputs: append([]string{"files"}, checkstep.Outputs...),
	New: func(in step.Inputs) (step.Step, error) {
		c, err := checkstep.Decode[Config](in)
		if err != nil {
			return nil, err
		}
		return &Step{cfg: c}, nil
	},
}

// Step checks formatting.
type Step struct{ cfg Config }

var (
	_ step.Step       = (*Step)(nil)
	_ step.PathInputs = (*Step)(nil)
	_ step.Cacheable  = (*Step)(nil)
)

// Run formats every file in memory and reports the unformatted ones; the
// diff goes to the log and the terraform-fmt.diff artifact.
func (s *Step) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	res, err := tfmt.Check(ctx, filepath.Join(env.Dir, s.cfg.Dir))
	if err != nil {
		return nil, err
	}
	if diff := res.Diff(); diff != "" {
		if env.Stdout != nil {
			if _, err := fmt.Fprint(env.Stdout, diff); err != nil {
				return nil, fmt.Errorf("write step log: %w", err)
			}
		}
		if env.Artifacts != nil {
			if err := env.Artifacts.PutBytes(ctx, "terraform-fmt.diff", []byte(diff), "text/x-diff"); err != nil {
				return nil, fmt.Errorf("store terraform-fmt.diff: %w", err)
			}
		}
	}
	return checkstep.Finish(ctx, env, Kind.Name, s.cfg.Gate, map[string]any{"files": res.Checked}, res.Report)
}

// CacheKey covers the Terraform files.
func (s *Step) CacheKey(context.Context, *step.Env) (step.CacheKey, error) {
	var files []string
	for _, ext := range tfmt.Extensions {
		files = append(files, filepath.Join(s.cfg.Dir, "**/*"+ext))
	}
	return step.CacheKey{Files: files, Extra: map[string]string{"formatter": "hclwrite"}}, nil
}

// Paths names the directory checked.
func (s *Step) Paths() []step.PathRef {
	return []step.PathRef{{Field: "dir", Value: s.cfg.Dir, Type: step.PathDir}}
}
