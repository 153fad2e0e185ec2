// Package vulnscan is the vuln-scan step kind (the seed's Trivy step): it
// reads the image built earlier in the run by digest, matches its Go
// binaries and OS packages against OSV data (or has Trivy scan it, or reads
// a Trivy report) and applies the severity gate with the repository's risk
// exceptions.
package vulnscan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/inventory"
	"github.com/gantry-ci/gantry/internal/policy"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/vuln"
	"github.com/gantry-ci/gantry/internal/vuln/trivy"
	"github.com/gantry-ci/gantry/internal/vulndb"
)

// Kind is the vuln-scan step kind.
var Kind = step.Kind{
	Name:    "vuln-scan",
	Gate:    "vuln-scan",
	Summary: "Scan the built image's Go modules and OS packages against OSV data; fail on HIGH/CRITICAL",
	Outputs: []string{"critical", "high", "medium", "low", "unscored", "findings", "excepted", "failing", "passed", "scanner", "exceptions"},
	New:     New,
}

// Config is the `with:` block.
type Config struct {
	// Target is what to scan: LAYOUT@DIGEST, REPO@DIGEST, a binary or a
	// directory with go.mod. Default: the `image` of the From step.
	Target string `yaml:"target"`
	// From names the step whose outputs give the image, "STAGE/STEP" or
	// "STEP" of this stage (default "build-test/image").
	From string `yaml:"from"`
	// Platform of an index to scan: os/arch or "all" (default linux/amd64).
	Platform string `yaml:"platform"`
	// DB is a directory, .tar.gz or .zip of OSV JSON files. Default:
	// $GANTRY_VULN_DB, else the database `gantry vulndb update` keeps in
	// STATE_DIR/vulndb, fetched on first use and updated when older than
	// a day.
	DB string `yaml:"db"`
	// DBOffline never fetches the database: the stored one is used
	// however old ($GANTRY_VULN_DB_OFFLINE=1 does the same).
	DBOffline bool `yaml:"db_offline"`
	// FailOn lists failing severities (default [HIGH, CRITICAL]).
	FailOn []string `yaml:"fail_on"`
	// Unscored says how findings without a severity count: fail (as
	// HIGH, the default), warn or ignore.
	Unscored string `yaml:"unscored"`
	// FixedOnly: findings without a fix never fail.
	FixedOnly bool `yaml:"fixed_only"`
	// NoFixOlderThan: a finding without a fix fails only once published
	// longer ago than this ("30d").
	NoFixOlderThan string `yaml:"no_fix_older_than"`
	// Exceptions is the risk exceptions file (default .gantry/exceptions.yaml).
	Exceptions string `yaml:"exceptions"`
	// Scanner is gantry (the built-in OSV matcher, default), trivy, or
	// auto (trivy when on PATH, else gantry).
	Scanner string `yaml:"scanner"`
	// TrivyReport is an existing Trivy JSON report to gate instead of
	// scanning (implies scanner trivy).
	TrivyReport string `yaml:"trivy_report"`
	// TrivyCache is Trivy's cache directory holding its database.
	TrivyCache string `yaml:"trivy_cache"`
	// TrivyDownload lets Trivy update its database and go online while
	// scanning (default false: --skip-db-update, --offline-scan).
	TrivyDownload bool `yaml:"trivy_download"`
}

// Scanner names.
const (
	ScannerGantry = vuln.ScannerGantry
	ScannerTrivy  = vuln.ScannerTrivy
	ScannerAuto   = "auto"
)

// CheckScanner validates the scanner settings.
func (c Config) CheckScanner() (field string, err error) {
	switch c.Scanner {
	case "", ScannerGantry, ScannerTrivy, ScannerAuto:
	default:
		return "scanner", fmt.Errorf("scanner: %q is not gantry, trivy or auto", c.Scanner)
	}
	if c.Scanner == ScannerGantry {
		for _, f := range []struct {
			name string
			set  bool
		}{{"trivy_report", c.TrivyReport != ""}, {"trivy_cache", c.TrivyCache != ""}, {"trivy_download", c.TrivyDownload}} {
			if f.set {
				return f.name, fmt.Errorf("%s: only used with scanner: trivy or auto", f.name)
			}
		}
	}
	if c.Scanner == ScannerTrivy && c.DB != "" {
		return "db", fmt.Errorf("db: is gantry's OSV database; scanner: trivy uses Trivy's own (trivy_cache)")
	}
	if c.TrivyReport != "" && (c.Target != "" || c.TrivyCache != "" || c.TrivyDownload) {
		return "trivy_report", fmt.Errorf("trivy_report: gates an existing report; target, trivy_cache and trivy_download do not apply")
	}
	return "", nil
}

type scanStep struct {
	cfg  Config
	gate vuln.Gate
	// now is a test hook.
	now func() time.Time
}

var (
	_ step.Step       = (*scanStep)(nil)
	_ step.PathInputs = (*scanStep)(nil)
)

// New decodes and checks the inputs.
func New(in step.Inputs) (step.Step, error) {
	var c Config
	if err := in.Decode(&c); err != nil {
		return nil, err
	}
	g, err := c.gate()
	if err != nil {
		return nil, in.Errorf(err.field, "%v", err.err)
	}
	if field, err := c.CheckScanner(); err != nil {
		return nil, in.Errorf(field, "%v", err)
	}
	if c.TrivyReport != "" && c.Scanner == "" {
		c.Scanner = ScannerTrivy
	}
	if c.Exceptions == "" {
		c.Exceptions = policy.DefaultExceptionsFile
	}
	if c.From == "" {
		c.From = "build-test/image"
	}
	return &scanStep{cfg: c, gate: g, now: time.Now}, nil
}

type fieldErr struct {
	field string
	err   error
}

func (c Config) gate() (vuln.Gate, *fieldErr) {
	var g vuln.Gate
	levels, err := vuln.ParseLevels(c.FailOn)
	if err != nil {
		return g, &fieldErr{"fail_on", err}
	}
	age, err := vuln.ParseAge(c.NoFixOlderThan)
	if err != nil {
		return g, &fieldErr{"no_fix_older_than", err}
	}
	g = vuln.Gate{FailOn: levels, Unscored: c.Unscored, FixedOnly: c.FixedOnly, NoFixOlderThan: age}
	if err := g.Check(); err != nil {
		return g, &fieldErr{"unscored", err}
	}
	return g, nil
}

// ErrGate is returned (wrapped) when findings fail the gate.
var ErrGate = errors.New("vulnerability gate failed")

// Run scans the target.
func (s *scanStep) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	out := env.Stdout
	if out == nil {
		out = io.Discard
	}
	exc, err := loadExceptions(env.Dir, s.cfg.Exceptions)
	if err != nil {
		return nil, err
	}
	g := s.gate
	g.Exceptions = exc
	now := s.now()
	var rep *vuln.Report
	scanner := s.scanner(env.Vars)
	s.logScanner(out, scanner)
	if scanner == ScannerTrivy {
		rep, err = s.scanTrivy(ctx, env, g, now, out)
	} else {
		rep, err = s.scanGantry(ctx, env, g, now)
	}
	if err != nil {
		return nil, err
	}
	if err := rep.WriteTable(out); err != nil {
		return nil, fmt.Errorf("vuln-scan: write report: %w", err)
	}
	if err := Store(ctx, env.Artifacts, rep); err != nil {
		return nil, err
	}
	res := &step.Result{Outputs: Outputs(rep), Summary: rep.Summary()}
	if !rep.Passed {
		return res, fmt.Errorf("%w: %d finding(s) at %s not covered by an exception", ErrGate, rep.Failing, failOnText(g))
	}
	return res, nil
}

// scanner resolves auto: trivy when on the PATH of vars.
func (s *scanStep) scanner(vars []string) string {
	switch s.cfg.Scanner {
	case ScannerTrivy:
		return ScannerTrivy
	case ScannerAuto:
		if trivy.Available(vars) {
			return ScannerTrivy
		}
	}
	return ScannerGantry
}

// logScanner says which scanner auto chose.
func (s *scanStep) logScanner(out io.Writer, chosen string) {
	if s.cfg.Scanner != ScannerAuto {
		return
	}
	if chosen == ScannerTrivy {
		fmt.Fprintln(out, "vuln-scan: scanner auto: trivy is on PATH, using it")
	} else {
		fmt.Fprintln(out, "vuln-scan: scanner auto: trivy is not on PATH, using gantry's scanner")
	}
}

// scanGantry matches the target's inventory against the OSV database.
func (s *scanStep) scanGantry(ctx context.Context, env *step.Env, g vuln.Gate, now time.Time) (*vuln.Report, error) {
	target, err := s.target(env)
	if err != nil {
		return nil, err
	}
	dbPath, err := s.locateDB(ctx, env)
	if err != nil {
		return nil, err
	}
	db, err := vuln.Open(dbPath)
	if err != nil {
		return nil, err
	}
	target, stop, err := ensureRegistry(ctx, env, target)
	if err != nil {
		return nil, err
	}
	defer stop()
	inv, err := inventory.Load(ctx, target, inventory.Options{Platform: s.cfg.Platform, Insecure: registry.IsLoopback(target)})
	if err != nil {
		return nil, fmt.Errorf("vuln-scan: %w", err)
	}
	return vuln.NewReport(inv, db, g.Apply(vuln.Scan(inv, db), now), now), nil
}

// ensureRegistry restarts the embedded registry for an image pushed to it
// (it may have stopped with the push step) and rewrites the target to its
// address. stop is never nil.
func ensureRegistry(ctx context.Context, env *step.Env, target string) (string, func(), error) {
	target, _, stop, err := registry.EnsureFor(ctx, env.StateDir, env.Vars, env.Log, target)
	if err != nil {
		return "", nil, fmt.Errorf("vuln-scan: %w", err)
	}
	return target, func() { _ = stop(context.WithoutCancel(ctx)) }, nil
}

// scanTrivy runs trivy on the target, or reads trivy_report, and keeps
// Trivy's own JSON as trivy-report[-OS-ARCH].json.
func (s *scanStep) scanTrivy(ctx context.Context, env *step.Env, g vuln.Gate, now time.Time, out io.Writer) (*vuln.Report, error) {
	var scan *trivy.Scan
	if p := s.cfg.TrivyReport; p != "" {
		if !filepath.IsAbs(p) {
			p = filepath.Join(env.Dir, p)
		}
		var err error
		if scan, err = trivy.ReadReport(p); err != nil {
			return nil, fmt.Errorf("vuln-scan: %w", err)
		}
		fmt.Fprintf(out, "vuln-scan: gating the Trivy report %s\n", s.cfg.TrivyReport)
	} else {
		target, err := s.target(env)
		if err != nil {
			return nil, err
		}
		target, stop, err := ensureRegistry(ctx, env, target)
		if err != nil {
			return nil, err
		}
		defer stop()
		cache := s.cfg.TrivyCache
		if cache != "" && !filepath.IsAbs(cache) {
			cache = filepath.Join(env.Dir, cache)
		}
		fmt.Fprintf(out, "vuln-scan: scanning %s with trivy\n", target)
		scan, err = trivy.Run(ctx, trivy.Options{
			Target: target, Platform: s.cfg.Platform, Insecure: registry.IsLoopback(target), CacheDir: cache,
			AllowDownload: s.cfg.TrivyDownload, Env: env.Vars, TempDir: env.TempDir, Log: out,
		})
		if err != nil {
			return nil, fmt.Errorf("vuln-scan: %w", err)
		}
	}
	if env.Artifacts != nil {
		for _, p := range scan.Parts {
			name := "trivy-report.json"
			if len(scan.Parts) > 1 && p.Platform != "" {
				name = "trivy-report-" + strings.ReplaceAll(p.Platform, "/", "-") + ".json"
			}
			if err := env.Artifacts.PutBytes(ctx, name, p.Raw, "application/json"); err != nil {
				return nil, fmt.Errorf("vuln-scan: store %s: %w", name, err)
			}
		}
	}
	return scan.NewReport(g.Apply(scan.Findings(), now), now), nil
}

// Outputs are the step outputs of a report.
func Outputs(r *vuln.Report) map[string]any {
	// The findings an unexpired risk exception covered, for the evidence
	// attestation: "ID package".
	excepted := []string{}
	for _, f := range r.Findings {
		if f.Status == vuln.StatusExcepted {
			excepted = append(excepted, f.ID+" "+f.Package)
		}
	}
	slices.Sort(excepted)
	return map[string]any{
		"exceptions": slices.Compact(excepted),
		"critical":   r.Counts["CRITICAL"], "high": r.Counts["HIGH"], "medium": r.Counts["MEDIUM"],
		"low": r.Counts["LOW"], "unscored": r.Counts["UNSCORED"], "findings": len(r.Findings),
		"excepted": r.Excepted, "failing": r.Failing, "passed": r.Passed, "scanner": cmp.Or(r.Scanner, ScannerGantry),
	}
}

// Store saves vuln-report.json and vuln-scan.sarif.
func Store(ctx context.Context, sink step.ArtifactSink, r *vuln.Report) error {
	if sink == nil {
		return nil
	}
	js, err := r.JSON()
	if err != nil {
		return fmt.Errorf("vuln-scan: encode report: %w", err)
	}
	if err := sink.PutBytes(ctx, "vuln-report.json", js, "application/json"); err != nil {
		return fmt.Errorf("vuln-scan: store vuln-report.json: %w", err)
	}
	sarif, err := r.SARIF()
	if err != nil {
		return fmt.Errorf("vuln-scan: encode SARIF: %w", err)
	}
	if err := sink.PutBytes(ctx, "vuln-scan.sarif", sarif, "application/sarif+json"); err != nil {
		return fmt.Errorf("vuln-scan: store vuln-scan.sarif: %w", err)
	}
	return nil
}

func failOnText(g vuln.Gate) string {
	if len(g.FailOn) == 0 {
		return "HIGH/CRITICAL"
	}
	var s []string
	for _, l := range g.FailOn {
		s = append(s, l.String())
	}
	return strings.Join(s, "/")
}

func (s *scanStep) target(env *step.Env) (string, error) {
	if s.cfg.Target != "" {
		t := s.cfg.Target
		if strings.HasPrefix(t, ".") && !strings.Contains(t, "@") {
			t = filepath.Join(env.Dir, t)
		}
		return t, nil
	}
	outs, where, ok := env.OutputsOf(s.cfg.From)
	if !ok {
		return "", fmt.Errorf("vuln-scan: step %s has not run: set with.from to the image-build or image-push step, or with.target", where)
	}
	if img, _ := outs["image"].(string); img != "" {
		return img, nil
	}
	return "", fmt.Errorf("vuln-scan: step %s has no `image` output", where)
}

// DBPath finds the OSV database: explicit, $GANTRY_VULN_DB, or in the state dir.
func DBPath(explicit string, vars []string, stateDir string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	for _, kv := range vars {
		if v, ok := strings.CutPrefix(kv, "GANTRY_VULN_DB="); ok && v != "" {
			return v, nil
		}
	}
	for _, p := range []string{filepath.Join(stateDir, "vulndb"), filepath.Join(stateDir, "vulndb.tar.gz"), filepath.Join(stateDir, "vulndb.zip")} {
		if fi, err := os.Stat(p); err == nil && (!fi.IsDir() || vulndb.HasData(p)) {
			return p, nil
		}
	}
	return "", fmt.Errorf("vuln-scan: %w: run `gantry vulndb update` (or `gantry vulndb update --from FILE` offline), set with.db (or --db) or GANTRY_VULN_DB, or put OSV files in %s",
		vulndb.ErrNoDB, filepath.Join(stateDir, "vulndb"))
}

// explicitDB is the database the step names (with.db, relative to the
// repository) or GANTRY_VULN_DB names; "" when neither does.
func (s *scanStep) explicitDB(env *step.Env) string {
	p := s.cfg.DB
	if p != "" && !filepath.IsAbs(p) {
		p = filepath.Join(env.Dir, p)
	}
	if p == "" {
		p = getenv(env.Vars)(vulndb.OverrideEnv)
	}
	return p
}

// locateDB returns the database to read: the one named, else the state
// dir's, fetched on first use and updated when stale (unless offline).
func (s *scanStep) locateDB(ctx context.Context, env *step.Env) (string, error) {
	if p := s.explicitDB(env); p != "" {
		return p, nil
	}
	out := env.Stdout
	if out == nil {
		out = io.Discard
	}
	loc, err := vulndb.Ensure(ctx, vulndb.Options{
		StateDir: env.StateDir, Offline: s.cfg.DBOffline, Progress: out, Getenv: getenv(env.Vars), Now: s.now,
	})
	if err != nil {
		return "", fmt.Errorf("vuln-scan: %w", err)
	}
	if loc.Warning != "" && env.Log != nil {
		env.Log.Warn("vuln-scan: stale vulnerability database", "warning", loc.Warning)
	}
	return loc.Path, nil
}

// getenv reads a step's variables, the last setting winning.
func getenv(vars []string) func(string) string {
	return func(k string) string {
		for i := len(vars) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(vars[i], k+"="); ok {
				return v
			}
		}
		return ""
	}
}

// dbCacheKey identifies the database a run would read without fetching
// anything: a named archive by path, size and time; the state dir's
// fetched database by its record, while fresh (a stale one is updated
// when the step runs, so no earlier verdict applies).
func (s *scanStep) dbCacheKey(env *step.Env) (string, bool) {
	if db := s.explicitDB(env); db != "" {
		fi, err := os.Stat(db)
		if err != nil || fi.IsDir() {
			return "", false // a directory's content is not digested
		}
		return fmt.Sprintf("%s:%d:%d", db, fi.Size(), fi.ModTime().UnixNano()), true
	}
	meta, err := vulndb.ReadMeta(vulndb.Dir(env.StateDir))
	if err != nil {
		return "", false
	}
	if !s.cfg.DBOffline && !vulndb.Offline(getenv(env.Vars)) && s.now().Sub(meta.FetchedAt) >= vulndb.DefaultMaxAge {
		return "", false
	}
	var b strings.Builder
	for _, f := range meta.Sources {
		fmt.Fprintf(&b, "%s=%s;", f.File, f.SHA256)
	}
	return b.String(), true
}

func loadExceptions(dir, file string) (*policy.Exceptions, error) {
	p := file
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, file)
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return &policy.Exceptions{File: file}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vuln-scan: read exceptions: %w", err)
	}
	return policy.ParseExceptions(file, data)
}

// LoadExceptions reads the exceptions file (relative to dir), naming it
// as given in errors; a missing file is an empty list.
func LoadExceptions(dir, file string) (*policy.Exceptions, error) { return loadExceptions(dir, file) }

var _ step.Cacheable = (*scanStep)(nil)

// CacheKey implements step.Cacheable for gantry's own scanner (Trivy
// scans are never cached): a verdict depends on the image (by
// digest), the database (by path, size and modification time: the
// database is large and replaced whole), the exceptions file and the day,
// since exceptions expire and `no_fix_older_than` counts days.
func (s *scanStep) CacheKey(_ context.Context, env *step.Env) (step.CacheKey, error) {
	if s.scanner(env.Vars) == ScannerTrivy {
		// Trivy's verdict depends on its database, which gantry does
		// not version.
		return step.CacheKey{}, step.ErrNotCacheable
	}
	target, err := s.target(env)
	if err != nil || !strings.Contains(target, "@") {
		return step.CacheKey{}, step.ErrNotCacheable
	}
	dbKey, ok := s.dbCacheKey(env)
	if !ok {
		return step.CacheKey{}, step.ErrNotCacheable
	}
	exc := s.cfg.Exceptions
	if exc == "" {
		exc = ".gantry/exceptions.yaml"
	}
	return step.CacheKey{
		Files: []string{filepath.ToSlash(exc)},
		Extra: map[string]string{
			"target": target,
			"db":     dbKey,
			"day":    s.now().UTC().Format("2006-01-02"),
		},
	}, nil
}

// Paths names the exceptions file (the default one may be absent) and
// the database, which may live outside the repository.
func (s *scanStep) Paths() []step.PathRef {
	exc := s.cfg.Exceptions
	if exc == policy.DefaultExceptionsFile {
		exc = ""
	}
	return []step.PathRef{
		{Field: "exceptions", Value: exc, Type: step.PathFile},
		{Field: "db", Value: s.cfg.DB, Type: step.PathAny, Outside: true},
	}
}
