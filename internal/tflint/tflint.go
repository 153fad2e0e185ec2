// Package tflint runs a pinned tflint (installed on first use into gantry's
// tool cache; its bundled terraform ruleset needs no plugin download) and
// turns its JSON report into findings.
package tflint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/toolcache"
)

// Tool is the pinned tflint.
var Tool = toolcache.Tool{
	Name:    "tflint",
	Package: "github.com/terraform-linters/tflint",
	Version: "v0.64.0",
}

// Options configure a run.
type Options struct {
	// Config is a .tflint.hcl file relative to the directory (default:
	// tflint's own lookup).
	Config string
	// Env is the child environment (nil: inherit).
	Env []string
}

type rng struct {
	Filename string `json:"filename"`
	Start    struct {
		Line   int `json:"line"`
		Column int `json:"column"`
	} `json:"start"`
}

type report struct {
	Issues []struct {
		Rule struct {
			Name     string `json:"name"`
			Severity string `json:"severity"`
		} `json:"rule"`
		Message string `json:"message"`
		Range   rng    `json:"range"`
	} `json:"issues"`
	Errors []struct {
		Summary  string `json:"summary"`
		Message  string `json:"message"`
		Severity string `json:"severity"`
		Range    *rng   `json:"range"`
	} `json:"errors"`
}

var (
	ansi   = regexp.MustCompile("\x1b\\[[0-9;]*m")
	hclPos = regexp.MustCompile(`([\w./-]+\.tf(?:vars)?):(\d+),(\d+)`)
)

// Run runs the tflint binary bin recursively in dir.
func Run(ctx context.Context, bin, dir string, o Options) (*findings.Report, error) {
	args := []string{"--format=json", "--force", "--recursive", "--no-color"}
	if o.Config != "" {
		abs, err := filepath.Abs(filepath.Join(dir, o.Config))
		if err != nil {
			return nil, err
		}
		args = append(args, "--config="+abs)
	}
	cmd := proc.Command(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = o.Env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := proc.Run(ctx, cmd)
	var ee *exec.ExitError
	if runErr != nil && !errors.As(runErr, &ee) {
		return nil, fmt.Errorf("run tflint: %w", runErr)
	}
	r, err := Parse(stdout.Bytes())
	if err != nil {
		if runErr != nil {
			return nil, fmt.Errorf("tflint exited with status %d: %s", ee.ExitCode(), strings.TrimSpace(stderr.String()+stdout.String()))
		}
		return nil, err
	}
	return r, nil
}

// Parse reads tflint's JSON output. Issues keep tflint's severity
// (error, warning, notice→note); errors (such as HCL syntax errors)
// are error findings.
func Parse(data []byte) (*findings.Report, error) {
	var rep report
	if err := json.Unmarshal(bytes.TrimSpace(data), &rep); err != nil {
		return nil, fmt.Errorf("read tflint output: %w", err)
	}
	r := &findings.Report{Tool: Tool.Name, Version: Tool.Version, InfoURI: "https://github.com/terraform-linters/tflint"}
	for _, is := range rep.Issues {
		sev, err := findings.ParseSeverity(is.Rule.Severity)
		if err != nil {
			sev = findings.Note // "notice"
		}
		r.Add(findings.Finding{File: filepath.ToSlash(is.Range.Filename), Line: is.Range.Start.Line, Column: is.Range.Start.Column,
			Rule: is.Rule.Name, Severity: sev, Message: is.Message})
	}
	for _, e := range rep.Errors {
		msg := ansi.ReplaceAllString(e.Message, "")
		// Keep the first paragraph; the rest repeats it with source lines.
		if i := strings.Index(msg, ":\n\n"); i > 0 {
			msg = msg[:i]
		}
		msg = strings.Join(strings.Fields(msg), " ")
		if e.Summary != "" {
			msg = e.Summary + ": " + msg
		}
		f := findings.Finding{Rule: "tflint-error", Severity: findings.Error, Message: msg}
		if e.Range != nil {
			f.File, f.Line, f.Column = filepath.ToSlash(e.Range.Filename), e.Range.Start.Line, e.Range.Start.Column
		} else if m := hclPos.FindStringSubmatch(msg); m != nil {
			f.File = m[1]
			f.Line, _ = strconv.Atoi(m[2])
			f.Column, _ = strconv.Atoi(m[3])
		}
		r.Add(f)
	}
	r.Sort()
	return r, nil
}
