package scaffold

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/gitutil"
	"github.com/gantry-ci/gantry/internal/gotest"
	"github.com/gantry-ci/gantry/internal/inventory"
	"github.com/gantry-ci/gantry/internal/license"
	"github.com/gantry-ci/gantry/internal/policy"
	"github.com/gantry-ci/gantry/internal/sast"
	"github.com/gantry-ci/gantry/internal/vuln"
)

// Measurement is what init saw when it ran the repository's checks once,
// so the pipeline it writes passes on the code as it is today and says
// what it relaxed. A nil *Measurement means nothing was run (--no-measure).
type Measurement struct {
	// Coverage is the total statement coverage of the module's tests,
	// computed as the go-test step computes it; nil when it could not be
	// measured (see CoverageNote).
	Coverage     *float64
	CoverageNote string
	// FailedTests are the tests (and packages that did not build) that
	// failed when init ran them.
	FailedTests []string
	// Uncounted are the packages whose tests failed before they wrote
	// coverage (a panic, a build failure): Coverage leaves them out.
	Uncounted []string
	// Gosec counts the gosec findings at or above the sast step's default
	// fail_on (warning) that no gantry:ignore covers, by rule.
	Gosec map[string]int
	// Vulns are the known vulnerabilities of the module's dependencies
	// that fail the generated vuln-scan gate.
	Vulns []vuln.Finding
	// Licenses are the dependencies the default licence policy refuses.
	Licenses []license.Violation
	// Notes say what could not be measured, and why.
	Notes []string
}

// MeasureOptions configure Measure.
type MeasureOptions struct {
	// Env is the environment of the commands run (go test); nil inherits.
	Env []string
	// VulnDB is the OSV database to read ("" skips the vulnerability scan,
	// with a note).
	VulnDB string
	// Race runs the tests with the race detector, as the generated unit
	// step does.
	Race bool
	// Now is the time exceptions are judged at (default time.Now).
	Now time.Time
	// Log receives one line per finished test package.
	Log io.Writer
}

// Head returns the commit the repository's HEAD names, "" when dir is
// not a git repository or has no commit yet.
func Head(ctx context.Context, dir string) string {
	sha, err := gitutil.Repo{Dir: dir}.Resolve(ctx, "HEAD")
	if err != nil {
		return ""
	}
	return sha
}

// Measure runs, once, what the generated pipeline would judge in the Go
// module at dir: its tests with coverage, gosec, the vulnerability scan of
// its dependencies and the licence policy. A check that cannot run is a
// note, not an error; the error is for a cancelled context.
func Measure(ctx context.Context, dir string, r *Repo, o MeasureOptions) (*Measurement, error) {
	m := &Measurement{Gosec: map[string]int{}}
	if r.Module == nil {
		return m, nil
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if r.Module.HasTests {
		m.tests(ctx, dir, o)
	}
	m.gosec(ctx, dir)
	m.vulns(ctx, dir, o)
	m.licenses(ctx, dir, o)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("measure the repository: %w", err)
	}
	return m, nil
}

func (m *Measurement) note(format string, args ...any) {
	m.Notes = append(m.Notes, clean(fmt.Sprintf(format, args...)))
}

// tests runs the module's untagged tests as the unit step does and
// computes the coverage the build-test gate reads.
func (m *Measurement) tests(ctx context.Context, dir string, o MeasureOptions) {
	work, err := os.MkdirTemp("", "gantry-init-*")
	if err != nil {
		m.CoverageNote = fmt.Sprintf("no temporary directory: %v", err)
		return
	}
	defer os.RemoveAll(work)
	profile := filepath.Join(work, "coverage.out")
	rep, err := gotest.Run(ctx, gotest.Options{Dir: dir, Race: o.Race, CoverProfile: profile, Env: o.Env, Log: o.Log})
	if err != nil {
		m.CoverageNote = fmt.Sprintf("go test did not run: %v", firstLine(err.Error()))
		return
	}
	for _, p := range rep.Packages {
		n := 0
		for _, t := range p.Tests {
			if t.Status == gotest.StatusFail {
				m.FailedTests = append(m.FailedTests, p.Name+"."+t.Name)
				n++
			}
		}
		if p.Status == gotest.StatusFail && n == 0 {
			m.FailedTests = append(m.FailedTests, p.Name)
		}
	}
	prof := &gotest.Profile{}
	if _, err := os.Stat(profile); err == nil {
		if prof, err = gotest.ParseProfileFile(profile); err != nil {
			m.CoverageNote = fmt.Sprintf("coverage profile unreadable: %v", err)
			return
		}
	}
	var src gotest.SourceFunc
	if mp, err := gotest.ModulePath(dir); err == nil {
		src = gotest.ModuleSource(dir, mp)
	}
	cov, err := prof.Coverage(src)
	if err != nil {
		m.CoverageNote = fmt.Sprintf("coverage not computed: %v", err)
		return
	}
	pct := cov.Total.Percent()
	m.Coverage = &pct
	for _, p := range rep.Packages {
		if _, ok := cov.Packages[p.Name]; p.Status == gotest.StatusFail && !ok {
			m.Uncounted = append(m.Uncounted, p.Name)
		}
	}
}

// gosec runs the sast step's gosec over the module, gantry:ignore
// comments applied.
func (m *Measurement) gosec(ctx context.Context, dir string) {
	rep, err := sast.Gosec(ctx, dir, sast.Options{})
	if err != nil {
		m.note("sast: gosec did not run (%v): the sast step is generated with every rule", firstLine(err.Error()))
		return
	}
	sast.NewSuppressor(dir).Apply(rep)
	for _, f := range rep.Findings {
		if f.Severity < findings.Warning {
			continue
		}
		if f.Rule == "gosec-load" {
			m.note("sast: gosec could not load %s (%s): the sast step will report it", f.File, firstLine(f.Message))
			continue
		}
		m.Gosec[f.Rule]++
	}
}

// gateAtInit is the vuln-scan gate init generates.
var gateAtInit = vuln.Gate{FailOn: []vuln.Level{vuln.High, vuln.Critical}, NoFixOlderThan: 30 * 24 * time.Hour}

func (m *Measurement) vulns(ctx context.Context, dir string, o MeasureOptions) {
	if o.VulnDB == "" {
		m.note("vulnerabilities were not measured: no vulnerability database yet (`gantry vulndb update`, or GANTRY_VULN_DB)")
		return
	}
	db, err := vuln.Open(o.VulnDB)
	if err != nil {
		m.note("vulnerabilities were not measured: %v", firstLine(err.Error()))
		return
	}
	inv, err := inventory.Load(ctx, dir, inventory.Options{})
	if err != nil {
		m.note("vulnerabilities were not measured: %v", firstLine(err.Error()))
		return
	}
	g := gateAtInit
	ex, err := policy.LoadExceptions(filepath.Join(dir, policy.DefaultExceptionsFile))
	if err != nil {
		m.note("vulnerabilities were not measured: %v", firstLine(err.Error()))
		return
	}
	g.Exceptions = ex
	v := g.Apply(vuln.Scan(inv, db), o.Now)
	seen := map[string]bool{}
	for _, f := range v.Findings {
		if f.Fails && !seen[f.ID+" "+f.Package] {
			seen[f.ID+" "+f.Package] = true
			m.Vulns = append(m.Vulns, f)
		}
	}
	sort.Slice(m.Vulns, func(i, j int) bool {
		if m.Vulns[i].Package != m.Vulns[j].Package {
			return m.Vulns[i].Package < m.Vulns[j].Package
		}
		return m.Vulns[i].ID < m.Vulns[j].ID
	})
}

func (m *Measurement) licenses(ctx context.Context, dir string, o MeasureOptions) {
	p, err := license.LoadPolicy(dir, license.PolicyFile)
	if err != nil {
		m.note("licences were not measured: %v", firstLine(err.Error()))
		return
	}
	res, err := license.Check(ctx, dir, o.Env, p)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			m.note("licences were not measured: %v", firstLine(err.Error()))
		}
		return
	}
	m.Licenses = res.Violations
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
