// Package commitlint is the `commitlint` step kind: every commit of the
// change is checked against the Conventional Commits rules
// (@commitlint/config-conventional plus the repository's .commitlintrc).
package commitlint

import (
	"context"
	"fmt"
	"strings"

	cl "github.com/gantry-ci/gantry/internal/commitlint"
	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/gitutil"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/checkstep"
)

// Config is the `with:` block.
type Config struct {
	checkstep.Gate `yaml:",inline"`
	// From and To override the range (revisions); by default it comes
	// from the event (see Range).
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// Kind is the step kind.
var Kind = step.Kind{
	Name:    "commitlint",
	Gate:    "commit-messages",
	Summary: "check commit messages against Conventional Commits (config-conventional + .commitlintrc)",
	Outputs: append([]string{"commits", "range"}, checkstep.Outputs...),
	New: func(in step.Inputs) (step.Step, error) {
		c, err := checkstep.Decode[Config](in)
		if err != nil {
			return nil, err
		}
		return &Step{cfg: c}, nil
	},
}

// Step lints commits.
type Step struct{ cfg Config }

var _ step.Step = (*Step)(nil)

// Run lints the commits of the range.
func (s *Step) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	repo := gitutil.Repo{Dir: env.Dir, Env: env.Vars}
	from, to := s.cfg.From, s.cfg.To
	if from == "" && to == "" && env.Git.SHA == "" {
		if _, err := repo.Resolve(ctx, "HEAD"); err != nil {
			// No commit yet (or no repository yet): nothing to lint.
			if env.Stdout != nil {
				if _, err := fmt.Fprintln(env.Stdout, "no commits yet: nothing to lint"); err != nil {
					return nil, fmt.Errorf("write step log: %w", err)
				}
			}
			return checkstep.Finish(ctx, env, Kind.Name, s.cfg.Gate, map[string]any{"commits": 0, "range": ""}, NewReport())
		}
	}
	if from == "" && to == "" {
		var err error
		from, to, err = Range(ctx, repo, env.Git)
		if err != nil {
			return nil, err
		}
	}
	if to == "" {
		to = "HEAD"
	}
	cfg, err := cl.LoadConfig(env.Dir)
	if err != nil {
		return nil, err
	}
	r, n, err := LintRange(ctx, repo, cfg, from, to)
	if err != nil {
		return nil, err
	}
	rng := to
	if from != "" {
		rng = from + ".." + to
	}
	if env.Stdout != nil {
		if _, err := fmt.Fprintf(env.Stdout, "linting %d commit(s) in %s\n", n, rng); err != nil {
			return nil, fmt.Errorf("write step log: %w", err)
		}
	}
	return checkstep.Finish(ctx, env, Kind.Name, s.cfg.Gate, map[string]any{"commits": n, "range": rng}, r)
}

// Range picks the commits to lint from the event:
//   - pull_request: the merge base of the target branch (origin/BASE if it
//     exists, else BASE) and the head, to the head;
//   - push with the previous head known (BaseRef): previous..head;
//   - push without it: on a branch other than the default one, the commits
//     since the merge base with the default branch; on the default branch
//     (or without one), only the head commit.
//
// An empty from means "to and its ancestors" and is only returned with a
// single-commit to of the form "SHA^!".
func Range(ctx context.Context, repo gitutil.Repo, g step.Git) (from, to string, err error) {
	to = g.SHA
	if to == "" {
		to = "HEAD"
	}
	if g.Event == "pull_request" && g.BaseRef != "" {
		for _, base := range []string{"origin/" + g.BaseRef, g.BaseRef} {
			if _, err := repo.Resolve(ctx, base); err != nil {
				continue
			}
			mb, err := repo.MergeBase(ctx, base, to)
			if err != nil {
				return "", "", fmt.Errorf("find the pull request's base: %w", err)
			}
			return mb, to, nil
		}
		return "", "", fmt.Errorf("pull request base %q not found (fetch it, e.g. git fetch origin %s)", g.BaseRef, g.BaseRef)
	}
	if g.BaseRef != "" && strings.Trim(g.BaseRef, "0") != "" {
		if _, err := repo.Resolve(ctx, g.BaseRef); err == nil {
			return g.BaseRef, to, nil
		}
	}
	if def, err := repo.DefaultBranch(ctx); err == nil {
		defSHA, err1 := repo.Resolve(ctx, def)
		head, err2 := repo.Resolve(ctx, to)
		if err1 == nil && err2 == nil && defSHA != head {
			if mb, err := repo.MergeBase(ctx, def, to); err == nil && mb != head {
				return mb, to, nil
			}
		}
	}
	// Only the head commit.
	if parent, err := repo.Resolve(ctx, to+"^"); err == nil {
		return parent, to, nil
	}
	return "", to, nil
}

// LintRange lints every commit in from..to (from empty: to and its
// ancestors) and returns the findings and the number of commits.
func LintRange(ctx context.Context, repo gitutil.Repo, cfg cl.Config, from, to string) (*findings.Report, int, error) {
	commits, err := repo.Commits(ctx, from, to)
	if err != nil {
		return nil, 0, fmt.Errorf("read commits: %w", err)
	}
	r := NewReport()
	for _, c := range commits {
		Add(r, "commit "+short(c.SHA), cfg.Lint(c.Message))
	}
	return r, len(commits), nil
}

// NewReport returns an empty commitlint report.
func NewReport() *findings.Report {
	return &findings.Report{Tool: "commitlint", InfoURI: "https://commitlint.js.org"}
}

// Add turns one message's problems into findings located at source
// ("commit 1a2b3c4", "stdin").
func Add(r *findings.Report, source string, res cl.Result) {
	header := res.Commit.Header
	if len([]rune(header)) > 60 {
		header = string([]rune(header)[:57]) + "..."
	}
	for _, p := range res.Problems {
		sev := findings.Error
		if p.Level == cl.Warn {
			sev = findings.Warning
		}
		line := 0
		if strings.HasPrefix(p.Rule, "header-") || strings.HasPrefix(p.Rule, "type-") || strings.HasPrefix(p.Rule, "subject-") || strings.HasPrefix(p.Rule, "scope-") {
			line = 1
		}
		r.Add(findings.Finding{File: source, Line: line, Rule: p.Rule, Severity: sev, Message: fmt.Sprintf("%s (%q)", p.Message, header)})
	}
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
