package gotest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Event is one line of `go test -json` (cmd/test2json).
type Event struct {
	Time    time.Time `json:"Time"`
	Action  string    `json:"Action"`
	Package string    `json:"Package"`
	Test    string    `json:"Test"`
	Elapsed float64   `json:"Elapsed"`
	Output  string    `json:"Output"`
	// FailedBuild names the package whose build failed (build-fail events).
	FailedBuild string `json:"FailedBuild"`
	ImportPath  string `json:"ImportPath"`
}

// Status of a test or package.
type Status string

// Statuses as test2json reports them.
const (
	StatusPass Status = "pass"
	StatusFail Status = "fail"
	StatusSkip Status = "skip"
)

// Test is the result of one test (subtests are tests of their own, named
// "Parent/sub").
type Test struct {
	Name    string
	Status  Status
	Elapsed time.Duration
	// Output is what the test printed, including a race report.
	Output string
	// Race reports whether the race detector fired during the test.
	Race bool
}

// Package is the result of one package's test binary.
type Package struct {
	Name    string
	Status  Status
	Elapsed time.Duration
	Tests   []*Test
	// Output is package-level output (build errors, panics outside tests,
	// the final ok/FAIL line).
	Output string
	// Coverage is what `go test` printed ("coverage: 81.2% of statements"),
	// informational; gantry's own figure comes from the profile.
	Coverage string
	tests    map[string]*Test
}

// Report is the outcome of one or more `go test -json` runs.
type Report struct {
	Packages []*Package
	// Races are the data race reports seen, each from "WARNING: DATA RACE"
	// to the closing line of '='.
	Races []string
	// BuildErrors is output from failed builds (build-output events and
	// non-JSON lines on the stream).
	BuildErrors string
}

// Counts returns the number of tests, failed and skipped tests.
func (r *Report) Counts() (tests, failed, skipped int) {
	for _, p := range r.Packages {
		for _, t := range p.Tests {
			tests++
			switch t.Status {
			case StatusFail:
				failed++
			case StatusSkip:
				skipped++
			}
		}
	}
	return
}

// Failed returns the failed tests and the packages that failed without a
// failed test (build failure, panic in init, race outside a test).
func (r *Report) Failed() (tests []*Test, pkgs []*Package) {
	for _, p := range r.Packages {
		n := 0
		for _, t := range p.Tests {
			if t.Status == StatusFail {
				tests = append(tests, t)
				n++
			}
		}
		if p.Status == StatusFail && n == 0 {
			pkgs = append(pkgs, p)
		}
	}
	return
}

// Parser builds a Report from a test2json stream. Write lines to it as
// they arrive; a line that is not JSON (the go command's own messages) is
// kept as build output.
type Parser struct {
	r    Report
	pkgs map[string]*Package
}

// NewParser returns an empty parser.
func NewParser() *Parser { return &Parser{pkgs: map[string]*Package{}} }

// ParseStream reads a whole test2json stream.
func ParseStream(rd io.Reader) (*Report, error) {
	p := NewParser()
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		p.Line(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read go test output: %w", err)
	}
	return p.Report(), nil
}

// Line consumes one line of the stream.
func (p *Parser) Line(line []byte) {
	if len(line) == 0 {
		return
	}
	var ev Event
	if line[0] != '{' || json.Unmarshal(line, &ev) != nil {
		p.r.BuildErrors += string(line) + "\n"
		return
	}
	p.Event(ev)
}

// Event consumes one decoded event.
func (p *Parser) Event(ev Event) {
	switch ev.Action {
	case "build-output":
		p.r.BuildErrors += ev.Output
		return
	case "build-fail":
		return
	}
	if ev.Package == "" {
		return
	}
	pkg := p.pkgs[ev.Package]
	if pkg == nil {
		pkg = &Package{Name: ev.Package, tests: map[string]*Test{}}
		p.pkgs[ev.Package] = pkg
		p.r.Packages = append(p.r.Packages, pkg)
	}
	if ev.Test == "" {
		switch ev.Action {
		case "output":
			pkg.Output += ev.Output
			if c, ok := strings.CutPrefix(strings.TrimSpace(ev.Output), "coverage: "); ok {
				pkg.Coverage = c
			}
		case "pass", "fail", "skip":
			pkg.Status = Status(ev.Action)
			pkg.Elapsed = seconds(ev.Elapsed)
		}
		return
	}
	t := pkg.tests[ev.Test]
	if t == nil {
		t = &Test{Name: ev.Test}
		pkg.tests[ev.Test] = t
		pkg.Tests = append(pkg.Tests, t)
	}
	switch ev.Action {
	case "output":
		t.Output += ev.Output
		if strings.Contains(ev.Output, "WARNING: DATA RACE") || strings.Contains(ev.Output, "race detected during execution of test") {
			t.Race = true
		}
	case "pass", "fail", "skip":
		t.Status = Status(ev.Action)
		t.Elapsed = seconds(ev.Elapsed)
	}
}

// Report returns the report so far, with race reports extracted and tests
// that never finished (the binary died) marked failed.
func (p *Parser) Report() *Report {
	r := p.r
	r.Races = nil
	for _, pkg := range r.Packages {
		for _, t := range pkg.Tests {
			if t.Status == "" {
				t.Status = StatusFail
			}
			r.Races = append(r.Races, raceReports(t.Output)...)
		}
		r.Races = append(r.Races, raceReports(pkg.Output)...)
		if pkg.Status == "" {
			pkg.Status = StatusFail
		}
	}
	return &r
}

const raceSep = "=================="

// raceReports extracts the blocks between a "WARNING: DATA RACE" line and
// the next line of '=' characters.
func raceReports(out string) []string {
	var reports []string
	lines := strings.Split(out, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.Contains(lines[i], "WARNING: DATA RACE") {
			continue
		}
		var b strings.Builder
		for ; i < len(lines); i++ {
			if strings.HasPrefix(strings.TrimSpace(lines[i]), raceSep) {
				break
			}
			b.WriteString(lines[i])
			b.WriteByte('\n')
		}
		reports = append(reports, b.String())
	}
	return reports
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
