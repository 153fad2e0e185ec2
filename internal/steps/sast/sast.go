// Package sast is the `sast` step kind (the seed's Snyk Code step): gosec's
// Go security rules in-process, gantry's secrets detector over the tree and
// the commits being built, inline suppressions that need a reason, and
// `snyk code test` when a SNYK_TOKEN is configured and snyk is installed.
package sast

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/proc"
	lib "github.com/gantry-ci/gantry/internal/sast"
	"github.com/gantry-ci/gantry/internal/secrets"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/checkstep"
)

// History modes.
const (
	HistoryRange = "range" // the commits being built: git.base_ref..git.sha, or git.sha alone
	HistoryAll   = "all"   // every commit reachable from git.sha
	HistoryNone  = "none"
)

// Snyk modes.
const (
	SnykAuto = "auto" // run when SNYK_TOKEN is set and snyk is on PATH
	SnykOff  = "off"
	SnykOn   = "required" // fail when snyk cannot run
)

// Config is the `with:` block.
type Config struct {
	checkstep.Gate `yaml:",inline"`
	// Dir is the directory scanned, relative to the repository (default ".").
	Dir string `yaml:"dir"`
	// Rules and ExcludeRules select gosec rules (default: all).
	Rules        []string `yaml:"rules"`
	ExcludeRules []string `yaml:"exclude_rules"`
	// Tests also analyses _test.go files with gosec.
	Tests bool `yaml:"tests"`
	// Tags are Go build tags.
	Tags []string `yaml:"tags"`
	// Secrets turns the secrets detector off when false (default true).
	Secrets *bool `yaml:"secrets"`
	// History is range (default), all or none.
	History string `yaml:"history"`
	// From and To override the history range (revisions).
	From string `yaml:"from"`
	To   string `yaml:"to"`
	// ExcludePaths are doublestar patterns the secrets scan skips
	// (default: **/testdata/**).
	ExcludePaths []string `yaml:"exclude_paths"`
	// Snyk is auto (default), off or required.
	Snyk string `yaml:"snyk"`
}

// Outputs of the kind.
var Outputs = append(append([]string{}, checkstep.Outputs...), "suppressed", "secrets")

// Kind is the step kind.
var Kind = step.Kind{
	Name:    "sast",
	Gate:    "sast",
	Summary: "Go static security analysis (gosec " + lib.GosecVersion + ") and secret detection over the tree and the commits built, SARIF; snyk code test with a SNYK_TOKEN",
	Outputs: Outputs,
	New: func(in step.Inputs) (step.Step, error) {
		var c Config
		if err := in.Decode(&c); err != nil {
			return nil, err
		}
		if c.FailOn == "" {
			c.FailOn = "warning"
		}
		if err := c.Check(in); err != nil {
			return nil, err
		}
		switch c.History {
		case "":
			c.History = HistoryRange
		case HistoryRange, HistoryAll, HistoryNone:
		default:
			return nil, in.Errorf("history", "history: %q is not range, all or none", c.History)
		}
		switch c.Snyk {
		case "":
			c.Snyk = SnykAuto
		case SnykAuto, SnykOff, SnykOn:
		default:
			return nil, in.Errorf("snyk", "snyk: %q is not auto, off or required", c.Snyk)
		}
		if c.ExcludePaths == nil {
			c.ExcludePaths = []string{"**/testdata/**"}
		}
		if filepath.IsAbs(c.Dir) || strings.HasPrefix(filepath.Clean(c.Dir), "..") {
			return nil, in.Errorf("dir", "dir: %q must be inside the repository", c.Dir)
		}
		return &Step{cfg: c}, nil
	},
}

// Step runs the scans.
type Step struct{ cfg Config }

var (
	_ step.Step       = (*Step)(nil)
	_ step.PathInputs = (*Step)(nil)
)

// Run scans env.Dir/dir.
func (s *Step) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	out := env.Stdout
	if out == nil {
		out = io.Discard
	}
	dir := filepath.Join(env.Dir, s.cfg.Dir)
	gr, err := lib.Gosec(ctx, dir, lib.Options{Include: s.cfg.Rules, Exclude: s.cfg.ExcludeRules, Tests: s.cfg.Tests, BuildTags: s.cfg.Tags})
	if err != nil {
		return nil, err
	}
	reports := []*findings.Report{gr}
	nsecrets := 0
	if s.cfg.Secrets == nil || *s.cfg.Secrets {
		sr := &findings.Report{Tool: secrets.Tool}
		sc := &secrets.Scanner{Exclude: s.cfg.ExcludePaths, Env: env.Vars}
		if err := sc.ScanTree(ctx, dir, sr); err != nil {
			return nil, err
		}
		if rng := s.historyRange(env); rng != nil {
			if !isRepo(ctx, dir, env.Vars) {
				fmt.Fprintf(out, "sast: %s is not in a git repository; history not scanned\n", dir)
			} else if err := sc.ScanHistory(ctx, dir, rng, sr); err != nil {
				return nil, err
			}
		}
		sr.Sort()
		reports = append(reports, sr)
	}
	if s.cfg.Snyk != SnykOff {
		rs, err := lib.Snyk(ctx, dir, env.Vars)
		switch {
		case errors.Is(err, lib.ErrSnykUnavailable) && s.cfg.Snyk == SnykAuto:
		case err != nil:
			return nil, err
		default:
			reports = append(reports, rs...)
		}
	}
	sup := lib.NewSuppressor(dir)
	used := sup.Apply(reports...)
	for _, u := range used {
		fmt.Fprintf(out, "%s:%d: suppressed %s: %s\n", u.File, u.Line, strings.Join(u.Rules, ","), u.Reason)
	}
	files, err := lib.SourceFiles(dir)
	if err != nil {
		return nil, err
	}
	reports = append(reports, sup.Check(files))
	for _, r := range reports {
		if r.Tool == secrets.Tool {
			nsecrets = len(r.Findings)
		}
	}
	return checkstep.Finish(ctx, env, Kind.Name, s.cfg.Gate, map[string]any{"suppressed": len(used), "secrets": nsecrets}, reports...)
}

// historyRange is the revision range scanned, nil for none.
func (s *Step) historyRange(env *step.Env) []string {
	if s.cfg.History == HistoryNone {
		return nil
	}
	to := s.cfg.To
	if to == "" {
		to = env.Git.SHA
	}
	if to == "" {
		to = "HEAD"
	}
	from := s.cfg.From
	if from == "" && s.cfg.History == HistoryRange {
		from = env.Git.BaseRef
	}
	switch {
	case s.cfg.History == HistoryAll:
		return []string{to}
	case from != "":
		return []string{from + ".." + to}
	}
	return []string{to + "^!"}
}

func isRepo(ctx context.Context, dir string, vars []string) bool {
	cmd := proc.Command(ctx, "git", "-C", dir, "rev-parse", "--git-dir")
	cmd.Env = vars
	return cmd.Run() == nil
}

var _ step.Cacheable = (*Step)(nil)

// CacheKey implements step.Cacheable: the result depends on the tracked
// files, the gosec version and, for the secrets history scan, the commits
// in the range (named by the commit built). A step that would ask Snyk's
// service is never cached: its answers can change without our inputs
// changing.
func (s *Step) CacheKey(_ context.Context, env *step.Env) (step.CacheKey, error) {
	if s.cfg.Snyk != SnykOff {
		for _, v := range env.Vars {
			if strings.HasPrefix(v, "SNYK_TOKEN=") && len(v) > len("SNYK_TOKEN=") {
				return step.CacheKey{}, step.ErrNotCacheable
			}
		}
	}
	extra := map[string]string{"gosec": lib.GosecVersion}
	if r := s.historyRange(env); r != nil {
		extra["history"] = strings.Join(r, " ")
		extra["sha"] = env.Git.SHA
	}
	return step.CacheKey{Extra: extra}, nil
}

// Paths names the directory analysed.
func (s *Step) Paths() []step.PathRef {
	return []step.PathRef{{Field: "dir", Value: s.cfg.Dir, Type: step.PathDir}}
}
