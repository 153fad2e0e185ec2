// Package findings is the one model every check reports in (lint, format,
// schema, commit messages, and later the security scanners): a finding has
// a file, a line, a column, a rule, a severity and a message. A Report is
// one tool's findings; it prints as a readable summary and encodes as a
// SARIF 2.1.0 log.
package findings

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Severity orders findings. The zero value is Note.
type Severity int

// Severities, lowest first. They map to SARIF levels note, warning, error.
const (
	Note Severity = iota
	Warning
	Error
)

func (s Severity) String() string {
	switch s {
	case Note:
		return "note"
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// MarshalText encodes the severity as its name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSeverity reads "error", "warning" or "note" ("info" is a note).
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "error", "high", "critical":
		return Error, nil
	case "warning", "warn", "medium":
		return Warning, nil
	case "note", "info", "low":
		return Note, nil
	}
	return 0, fmt.Errorf("unknown severity %q (want error, warning or note)", s)
}

// Finding is one problem a check found.
type Finding struct {
	// File is relative to the checked directory, slash-separated; it may
	// name a document that is not a file ("commit 1a2b3c4").
	File     string   `json:"file,omitempty"`
	Line     int      `json:"line,omitempty"`
	Column   int      `json:"column,omitempty"`
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

// Location renders file:line:col, leaving out what is unknown.
func (f Finding) Location() string {
	var b strings.Builder
	b.WriteString(f.File)
	if f.Line > 0 {
		fmt.Fprintf(&b, ":%d", f.Line)
		if f.Column > 0 {
			fmt.Fprintf(&b, ":%d", f.Column)
		}
	}
	return b.String()
}

func (f Finding) String() string {
	loc := f.Location()
	if loc != "" {
		loc += ": "
	}
	return fmt.Sprintf("%s%s: %s [%s]", loc, f.Severity, f.Message, f.Rule)
}

// Report is the findings of one tool run.
type Report struct {
	// Tool names the checker ("golangci-lint", "kubeconform", ...).
	Tool string
	// Version is the checker's version, if known.
	Version string
	// InfoURI points at the tool's documentation, if known.
	InfoURI  string
	Findings []Finding
}

// Add appends a finding.
func (r *Report) Add(f Finding) { r.Findings = append(r.Findings, f) }

// Sort orders findings by file, line, column, rule, message.
func (r *Report) Sort() {
	slices.SortStableFunc(r.Findings, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column),
			cmp.Compare(a.Rule, b.Rule),
			cmp.Compare(a.Message, b.Message),
		)
	})
}

// Count returns how many findings are at or above min.
func (r *Report) Count(min Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity >= min {
			n++
		}
	}
	return n
}

// CountExactly returns how many findings have severity s.
func (r *Report) CountExactly(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// WriteText prints one line per finding and a summary line.
func (r *Report) WriteText(w io.Writer) error {
	for _, f := range r.Findings {
		if _, err := fmt.Fprintln(w, f.String()); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w, r.Summary())
	return err
}

// Summary is one line: "kubeconform: 2 errors, 1 warning" or
// "kubeconform: no findings".
func (r *Report) Summary() string {
	if len(r.Findings) == 0 {
		return r.Tool + ": no findings"
	}
	e, w, n := r.CountExactly(Error), r.CountExactly(Warning), r.CountExactly(Note)
	var parts []string
	if e > 0 {
		parts = append(parts, plural(e, "error"))
	}
	if w > 0 {
		parts = append(parts, plural(w, "warning"))
	}
	if n > 0 {
		parts = append(parts, plural(n, "note"))
	}
	return r.Tool + ": " + strings.Join(parts, ", ")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
