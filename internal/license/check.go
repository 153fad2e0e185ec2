package license

import (
	"context"
	"fmt"

	"github.com/gantry-ci/gantry/internal/findings"
)

// Tool names the licence report.
const Tool = "gantry-licenses"

// Result is the outcome of a licence check.
type Result struct {
	Project    []string    `json:"project"`
	Modules    []Module    `json:"modules"`
	Violations []Violation `json:"violations"`
	Allowed    []Violation `json:"allowed,omitempty"`
	Unknown    []string    `json:"unknown"`
}

// Check lists the modules of the Go module in dir, detects their
// licences and evaluates p over every dependency.
func Check(ctx context.Context, dir string, env []string, p *Policy) (*Result, error) {
	mods, err := List(ctx, dir, env)
	if err != nil {
		return nil, err
	}
	res := &Result{Violations: []Violation{}, Unknown: []string{}}
	for i := range mods {
		if err := Detect(&mods[i]); err != nil {
			return nil, err
		}
		p.Override(&mods[i])
		if mods[i].Main {
			res.Project = append(res.Project, mods[i].Licenses...)
		}
	}
	for _, m := range mods {
		if m.Main {
			continue
		}
		if p.Unknown(m) {
			res.Unknown = append(res.Unknown, m.Path)
		}
		vs, err := p.Evaluate(m, res.Project)
		if err != nil {
			return nil, err
		}
		if _, ok := p.Allowed(m.Path); ok {
			res.Allowed = append(res.Allowed, vs...)
			continue
		}
		res.Violations = append(res.Violations, vs...)
	}
	res.Modules = mods
	return res, nil
}

// Report turns the violations into findings located at go.mod.
func (r *Result) Report() *findings.Report {
	rep := &findings.Report{Tool: Tool}
	lic := map[string]Module{}
	for _, m := range r.Modules {
		lic[m.Path] = m
	}
	for _, v := range r.Violations {
		m := lic[v.Module]
		rep.Add(findings.Finding{File: "go.mod", Rule: v.Rule, Severity: findings.Error,
			Message: fmt.Sprintf("%s@%s: %v (coverage %.1f%%, %s): %s", v.Module, v.Version, m.Licenses, m.Coverage, m.Source, v.Message)})
	}
	rep.Sort()
	return rep
}
