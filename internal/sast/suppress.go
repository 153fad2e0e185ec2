package sast

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/gantry-ci/gantry/internal/findings"
)

// SuppressRule is the rule of a finding about a malformed suppression.
const SuppressRule = "gantry-ignore"

// SuppressTool names the report of malformed suppressions.
const SuppressTool = "gantry-ignore"

// directive matches `gantry:ignore RULE[,RULE...] [-- reason]` in any
// comment style (//, #, /* */, --).
var directive = regexp.MustCompile(`gantry:ignore(?:[ \t]+([A-Za-z0-9_.,-]+))?(?:[ \t]+--[ \t]*(.*?))?[ \t]*(?:\*/)?[ \t]*$`)

// Suppression is one parsed `gantry:ignore` comment.
type Suppression struct {
	File   string
	Line   int
	Column int
	Rules  []string
	Reason string
}

// parseLine returns the suppression in a line, if any.
func parseLine(file string, n int, line string) (Suppression, bool) {
	loc := directive.FindStringSubmatchIndex(line)
	if loc == nil {
		return Suppression{}, false
	}
	s := Suppression{File: file, Line: n, Column: loc[0] + 1}
	if loc[2] >= 0 {
		for _, r := range strings.Split(line[loc[2]:loc[3]], ",") {
			if r = strings.TrimSpace(r); r != "" {
				s.Rules = append(s.Rules, r)
			}
		}
	}
	if loc[4] >= 0 {
		s.Reason = strings.TrimSpace(line[loc[4]:loc[5]])
	}
	return s, true
}

// Suppressor applies the gantry:ignore comments of the files under a
// directory. A comment suppresses the named rules on its own line and on
// the line below it. Comments without a rule or a reason suppress nothing
// and are findings themselves.
type Suppressor struct {
	dir   string
	files map[string][]string // rel path -> lines, nil if unreadable
}

// NewSuppressor reads suppressions from files under dir on demand.
func NewSuppressor(dir string) *Suppressor {
	return &Suppressor{dir: dir, files: map[string][]string{}}
}

func (s *Suppressor) lines(rel string) []string {
	if l, ok := s.files[rel]; ok {
		return l
	}
	var lines []string
	if !filepath.IsAbs(rel) && !strings.HasPrefix(rel, "..") {
		if data, err := os.ReadFile(filepath.Join(s.dir, filepath.FromSlash(rel))); err == nil && bytes.IndexByte(data, 0) < 0 {
			lines = strings.Split(string(data), "\n")
		}
	}
	s.files[rel] = lines
	return lines
}

// suppressed returns the reason f is suppressed, if it is.
func (s *Suppressor) suppressed(f findings.Finding) (Suppression, bool) {
	if f.File == "" || f.Line <= 0 || f.Rule == SuppressRule {
		return Suppression{}, false
	}
	lines := s.lines(f.File)
	for _, n := range []int{f.Line, f.Line - 1} {
		if n < 1 || n > len(lines) {
			continue
		}
		sup, ok := parseLine(f.File, n, lines[n-1])
		if ok && sup.Reason != "" && slices.Contains(sup.Rules, f.Rule) {
			return sup, true
		}
	}
	return Suppression{}, false
}

// Apply removes the suppressed findings from the reports and returns the
// suppressions used.
func (s *Suppressor) Apply(reports ...*findings.Report) []Suppression {
	var used []Suppression
	for _, r := range reports {
		kept := r.Findings[:0]
		for _, f := range r.Findings {
			if sup, ok := s.suppressed(f); ok {
				used = append(used, sup)
				continue
			}
			kept = append(kept, f)
		}
		r.Findings = kept
	}
	return used
}

// Check reports every malformed gantry:ignore comment in the given files
// (relative to the directory): one without a rule or without a reason.
func (s *Suppressor) Check(files []string) *findings.Report {
	r := &findings.Report{Tool: SuppressTool}
	for _, rel := range files {
		for i, line := range s.lines(rel) {
			sup, ok := parseLine(rel, i+1, line)
			if !ok {
				continue
			}
			switch {
			case len(sup.Rules) == 0:
				r.Add(findings.Finding{File: rel, Line: sup.Line, Column: sup.Column, Rule: SuppressRule, Severity: findings.Error,
					Message: "gantry:ignore names no rule: write `gantry:ignore RULE -- reason`"})
			case sup.Reason == "":
				r.Add(findings.Finding{File: rel, Line: sup.Line, Column: sup.Column, Rule: SuppressRule, Severity: findings.Error,
					Message: fmt.Sprintf("gantry:ignore %s has no reason: write `-- why this is safe`; it suppresses nothing", strings.Join(sup.Rules, ","))})
			}
		}
	}
	r.Sort()
	return r
}

// SourceFiles lists the text files under dir that may hold suppressions:
// Go files and the other files the secrets scan reads, relative and
// slash-separated, skipping .git, vendor, node_modules and testdata.
func SourceFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "vendor", "node_modules", "testdata":
				if path != dir {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list files under %s: %w", dir, err)
	}
	return out, nil
}
