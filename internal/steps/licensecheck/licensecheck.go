// Package licensecheck is the `license-check` step kind: the licence of
// every dependency of a Go module, detected from the module cache and
// judged by the CEL policy in .gantry/licenses.yaml.
package licensecheck

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"

	"github.com/gantry-ci/gantry/internal/license"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/checkstep"
)

// Config is the `with:` block.
type Config struct {
	// Dir is the Go module, relative to the repository (default ".").
	Dir string `yaml:"dir"`
	// Policy is the policy file, relative to the repository
	// (default .gantry/licenses.yaml; absent means the default policy).
	Policy string `yaml:"policy"`
}

// Kind is the step kind.
var Kind = step.Kind{
	Name:    "license-check",
	Gate:    "licenses",
	Summary: "detect dependency licences from the module cache (licensecheck) and enforce the CEL policy in .gantry/licenses.yaml",
	Outputs: []string{"modules", "violations", "unknown"},
	New: func(in step.Inputs) (step.Step, error) {
		var c Config
		if err := in.Decode(&c); err != nil {
			return nil, err
		}
		for field, p := range map[string]string{"dir": c.Dir, "policy": c.Policy} {
			if filepath.IsAbs(p) || strings.HasPrefix(filepath.Clean(p), "..") {
				return nil, in.Errorf(field, "%s: %q must be inside the repository", field, p)
			}
		}
		if c.Policy == "" {
			c.Policy = license.PolicyFile
		}
		return &Step{cfg: c}, nil
	},
}

// Step runs the check.
type Step struct{ cfg Config }

var (
	_ step.Step       = (*Step)(nil)
	_ step.PathInputs = (*Step)(nil)
	_ step.Cacheable  = (*Step)(nil)
)

// CacheKey covers go.mod, go.sum (which pin every module and so its
// licence files) and the policy file. Modules replaced by local
// directories are read afresh: such a module makes the step uncacheable.
func (s *Step) CacheKey(_ context.Context, env *step.Env) (step.CacheKey, error) {
	data, err := os.ReadFile(filepath.Join(env.Dir, s.cfg.Dir, "go.mod"))
	if err != nil {
		return step.CacheKey{}, step.ErrNotCacheable
	}
	mf, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		return step.CacheKey{}, step.ErrNotCacheable
	}
	for _, r := range mf.Replace {
		if r.New.Version == "" {
			return step.CacheKey{}, step.ErrNotCacheable
		}
	}
	d := s.cfg.Dir
	return step.CacheKey{
		Files: []string{filepath.Join(d, "go.mod"), filepath.Join(d, "go.sum"), s.cfg.Policy},
		Extra: map[string]string{"licensecheck": "v0.3.1"},
	}, nil
}

// Run lists, detects, evaluates, and stores licenses.json and
// license-check.sarif.
func (s *Step) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	p, err := license.LoadPolicy(env.Dir, s.cfg.Policy)
	if err != nil {
		return nil, err
	}
	r, err := license.Check(ctx, filepath.Join(env.Dir, s.cfg.Dir), env.Vars, p)
	if err != nil {
		return nil, err
	}
	if env.Stdout != nil {
		for _, m := range r.Modules {
			name := m.Path + "@" + m.Version
			if m.Main {
				name = "project " + m.Path
			}
			fmt.Fprintf(env.Stdout, "%s: %v %.1f%% (%s)\n", name, m.Licenses, m.Coverage, m.Source)
		}
		for _, a := range r.Allowed {
			reason, _ := p.Allowed(a.Module)
			fmt.Fprintf(env.Stdout, "allowed %s despite %s: %s\n", a.Module, a.Rule, reason)
		}
	}
	if env.Artifacts != nil {
		data, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encode licenses.json: %w", err)
		}
		if err := env.Artifacts.PutBytes(ctx, "licenses.json", append(data, '\n'), "application/json"); err != nil {
			return nil, fmt.Errorf("store licenses.json: %w", err)
		}
	}
	deps := 0
	for _, m := range r.Modules {
		if !m.Main {
			deps++
		}
	}
	res, err := checkstep.Finish(ctx, env, Kind.Name, checkstep.Gate{}, map[string]any{
		"modules": deps, "violations": len(r.Violations), "unknown": len(r.Unknown)}, r.Report())
	if res != nil {
		res.Summary = fmt.Sprintf("%d module(s), %d violation(s), %d unknown", deps, len(r.Violations), len(r.Unknown))
	}
	return res, err
}

// Paths names the module directory and the policy file (the default one
// may be absent).
func (s *Step) Paths() []step.PathRef {
	pol := s.cfg.Policy
	if pol == license.PolicyFile {
		pol = ""
	}
	return []step.PathRef{
		{Field: "dir", Value: s.cfg.Dir, Type: step.PathDir},
		{Field: "policy", Value: pol, Type: step.PathFile},
	}
}
