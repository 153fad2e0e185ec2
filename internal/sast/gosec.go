// Package sast is gantry's static application security testing for Go:
// gosec's rules run in-process as a library over the packages of a module,
// gantry's inline suppressions (`// gantry:ignore G401 -- reason`, where the
// reason is required) applied to every report, and an adapter feeding
// `snyk code test --sarif` into the same findings.
package sast

import (
	"context"
	"fmt"
	"io"
	"log"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/securego/gosec/v2"
	"github.com/securego/gosec/v2/analyzers"
	"github.com/securego/gosec/v2/issue"
	"github.com/securego/gosec/v2/rules"

	"github.com/gantry-ci/gantry/internal/findings"
)

// GosecTool names the gosec report.
const GosecTool = "gosec"

// GosecVersion is the gosec library version linked in.
const GosecVersion = "v2.29.0"

// Options configure a gosec scan.
type Options struct {
	// Include lists the only rule ids run ("G201", ...); empty runs all.
	Include []string
	// Exclude lists rule ids not run.
	Exclude []string
	// Tests also analyses _test.go files.
	Tests bool
	// BuildTags are passed to the package loader.
	BuildTags []string
	// ExcludeDirs are regular expressions of directories skipped
	// (testdata, vendor and .git always are).
	ExcludeDirs []string
}

// Gosec analyses the Go packages under dir (a module or a directory within
// one) with gosec's rules and analyzers. gosec's own #nosec comments are
// not honoured: suppressions go through Suppress, which demands a reason.
// gosec reads no context: cancellation takes effect between packages.
// gosec loads packages with the go command in gantry's own environment.
func Gosec(ctx context.Context, dir string, o Options) (*findings.Report, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("gosec %s: %w", dir, err)
	}
	conf := gosec.NewConfig()
	conf.SetGlobal(gosec.Nosec, "true") // ignore #nosec; gantry:ignore with a reason instead
	an := gosec.NewAnalyzer(conf, o.Tests, true, false, 1, log.New(io.Discard, "", 0))
	var rf []rules.RuleFilter
	var af []analyzers.AnalyzerFilter
	if len(o.Include) > 0 {
		rf = append(rf, rules.NewRuleFilter(false, o.Include...))
		af = append(af, analyzers.NewAnalyzerFilter(false, o.Include...))
	}
	if len(o.Exclude) > 0 {
		rf = append(rf, rules.NewRuleFilter(true, o.Exclude...))
		af = append(af, analyzers.NewAnalyzerFilter(true, o.Exclude...))
	}
	an.LoadRules(rules.Generate(false, rf...).RulesInfo())
	an.LoadAnalyzers(analyzers.Generate(false, af...).AnalyzersInfo())

	excl := []string{`(^|/)testdata(/|$)`, `(^|/)vendor(/|$)`, `(^|/)\.git(/|$)`}
	excl = append(excl, o.ExcludeDirs...)
	var res []*regexp.Regexp
	for _, e := range excl {
		re, err := regexp.Compile(e)
		if err != nil {
			return nil, fmt.Errorf("gosec exclude %q: %w", e, err)
		}
		res = append(res, re)
	}
	// Match exclusions against paths relative to dir, so a scanned tree
	// that itself lives under testdata is still scanned.
	var pkgs []string
	all, err := gosec.PackagePaths(abs+"/...", nil)
	if err != nil {
		return nil, fmt.Errorf("gosec: list packages under %s: %w", dir, err)
	}
	for _, p := range all {
		rel, err := filepath.Rel(abs, p)
		if err != nil {
			return nil, err
		}
		skip := false
		for _, re := range res {
			if rel != "." && re.MatchString(filepath.ToSlash(rel)) {
				skip = true
			}
		}
		if !skip {
			pkgs = append(pkgs, p)
		}
	}
	sort.Strings(pkgs)
	r := &findings.Report{Tool: GosecTool, Version: GosecVersion, InfoURI: "https://github.com/securego/gosec"}
	if len(pkgs) == 0 {
		return r, nil
	}
	// One package at a time, so that cancellation takes effect between
	// packages (gosec itself takes no context); results accumulate.
	for _, p := range pkgs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := an.Process(o.BuildTags, p); err != nil {
			return nil, fmt.Errorf("gosec %s: %w", p, err)
		}
	}
	issues, _, errs := an.Report()
	for _, is := range issues {
		r.Add(fromIssue(abs, is))
	}
	for file, es := range errs {
		for _, e := range es {
			r.Add(findings.Finding{File: relPath(abs, file), Line: e.Line, Column: e.Column, Rule: "gosec-load",
				Severity: findings.Warning, Message: "not analysed: " + e.Err})
		}
	}
	r.Sort()
	return r, nil
}

func fromIssue(root string, is *issue.Issue) findings.Finding {
	line, _ := strconv.Atoi(strings.SplitN(is.Line, "-", 2)[0])
	col, _ := strconv.Atoi(is.Col)
	msg := is.What
	if is.Cwe != nil && is.Cwe.ID != "" {
		msg += fmt.Sprintf(" (CWE-%s, confidence %s)", is.Cwe.ID, strings.ToLower(is.Confidence.String()))
	}
	return findings.Finding{File: relPath(root, is.File), Line: line, Column: col, Rule: is.RuleID,
		Severity: severity(is.Severity), Message: msg}
}

// severity maps gosec's HIGH, MEDIUM, LOW to error, warning, note.
func severity(s issue.Score) findings.Severity {
	switch s {
	case issue.High:
		return findings.Error
	case issue.Medium:
		return findings.Warning
	}
	return findings.Note
}

func relPath(root, file string) string {
	if !filepath.IsAbs(file) {
		return filepath.ToSlash(file)
	}
	rel, err := filepath.Rel(root, file)
	if err != nil || strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(file)
	}
	return filepath.ToSlash(rel)
}
