// Package helmlint is the `helm-lint` step kind: helm lint through the
// Helm SDK.
package helmlint

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/gantry-ci/gantry/internal/helmcheck"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/checkstep"
)

// Config is the `with:` block.
type Config struct {
	checkstep.Gate `yaml:",inline"`
	// Chart is the chart directory.
	Chart string `yaml:"chart"`
	// Values are extra values files.
	Values []string `yaml:"values"`
	// Set are key=value overrides.
	Set []string `yaml:"set"`
	// Strict turns lint warnings into errors (helm lint --strict).
	Strict bool `yaml:"strict"`
}

// Kind is the step kind.
var Kind = step.Kind{
	Name:    "helm-lint",
	Gate:    "lint",
	Summary: "lint a Helm chart through the Helm SDK (no helm binary needed)",
	Outputs: checkstep.Outputs,
	New: func(in step.Inputs) (step.Step, error) {
		var c Config
		if err := in.Decode(&c); err != nil {
			return nil, err
		}
		if c.Chart == "" {
			return nil, in.Errorf("chart", "helm-lint needs chart (the chart directory)")
		}
		if err := c.Check(in); err != nil {
			return nil, err
		}
		return &Step{cfg: c}, nil
	},
}

// Step lints a chart.
type Step struct{ cfg Config }

var (
	_ step.Step       = (*Step)(nil)
	_ step.PathInputs = (*Step)(nil)
	_ step.Cacheable  = (*Step)(nil)
)

// Run lints.
func (s *Step) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	r, err := helmcheck.Lint(ctx, env.Dir, s.cfg.Chart, helmcheck.Options{ValuesFiles: s.cfg.Values, Set: s.cfg.Set, Strict: s.cfg.Strict})
	if err != nil {
		return nil, err
	}
	return checkstep.Finish(ctx, env, Kind.Name, s.cfg.Gate, nil, r)
}

// CacheKey covers the chart and values files.
func (s *Step) CacheKey(context.Context, *step.Env) (step.CacheKey, error) {
	files := append([]string{filepath.Join(s.cfg.Chart, "**")}, s.cfg.Values...)
	return step.CacheKey{Files: files, Extra: map[string]string{"helm": helmcheck.SDKVersion}}, nil
}

// Paths names the chart and its values files.
func (s *Step) Paths() []step.PathRef {
	refs := []step.PathRef{{Field: "chart", Value: s.cfg.Chart, Type: step.PathChart}}
	for i, v := range s.cfg.Values {
		refs = append(refs, step.PathRef{Field: fmt.Sprintf("values.%d", i), Value: v, Type: step.PathFile})
	}
	return refs
}
