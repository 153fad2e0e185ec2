// Package newman is the newman step kind: it runs a Postman collection of
// the repository with the real newman (npm, pinned, installed into the tool
// cache on first use) against a URL, keeps newman's JUnit XML and a
// per-request results file as artifacts, and fails on any failed assertion
// or request.
package newman

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/toolcache"
)

// Kind is `uses: newman`.
var Kind = step.Kind{
	Name:    "newman",
	Summary: "Run a Postman collection with the real newman; JUnit XML and per-request results",
	Outputs: []string{"requests", "failed_requests", "assertions", "failed_assertions", "failures"},
	New:     New,
}

// Config is the `with:` block.
type Config struct {
	// Collection is the Postman collection (v2.x JSON), relative to the
	// repository.
	Collection string `yaml:"collection"`
	// Environment is an optional Postman environment file.
	Environment string `yaml:"environment"`
	// BaseURL is passed to the collection as the variable BaseURLVar.
	BaseURL    string `yaml:"base_url"`
	BaseURLVar string `yaml:"base_url_var"`
	// Vars are further variables, set in the environment scope (they win
	// over the collection's own variables).
	Vars map[string]string `yaml:"vars"`
	// Folder runs only the collection's folder (or request) of this name.
	Folder string `yaml:"folder"`
	// Iterations runs the collection this many times (default 1).
	Iterations int `yaml:"iterations"`
	// TimeoutRequest bounds each request ("10s"); default none.
	TimeoutRequest string `yaml:"timeout_request"`
	// Bail stops the run at the first failure.
	Bail bool `yaml:"bail"`
}

// DefaultBaseURLVar is the collection variable base_url sets.
const DefaultBaseURLVar = "baseUrl"

type newmanStep struct {
	cfg     Config
	timeout time.Duration
}

var (
	_ step.Step       = (*newmanStep)(nil)
	_ step.PathInputs = (*newmanStep)(nil)
)

// New decodes the inputs.
func New(in step.Inputs) (step.Step, error) {
	var c Config
	if err := in.Decode(&c); err != nil {
		return nil, err
	}
	if c.Collection == "" {
		return nil, in.Errorf("collection", "newman needs a collection (a Postman collection JSON file of the repository)")
	}
	if c.BaseURLVar == "" {
		c.BaseURLVar = DefaultBaseURLVar
	}
	if c.Iterations < 0 {
		return nil, in.Errorf("iterations", "iterations must be 1 or more, not %d", c.Iterations)
	}
	s := &newmanStep{cfg: c}
	if c.TimeoutRequest != "" && !hasExpr(c.TimeoutRequest) {
		d, err := time.ParseDuration(c.TimeoutRequest)
		if err != nil || d <= 0 {
			return nil, in.Errorf("timeout_request", "timeout_request must be a positive duration such as 10s, not %q", c.TimeoutRequest)
		}
		s.timeout = d
	}
	if c.BaseURL != "" && !hasExpr(c.BaseURL) {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, in.Errorf("base_url", "base_url must be an absolute http or https URL, not %q", c.BaseURL)
		}
	}
	for k := range c.Vars {
		if k == "" || strings.ContainsAny(k, "={}") {
			return nil, in.Errorf("vars", "variable name %q: want a name without '=', '{' or '}'", k)
		}
	}
	return s, nil
}

func hasExpr(s string) bool { return strings.Contains(s, "${") }

// Paths names the collection and the environment file.
func (s *newmanStep) Paths() []step.PathRef {
	refs := []step.PathRef{{Field: "collection", Value: s.cfg.Collection, Type: step.PathFile}}
	if s.cfg.Environment != "" {
		refs = append(refs, step.PathRef{Field: "environment", Value: s.cfg.Environment, Type: step.PathFile})
	}
	return refs
}

// CollectionError says the collection (or environment) file is not one
// newman can run; it names the file and, for JSON syntax errors, the line
// and column.
type CollectionError struct {
	File string
	Line int // 0 when not known
	Col  int
	Msg  string
}

func (e *CollectionError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// FailedError is returned when the run had failed assertions, failed
// requests or script errors. It names requests and assertions only: never
// response bodies or assertion messages, which may quote secrets.
type FailedError struct {
	Failures []Failure
}

// Failure is one failure of a newman run.
type Failure struct {
	// Request is the name of the request (the collection item).
	Request string `json:"request"`
	// Assertion is the failed test's name; "" for a request or script error.
	Assertion string `json:"assertion,omitempty"`
	// At says where it failed: "assertion", "request", "test-script", ...
	At string `json:"at"`
	// Code is a request error's code (ECONNREFUSED, ETIMEDOUT, ...), or the
	// error's type for a script error.
	Code string `json:"code,omitempty"`
}

func (f Failure) String() string {
	switch {
	case f.Assertion != "":
		return fmt.Sprintf("%q: assertion %q failed", f.Request, f.Assertion)
	case f.At == "request":
		return fmt.Sprintf("%q: request failed (%s)", f.Request, f.Code)
	default:
		return fmt.Sprintf("%q: %s error (%s)", f.Request, f.At, f.Code)
	}
}

func (e *FailedError) Error() string {
	parts := make([]string, 0, len(e.Failures))
	for _, f := range e.Failures {
		parts = append(parts, f.String())
	}
	return fmt.Sprintf("newman: %d failure(s): %s", len(e.Failures), strings.Join(parts, "; "))
}

// Run checks the collection, installs newman if needed and runs it.
func (s *newmanStep) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	dir, err := filepath.Abs(env.Dir)
	if err != nil {
		return nil, fmt.Errorf("newman: %w", err)
	}
	collection := filepath.Join(dir, s.cfg.Collection)
	if err := checkJSONFile(collection, s.cfg.Collection, true); err != nil {
		return nil, err
	}
	var envVals []envValue
	if s.cfg.Environment != "" {
		vals, err := readEnvironment(filepath.Join(dir, s.cfg.Environment), s.cfg.Environment)
		if err != nil {
			return nil, err
		}
		envVals = vals
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("newman needs Node.js: the node command is not on PATH: %w", err)
	}
	script, err := toolcache.New(toolcache.Dir(env.StateDir)).EnsureNewman(ctx, env.Stdout)
	if err != nil {
		return nil, fmt.Errorf("newman: %w", err)
	}
	work, err := os.MkdirTemp(env.TempDir, "newman-*")
	if err != nil {
		return nil, fmt.Errorf("newman: create work dir: %w", err)
	}
	defer os.RemoveAll(work)

	// Variables go through an environment file (0600, removed after the
	// run), not the command line, where other users could read them.
	if s.cfg.BaseURL != "" {
		envVals = setValue(envVals, s.cfg.BaseURLVar, s.cfg.BaseURL)
	}
	for _, k := range sortedKeys(s.cfg.Vars) {
		envVals = setValue(envVals, k, s.cfg.Vars[k])
	}
	envFile := filepath.Join(work, "environment.json")
	if err := writeEnvironment(envFile, envVals); err != nil {
		return nil, err
	}
	jsonReport := filepath.Join(work, "report.json")
	junit := filepath.Join(work, "junit.xml")
	args := []string{script, "run", collection,
		"--environment", envFile,
		"--reporters", "cli,junit,json",
		"--reporter-json-export", jsonReport,
		"--reporter-junit-export", junit,
		"--color", "off", "--disable-unicode",
		"--working-dir", dir, "--no-insecure-file-read",
	}
	if s.cfg.Folder != "" {
		args = append(args, "--folder", s.cfg.Folder)
	}
	if s.cfg.Iterations > 0 {
		args = append(args, "--iteration-count", strconv.Itoa(s.cfg.Iterations))
	}
	if s.timeout > 0 {
		args = append(args, "--timeout-request", strconv.FormatInt(s.timeout.Milliseconds(), 10))
	}
	if s.cfg.Bail {
		args = append(args, "--bail")
	}
	cmd := proc.Command(ctx, node, args...)
	cmd.Dir = dir
	cmd.Env = env.Vars
	var stderr bytes.Buffer
	cmd.Stdout = env.Stdout
	cmd.Stderr = io.MultiWriter(env.Stdout, &stderr)
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("newman run %s: %w", s.cfg.Collection, ctx.Err())
	}
	data, err := os.ReadFile(jsonReport)
	if err != nil {
		if runErr != nil {
			return nil, fmt.Errorf("newman run %s: %w: %s", s.cfg.Collection, runErr, lastLines(stderr.String(), 4))
		}
		return nil, fmt.Errorf("newman run %s wrote no JSON report: %w", s.cfg.Collection, err)
	}
	rep, err := ParseReport(data)
	if err != nil {
		return nil, fmt.Errorf("newman run %s: %w", s.cfg.Collection, err)
	}
	if raw, err := os.ReadFile(junit); err == nil {
		clean, err := sanitizeJUnit(raw, rep)
		if err != nil {
			return nil, err
		}
		if err := env.Artifacts.PutBytes(ctx, "junit.xml", clean, "application/xml"); err != nil {
			return nil, fmt.Errorf("store JUnit XML: %w", err)
		}
	}
	results, err := json.MarshalIndent(rep.Results, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode newman results: %w", err)
	}
	if err := env.Artifacts.PutBytes(ctx, "newman-results.json", results, "application/json"); err != nil {
		return nil, fmt.Errorf("store newman results: %w", err)
	}
	res := &step.Result{
		Outputs: map[string]any{
			"requests": rep.Requests, "failed_requests": rep.FailedRequests,
			"assertions": rep.Assertions, "failed_assertions": rep.FailedAssertions,
			"failures": len(rep.Failures),
		},
		Summary: fmt.Sprintf("newman: %d requests, %d assertions, %d failures", rep.Requests, rep.Assertions, len(rep.Failures)),
	}
	if len(rep.Failures) > 0 {
		return res, &FailedError{Failures: rep.Failures}
	}
	if runErr != nil {
		return res, fmt.Errorf("newman run %s: %w: %s", s.cfg.Collection, runErr, lastLines(stderr.String(), 4))
	}
	return res, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// checkJSONFile reads a collection (collection true) or environment file
// and checks it is JSON of the right shape, so a broken file gets an error
// naming it and the position instead of newman's stack.
func checkJSONFile(path, name string, collection bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return &CollectionError{File: name, Msg: fmt.Sprintf("read: %v", err)}
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return jsonError(name, data, err)
	}
	if !collection {
		return nil
	}
	var info struct {
		Name string `json:"name"`
	}
	if raw, ok := doc["info"]; !ok || json.Unmarshal(raw, &info) != nil {
		return &CollectionError{File: name, Msg: "not a Postman collection: no info object"}
	}
	var items []json.RawMessage
	if raw, ok := doc["item"]; !ok || json.Unmarshal(raw, &items) != nil {
		return &CollectionError{File: name, Msg: "not a Postman collection: no item list"}
	}
	return nil
}

func jsonError(name string, data []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	off := int64(-1)
	switch {
	case errors.As(err, &se):
		off = se.Offset - 1 // the offset is just after the offending byte
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 {
		return &CollectionError{File: name, Msg: "not valid JSON: " + err.Error()}
	}
	line, col := position(data, off)
	return &CollectionError{File: name, Line: line, Col: col, Msg: "not valid JSON: " + err.Error()}
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line, col := 1, 1
	for _, b := range data[:off] {
		if b == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}
