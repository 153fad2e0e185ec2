// Package golangcilint runs a pinned golangci-lint (installed on first use
// into gantry's tool cache) with the repository's own configuration and
// turns its JSON report into findings.
package golangcilint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/toolcache"
)

// Tool is the pinned golangci-lint.
var Tool = toolcache.Tool{
	Name:    "golangci-lint",
	Package: "github.com/golangci/golangci-lint/v2/cmd/golangci-lint",
	Version: "v2.15.0",
}

// Options configure a run.
type Options struct {
	// Packages to lint (default ./...).
	Packages []string
	// Config is a config file relative to the directory; empty lets
	// golangci-lint find .golangci.yml itself.
	Config string
	// NewFromRev, when set, reports only issues in code changed after
	// this revision (--new-from-rev).
	NewFromRev string
	// Env is the child environment (nil: inherit).
	Env []string
	// DefaultSeverity applies to issues without one: error (default),
	// warning or note.
	DefaultSeverity string
}

// report is the part of golangci-lint's JSON output gantry reads.
type report struct {
	Issues []struct {
		FromLinter string `json:"FromLinter"`
		Text       string `json:"Text"`
		Severity   string `json:"Severity"`
		Pos        struct {
			Filename string `json:"Filename"`
			Line     int    `json:"Line"`
			Column   int    `json:"Column"`
		} `json:"Pos"`
	} `json:"Issues"`
}

// ToolError is golangci-lint failing to run (bad configuration, code that
// does not type-check), as opposed to reporting issues.
type ToolError struct {
	ExitCode int
	Stderr   string
}

func (e *ToolError) Error() string {
	return fmt.Sprintf("golangci-lint exited with status %d: %s", e.ExitCode, strings.TrimSpace(e.Stderr))
}

// Run runs the golangci-lint binary bin in dir and returns its findings.
func Run(ctx context.Context, bin, dir string, o Options) (*findings.Report, error) {
	args := []string{"run", "--output.json.path=stdout", "--output.text.path=stderr", "--show-stats=false", "--issues-exit-code=0", "--allow-parallel-runners"}
	if o.Config != "" {
		args = append(args, "--config="+filepath.Join(dir, o.Config))
	}
	if o.NewFromRev != "" {
		args = append(args, "--new-from-rev="+o.NewFromRev)
	}
	pkgs := o.Packages
	if len(pkgs) == 0 {
		pkgs = []string{"./..."}
	}
	args = append(args, pkgs...)
	cmd := proc.Command(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = o.Env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := proc.Run(ctx, cmd)
	if err != nil {
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			return nil, &ToolError{ExitCode: ee.ExitCode(), Stderr: lastLines(stderr.String(), 20)}
		}
		return nil, fmt.Errorf("run golangci-lint: %w", err)
	}
	def := findings.Error
	if o.DefaultSeverity != "" {
		if def, err = findings.ParseSeverity(o.DefaultSeverity); err != nil {
			return nil, fmt.Errorf("default severity: %w", err)
		}
	}
	r, err := Parse(stdout.Bytes(), def)
	if err != nil {
		return nil, fmt.Errorf("%w (stderr: %s)", err, lastLines(stderr.String(), 5))
	}
	return r, nil
}

// Parse reads golangci-lint's JSON output.
func Parse(data []byte, defaultSeverity findings.Severity) (*findings.Report, error) {
	// The JSON report is the first line that is a JSON object.
	var line []byte
	for l := range bytes.SplitSeq(data, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 && l[0] == '{' {
			line = l
			break
		}
	}
	if line == nil {
		return nil, errors.New("read golangci-lint output: no JSON report")
	}
	var rep report
	if err := json.Unmarshal(line, &rep); err != nil {
		return nil, fmt.Errorf("read golangci-lint output: %w", err)
	}
	r := &findings.Report{Tool: Tool.Name, Version: Tool.Version, InfoURI: "https://golangci-lint.run"}
	for _, is := range rep.Issues {
		sev := defaultSeverity
		if is.Severity != "" {
			if s, err := findings.ParseSeverity(is.Severity); err == nil {
				sev = s
			}
		}
		r.Add(findings.Finding{
			File: filepath.ToSlash(is.Pos.Filename), Line: is.Pos.Line, Column: is.Pos.Column,
			Rule: is.FromLinter, Severity: sev, Message: is.Text,
		})
	}
	r.Sort()
	return r, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
