// Package gotest is the `go-test` step kind: `go test -json` with the race
// detector and coverage, per-test results, JUnit XML and an HTML coverage
// report as artifacts, and coverage computed by gantry as outputs.
package gotest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gantry-ci/gantry/internal/gotest"
	"github.com/gantry-ci/gantry/internal/step"
)

// Kind is `uses: go-test`.
var Kind = step.Kind{
	Name:    "go-test",
	Gate:    "tests",
	Summary: "go test with -race and coverage; JUnit XML, HTML coverage, coverage outputs",
	Outputs: []string{"coverage", "coverage_by_package", "tests", "failed", "skipped", "packages", "races", "profile"},
	New:     New,
}

// Config is the `with:` block.
type Config struct {
	// Packages to test (default ./...).
	Packages []string `yaml:"packages"`
	// Race enables the race detector.
	Race bool `yaml:"race"`
	// Tags are build tags, e.g. [integration].
	Tags []string `yaml:"tags"`
	// Coverage writes and evaluates a coverage profile (default true).
	Coverage *bool `yaml:"coverage"`
	// CoverPkg is -coverpkg (e.g. ./...).
	CoverPkg string `yaml:"coverpkg"`
	// Timeout is -timeout (a Go duration).
	Timeout string `yaml:"timeout"`
	// Dir is the module directory within the repository (default .).
	Dir string `yaml:"dir"`
	// Args are further go test arguments.
	Args []string `yaml:"args"`
	// MinCoverage fails the step below this percentage (0: no check; the
	// pipeline's gate usually checks outputs.coverage instead).
	MinCoverage float64 `yaml:"min_coverage"`
	// Merge names earlier go-test steps of the same stage whose coverage
	// profiles are merged into this step's figure.
	Merge []string `yaml:"merge"`
}

type testStep struct{ cfg Config }

// New decodes the inputs.
func New(in step.Inputs) (step.Step, error) {
	var c Config
	if err := in.Decode(&c); err != nil {
		return nil, err
	}
	if c.MinCoverage < 0 || c.MinCoverage > 100 {
		return nil, in.Errorf("min_coverage", "min_coverage must be between 0 and 100, not %v", c.MinCoverage)
	}
	if filepath.IsAbs(c.Dir) || strings.HasPrefix(filepath.Clean(c.Dir), "..") {
		return nil, in.Errorf("dir", "dir must be a path inside the repository, not %q", c.Dir)
	}
	for i, a := range c.Args {
		if strings.HasPrefix(a, "-json") || strings.HasPrefix(a, "-coverprofile") {
			return nil, in.Errorf(fmt.Sprintf("args.%d", i), "%s is set by gantry; remove it from args", a)
		}
	}
	return &testStep{cfg: c}, nil
}

func (s *testStep) coverage() bool { return s.cfg.Coverage == nil || *s.cfg.Coverage }

// Run runs the tests.
func (s *testStep) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	dir := filepath.Join(env.Dir, s.cfg.Dir)
	work := filepath.Join(env.TempDir, "go-test", env.Step)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("create work dir: %w", err)
	}
	opts := gotest.Options{
		Dir: dir, Packages: s.cfg.Packages, Race: s.cfg.Race, Tags: s.cfg.Tags,
		CoverPkg: s.cfg.CoverPkg, Timeout: s.cfg.Timeout, Args: s.cfg.Args,
		Env: env.Vars, Log: env.Stdout,
	}
	profile := filepath.Join(work, "coverage.out")
	if s.coverage() {
		opts.CoverProfile = profile
	}
	rep, err := gotest.Run(ctx, opts)
	if err != nil {
		return nil, err
	}
	tests, failed, skipped := rep.Counts()
	out := map[string]any{
		"tests": tests, "failed": failed, "skipped": skipped,
		"packages": len(rep.Packages), "races": len(rep.Races),
	}
	var junit bytes.Buffer
	if err := gotest.WriteJUnit(&junit, rep); err != nil {
		return nil, err
	}
	if err := env.Artifacts.PutBytes(ctx, "junit.xml", junit.Bytes(), "application/xml"); err != nil {
		return nil, fmt.Errorf("store JUnit XML: %w", err)
	}
	summary := fmt.Sprintf("%d tests, %d failed, %d skipped", tests, failed, skipped)
	var covPct float64
	if s.coverage() {
		cov, err := s.evalCoverage(ctx, env, dir, profile, work, out)
		if err != nil {
			return nil, err
		}
		covPct = cov
		summary += fmt.Sprintf(", coverage %.1f%%", cov)
	}
	res := &step.Result{Outputs: out, Summary: summary}
	if err := report(env, rep); err != nil {
		return res, err
	}
	if s.cfg.MinCoverage > 0 && s.coverage() && covPct < s.cfg.MinCoverage {
		return res, fmt.Errorf("coverage %.1f%% is below min_coverage %v%%", covPct, s.cfg.MinCoverage)
	}
	return res, nil
}

func (s *testStep) evalCoverage(ctx context.Context, env *step.Env, dir, profile, work string, out map[string]any) (float64, error) {
	prof := &gotest.Profile{}
	if _, err := os.Stat(profile); err == nil {
		p, err := gotest.ParseProfileFile(profile)
		if err != nil {
			return 0, err
		}
		prof = p
	}
	for _, other := range s.cfg.Merge {
		var o map[string]any
		ok := false
		if env.Outputs != nil {
			o, ok = env.Outputs(env.Stage, other)
		}
		if !ok {
			return 0, fmt.Errorf("merge coverage: step %q has not run in stage %q", other, env.Stage)
		}
		path, _ := o["profile"].(string)
		if path == "" {
			return 0, fmt.Errorf("merge coverage: step %q has no coverage profile", other)
		}
		p, err := gotest.ParseProfileFile(path)
		if err != nil {
			return 0, fmt.Errorf("merge coverage of step %q: %w", other, err)
		}
		if err := prof.Merge(p); err != nil {
			return 0, err
		}
	}
	merged := filepath.Join(work, "coverage.merged.out")
	var buf bytes.Buffer
	if err := prof.Write(&buf); err != nil {
		return 0, err
	}
	if err := os.WriteFile(merged, buf.Bytes(), 0o644); err != nil {
		return 0, fmt.Errorf("write merged profile: %w", err)
	}
	kept, err := keepProfile(env.StateDir, profile)
	if err != nil {
		return 0, err
	}
	out["profile"] = kept
	var src gotest.SourceFunc
	if mp, err := gotest.ModulePath(dir); err == nil {
		src = gotest.ModuleSource(dir, mp)
	}
	cov, err := prof.Coverage(src)
	if err != nil {
		return 0, err
	}
	byPkg := map[string]float64{}
	for p, st := range cov.Packages {
		byPkg[p] = st.Percent()
	}
	out["coverage"] = cov.Total.Percent()
	out["coverage_by_package"] = byPkg
	if err := env.Artifacts.PutBytes(ctx, "coverage.out", buf.Bytes(), "text/plain"); err != nil {
		return 0, fmt.Errorf("store coverage profile: %w", err)
	}
	html := filepath.Join(work, "coverage.html")
	if err := gotest.HTML(ctx, dir, merged, html, env.Vars); err != nil {
		fmt.Fprintf(env.Stdout, "warning: no HTML coverage report: %v\n", err)
	} else if err := env.Artifacts.Put(ctx, "coverage.html", html, "text/html"); err != nil {
		return 0, fmt.Errorf("store coverage report: %w", err)
	}
	pkgs := make([]string, 0, len(byPkg))
	for p := range byPkg {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	for _, p := range pkgs {
		fmt.Fprintf(env.Stdout, "coverage %6.1f%%  %s\n", byPkg[p], p)
	}
	fmt.Fprintf(env.Stdout, "coverage %6.1f%%  total (%d of %d statements)\n", cov.Total.Percent(), cov.Total.Covered, cov.Total.Total)
	return cov.Total.Percent(), nil
}

// keepProfile copies a step's own coverage profile to a content-addressed
// file under the state dir, so that the `profile` output stays valid when a
// later run reuses this step from the cache and another step merges it.
func keepProfile(stateDir, profile string) (string, error) {
	b, err := os.ReadFile(profile)
	if os.IsNotExist(err) {
		b, err = nil, nil
	}
	if err != nil {
		return "", fmt.Errorf("keep coverage profile: %w", err)
	}
	sum := sha256.Sum256(b)
	dir := filepath.Join(stateDir, "go-test", "profiles")
	path := filepath.Join(dir, hex.EncodeToString(sum[:])+".out")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("keep coverage profile: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".profile-*")
	if err != nil {
		return "", fmt.Errorf("keep coverage profile: %w", err)
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("keep coverage profile: %v", errors.Join(werr, cerr))
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("keep coverage profile: %w", err)
	}
	return path, nil
}

// CacheKey implements step.Cacheable: the result depends on the module's
// files, the Go toolchain and, for merged coverage, the merged profiles
// (whose paths name their content). Services are part of the engine's key.
func (s *testStep) CacheKey(ctx context.Context, env *step.Env) (step.CacheKey, error) {
	cmd := exec.CommandContext(ctx, "go", "env", "GOVERSION")
	cmd.Dir = env.Dir
	cmd.Env = env.Vars
	v, err := cmd.Output()
	if err != nil {
		return step.CacheKey{}, fmt.Errorf("go env GOVERSION: %w", err)
	}
	key := step.CacheKey{Extra: map[string]string{"go": strings.TrimSpace(string(v))}}
	if d := filepath.ToSlash(filepath.Clean(s.cfg.Dir)); d != "." {
		key.Files = []string{d + "/**"}
	}
	for _, other := range s.cfg.Merge {
		var o map[string]any
		if env.Outputs != nil {
			o, _ = env.Outputs(env.Stage, other)
		}
		p, _ := o["profile"].(string)
		if p == "" {
			return step.CacheKey{}, step.ErrNotCacheable
		}
		key.Extra["merge/"+other] = filepath.Base(p)
	}
	return key, nil
}

var _ step.Cacheable = (*testStep)(nil)

// report prints failed tests with their own output and every race report,
// and returns an error when anything failed.
func report(env *step.Env, rep *gotest.Report) error {
	tests, pkgs := rep.Failed()
	for _, t := range tests {
		fmt.Fprintf(env.Stdout, "\n--- FAIL: %s\n%s", t.Name, t.Output)
	}
	for _, p := range pkgs {
		fmt.Fprintf(env.Stdout, "\n--- FAIL: package %s\n%s", p.Name, p.Output)
	}
	if rep.BuildErrors != "" && (len(pkgs) > 0 || len(tests) > 0) {
		fmt.Fprintf(env.Stdout, "\n%s", rep.BuildErrors)
	}
	for i, r := range rep.Races {
		fmt.Fprintf(env.Stdout, "\n=== data race %d of %d\n%s", i+1, len(rep.Races), r)
	}
	if len(tests) == 0 && len(pkgs) == 0 {
		return nil
	}
	var names []string
	for _, t := range tests {
		n := t.Name
		if t.Race {
			n += " (data race)"
		}
		names = append(names, n)
	}
	for _, p := range pkgs {
		names = append(names, "package "+p.Name)
	}
	msg := fmt.Sprintf("%d failed: %s", len(names), strings.Join(names, ", "))
	if len(rep.Races) > 0 {
		msg += fmt.Sprintf("; %d data race(s) reported", len(rep.Races))
	}
	return fmt.Errorf("go test: %s", msg)
}

// Paths names the module directory.
func (s *testStep) Paths() []step.PathRef {
	return []step.PathRef{{Field: "dir", Value: s.cfg.Dir, Type: step.PathDir}}
}

var _ step.PathInputs = (*testStep)(nil)
