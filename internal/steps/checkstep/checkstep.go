// Package checkstep holds what the commit-stage step kinds share: the
// fail_on input, printing findings to the step log, storing them as a
// SARIF artifact and setting the findings/errors/warnings outputs.
package checkstep

import (
	"context"
	"fmt"
	"io"

	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/step"
)

// Outputs every check kind sets.
var Outputs = []string{"findings", "errors", "warnings"}

// Gate is the `with:` input shared by check kinds.
type Gate struct {
	// FailOn is the lowest severity that fails the step: error (default),
	// warning or note; findings below it are reported and allowed.
	FailOn string `yaml:"fail_on"`
}

// Check validates FailOn, reporting errors at the fail_on field.
func (g Gate) Check(in step.Inputs) error {
	if g.FailOn == "" {
		return nil
	}
	if _, err := findings.ParseSeverity(g.FailOn); err != nil {
		return in.Errorf("fail_on", "fail_on: %v", err)
	}
	return nil
}

// Severity returns the threshold (error by default).
func (g Gate) Severity() findings.Severity {
	s, err := findings.ParseSeverity(g.FailOn)
	if err != nil || g.FailOn == "" {
		return findings.Error
	}
	return s
}

// FailedError is returned when findings at or above the threshold exist.
type FailedError struct {
	Tool  string
	Count int
	Min   findings.Severity
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("%s: %d finding(s) at or above %s", e.Tool, e.Count, e.Min)
}

// Finish prints the reports to the step log, stores them as the SARIF
// artifact kind.sarif, and returns the result with the findings outputs
// (plus extra). It returns a *FailedError when the gate fails.
func Finish(ctx context.Context, env *step.Env, kind string, g Gate, extra map[string]any, reports ...*findings.Report) (*step.Result, error) {
	out := env.Stdout
	if out == nil {
		out = io.Discard
	}
	total, errs, warns := 0, 0, 0
	min := g.Severity()
	failing := 0
	for _, r := range reports {
		if err := r.WriteText(out); err != nil {
			return nil, fmt.Errorf("write %s findings: %w", kind, err)
		}
		total += len(r.Findings)
		errs += r.CountExactly(findings.Error)
		warns += r.CountExactly(findings.Warning)
		failing += r.Count(min)
	}
	if env.Artifacts != nil {
		data, err := findings.SARIF(reports...)
		if err != nil {
			return nil, err
		}
		if err := env.Artifacts.PutBytes(ctx, kind+".sarif", data, "application/sarif+json"); err != nil {
			return nil, fmt.Errorf("store %s.sarif: %w", kind, err)
		}
	}
	res := &step.Result{Outputs: map[string]any{"findings": total, "errors": errs, "warnings": warns}}
	for k, v := range extra {
		res.Outputs[k] = v
	}
	res.Summary = "no findings"
	if total > 0 {
		res.Summary = fmt.Sprintf("%d finding(s): %d error(s), %d warning(s)", total, errs, warns)
	}
	if failing > 0 {
		return res, &FailedError{Tool: kind, Count: failing, Min: min}
	}
	return res, nil
}

// Checker is a check kind's `with:` block: it validates itself once
// decoded. Embedding Gate provides a Check that validates fail_on.
type Checker interface {
	Check(in step.Inputs) error
}

// Decode decodes a check kind's `with:` block into a C and validates it,
// the common first half of every check kind's New.
func Decode[C Checker](in step.Inputs) (C, error) {
	var c C
	if err := in.Decode(&c); err != nil {
		return c, err
	}
	if err := c.Check(in); err != nil {
		return c, err
	}
	return c, nil
}
