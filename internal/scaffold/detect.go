package scaffold

import (
	"context"
	"errors"
	"fmt"
	"go/build"
	"go/build/constraint"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
	"golang.org/x/mod/modfile"

	"github.com/gantry-ci/gantry/internal/license"
	"github.com/gantry-ci/gantry/internal/policy"
)

// Repo is what Detect found in a repository. Every path is relative to
// the repository root, slash-separated.
type Repo struct {
	// Module is the Go module at the root (empty when there is none).
	Module *GoModule
	// OtherModules are go.mod files below the root; they are reported,
	// not built.
	OtherModules []string
	// Terraform are the top-most directories holding *.tf files.
	Terraform []string
	// Charts are Helm chart directories (Chart.yaml), subcharts excluded.
	Charts []string
	// Overlays are kustomize directories no other kustomization refers
	// to: the ones that are built (bases are built through them).
	Overlays []string
	// Manifests are directories (or single files, when their directory
	// also holds YAML that is not a manifest) of plain Kubernetes
	// manifests outside charts and kustomize directories.
	Manifests []string
	// Dockerfiles found anywhere.
	Dockerfiles []string
	// Postman collections, k6 scripts, Prometheus rule files.
	Postman []string
	K6      []string
	Rules   []string
	// Kubernetes objects of note, by file: Kyverno policies, Argo
	// Rollouts and AnalysisTemplates (in manifests or chart templates).
	Kyverno           []string
	Rollouts          []string
	AnalysisTemplates []string
	// GolangciConfig is the golangci-lint config file present, if any.
	GolangciConfig string
	// GolangciV1 reports a golangci-lint config without `version: "2"`,
	// which golangci-lint v2 refuses to load.
	GolangciV1 bool
	// HasPipeline reports whether .gantry/pipeline.yaml exists.
	HasPipeline bool
	// HasExceptions and HasLicensePolicy report whether
	// .gantry/exceptions.yaml and .gantry/licenses.yaml exist: init never
	// replaces them.
	HasExceptions    bool
	HasLicensePolicy bool
}

// GoModule is the Go module at the repository root.
type GoModule struct {
	Path string // module path from go.mod
	// Mains are the main packages, "." or "./cmd/x", examples and tools
	// left out.
	Mains []string
	// SkippedMains are main packages left out (examples, tools).
	SkippedMains []string
	// Tags are the build tags test files are behind (integration, e2e).
	Tags []string
	// TagFiles are the test files behind those tags, one per tag at most,
	// for the report.
	TagFiles map[string]string
	// Services are the services the module's requirements point at
	// (postgres, redis, sqs), with the requirement that showed each.
	Services []Service
	// HasTests reports whether any package has test files.
	HasTests bool
}

// Service is a service a step needs and why it was chosen.
type Service struct {
	Name string // as in services: (postgres, redis, sqs)
	From string // the go.mod requirement or import that showed it
}

// servicesByModule maps module path prefixes of go.mod requirements to
// the service their clients talk to.
var servicesByModule = []struct{ prefix, service string }{
	{"github.com/jackc/pgx", "postgres"},
	{"github.com/jackc/pgconn", "postgres"},
	{"github.com/lib/pq", "postgres"},
	{"gorm.io/driver/postgres", "postgres"},
	{"github.com/redis/go-redis", "redis"},
	{"github.com/go-redis/redis", "redis"},
	{"github.com/gomodule/redigo", "redis"},
	{"github.com/redis/rueidis", "redis"},
	{"github.com/aws/aws-sdk-go-v2/service/sqs", "sqs"},
}

// skipDirs are never walked: VCS data, dependencies, build output.
var skipDirs = map[string]bool{
	".git": true, "vendor": true, "node_modules": true, "testdata": true,
	".terraform": true, "dist": true, "bin": true,
}

// toolDirs hold main packages that are not the product: examples and
// developer tools. Their mains get no image.
var toolDirs = map[string]bool{
	"example": true, "examples": true, "_example": true, "_examples": true,
	"tools": true, "hack": true, "scripts": true, "internal/tools": true,
}

// maxFiles bounds the walk of a very large repository.
const maxFiles = 50000

// ErrTooLarge is returned when a repository holds more files than Detect
// reads.
var ErrTooLarge = errors.New("repository too large to scan")

// Detect walks the repository at dir and reports what it holds. It reads
// files only; it runs nothing.
func Detect(ctx context.Context, dir string) (*Repo, error) {
	d := &detector{root: dir, repo: &Repo{}, kustomize: map[string]bool{}, referenced: map[string]bool{}}
	if err := d.walk(ctx); err != nil {
		return nil, err
	}
	d.finish()
	return d.repo, nil
}

type detector struct {
	root  string
	repo  *Repo
	files int
	// goDirs are directories with .go files in the root module.
	goDirs     []string
	modules    []string
	tfDirs     []string
	charts     []string
	kustomize  map[string]bool
	referenced map[string]bool
	// yamlFiles are YAML files outside charts, by directory: whether
	// each is a Kubernetes manifest.
	yamlFiles map[string]map[string]bool
	// requires are the go.mod requirements of the root module.
	requires []string
}

func (d *detector) walk(ctx context.Context) error {
	d.yamlFiles = map[string]map[string]bool{}
	return filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("scan repository: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return fmt.Errorf("scan repository: %w", err)
		}
		rel = filepath.ToSlash(rel)
		name := e.Name()
		if e.IsDir() {
			if rel != "." && (skipDirs[name] || strings.HasPrefix(name, ".") && name != ".gantry") {
				return filepath.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() {
			return nil
		}
		d.files++
		if d.files > maxFiles {
			return fmt.Errorf("%w: more than %d files", ErrTooLarge, maxFiles)
		}
		return d.file(rel, name)
	})
}

func (d *detector) file(rel, name string) error {
	dir := path.Dir(rel)
	switch {
	case rel == ".gantry/pipeline.yaml":
		d.repo.HasPipeline = true
	case rel == policy.DefaultExceptionsFile:
		d.repo.HasExceptions = true
	case rel == license.PolicyFile:
		d.repo.HasLicensePolicy = true
	case name == "go.mod":
		if dir == "." {
			return d.readGoMod(rel)
		}
		d.modules = append(d.modules, dir)
	case strings.HasSuffix(name, ".go"):
		if !slices.Contains(d.goDirs, dir) {
			d.goDirs = append(d.goDirs, dir)
		}
	case strings.HasSuffix(name, ".tf"):
		if !slices.Contains(d.tfDirs, dir) {
			d.tfDirs = append(d.tfDirs, dir)
		}
	case name == "Chart.yaml":
		d.charts = append(d.charts, dir)
	case name == "kustomization.yaml" || name == "kustomization.yml" || name == "Kustomization":
		d.kustomize[dir] = true
		return d.readKustomization(rel)
	case name == "Dockerfile" || strings.HasSuffix(name, ".Dockerfile") || strings.HasPrefix(name, "Dockerfile."):
		d.repo.Dockerfiles = append(d.repo.Dockerfiles, rel)
	case rel == ".golangci.yml" || rel == ".golangci.yaml" || rel == ".golangci.toml" || rel == ".golangci.json":
		d.repo.GolangciConfig = rel
		return d.readGolangci(rel)
	case strings.HasSuffix(name, ".json"):
		return d.readJSON(rel)
	case strings.HasSuffix(name, ".js") || strings.HasSuffix(name, ".ts"):
		return d.readScript(rel)
	case strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml"):
		return d.readYAML(rel, dir)
	}
	return nil
}

func (d *detector) read(rel string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(d.root, filepath.FromSlash(rel)))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", rel, err)
	}
	return b, nil
}

func (d *detector) readGoMod(rel string) error {
	b, err := d.read(rel)
	if err != nil {
		return err
	}
	f, err := modfile.ParseLax(rel, b, nil)
	if err != nil {
		return fmt.Errorf("parse %s: %w", rel, err)
	}
	if f.Module == nil {
		return fmt.Errorf("parse %s: no module line", rel)
	}
	d.repo.Module = &GoModule{Path: f.Module.Mod.Path, TagFiles: map[string]string{}}
	for _, r := range f.Require {
		if !r.Indirect {
			d.requires = append(d.requires, r.Mod.Path)
		}
	}
	return nil
}

func (d *detector) readKustomization(rel string) error {
	b, err := d.read(rel)
	if err != nil {
		return err
	}
	var k struct {
		Resources  []string `yaml:"resources"`
		Bases      []string `yaml:"bases"`
		Components []string `yaml:"components"`
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		// Not ours to judge: kubeconform reports it.
		return nil //nolint:nilerr // a broken kustomization is still a kustomize directory
	}
	dir := path.Dir(rel)
	for _, r := range slices.Concat(k.Resources, k.Bases, k.Components) {
		if strings.Contains(r, "://") || strings.HasPrefix(r, "/") {
			continue
		}
		d.referenced[path.Clean(path.Join(dir, r))] = true
	}
	return nil
}

var (
	postmanRE   = regexp.MustCompile(`"_postman_id"|schema\.getpostman\.com/json/collection`)
	k6RE        = regexp.MustCompile(`(?m)^\s*import\b.*\bfrom\s+['"]k6(/[a-z/-]+)?['"]`)
	k6OptionsRE = regexp.MustCompile(`(?m)^export\s+(const|let|var)\s+options\b[\s\S]*\b(scenarios|thresholds|vus|duration)\b`)
	k6DefaultRE = regexp.MustCompile(`(?m)^export\s+default\b`)
	kindRE      = regexp.MustCompile(`(?m)^kind:\s*["']?([A-Za-z]+)`)
	apiRE       = regexp.MustCompile(`(?m)^apiVersion:\s*["']?([A-Za-z0-9./-]+)`)
	rulesRE     = regexp.MustCompile(`(?m)^groups:\s*$`)
	ruleItemRE  = regexp.MustCompile(`(?m)^\s*-?\s*(alert|record):`)
	ruleTestRE  = regexp.MustCompile(`(?m)^rule_files:`)
)

var golangciV2RE = regexp.MustCompile(`(?m)^(version:\s*["']?2|version\s*=\s*["']?2|\s*"version"\s*:\s*"?2)`)

func (d *detector) readGolangci(rel string) error {
	b, err := d.read(rel)
	if err != nil {
		return err
	}
	d.repo.GolangciV1 = !golangciV2RE.Match(b)
	return nil
}

func (d *detector) readJSON(rel string) error {
	b, err := d.read(rel)
	if err != nil {
		return err
	}
	if postmanRE.Match(b) {
		d.repo.Postman = append(d.repo.Postman, rel)
	}
	return nil
}

func (d *detector) readScript(rel string) error {
	b, err := d.read(rel)
	if err != nil {
		return err
	}
	// A k6 script imports k6 or declares k6 options, and exports the
	// default function each iteration runs.
	isK6 := k6RE.Match(b) || k6OptionsRE.Match(b)
	if isK6 && k6DefaultRE.Match(b) {
		d.repo.K6 = append(d.repo.K6, rel)
	}
	return nil
}

func (d *detector) readYAML(rel, dir string) error {
	b, err := d.read(rel)
	if err != nil {
		return err
	}
	d.noteKinds(rel, b)
	if rulesRE.Match(b) && ruleItemRE.Match(b) && !ruleTestRE.Match(b) {
		d.repo.Rules = append(d.repo.Rules, rel)
		return nil
	}
	if d.yamlFiles[dir] == nil {
		d.yamlFiles[dir] = map[string]bool{}
	}
	d.yamlFiles[dir][rel] = apiRE.Match(b) && kindRE.Match(b)
	return nil
}

// noteKinds records the Kubernetes objects that later stages use.
func (d *detector) noteKinds(rel string, b []byte) {
	apis := apiRE.FindAllSubmatch(b, -1)
	for _, m := range kindRE.FindAllSubmatch(b, -1) {
		kind := string(m[1])
		api := ""
		for _, a := range apis {
			api += string(a[1]) + " "
		}
		switch {
		case (kind == "ClusterPolicy" || kind == "Policy") && strings.Contains(api, "kyverno.io"):
			d.repo.Kyverno = appendOnce(d.repo.Kyverno, rel)
		case kind == "Rollout" && strings.Contains(api, "argoproj.io"):
			d.repo.Rollouts = appendOnce(d.repo.Rollouts, rel)
		case kind == "AnalysisTemplate" || kind == "ClusterAnalysisTemplate":
			d.repo.AnalysisTemplates = appendOnce(d.repo.AnalysisTemplates, rel)
		}
	}
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// under reports whether p is dir or inside it.
func under(p, dir string) bool {
	return dir == "." || p == dir || strings.HasPrefix(p, dir+"/")
}

func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if under(p, d) {
			return true
		}
	}
	return false
}

// topMost keeps the directories no other listed directory contains.
func topMost(dirs []string) []string {
	sort.Strings(dirs)
	var out []string
	for _, d := range dirs {
		if !underAny(d, out) {
			out = append(out, d)
		}
	}
	return out
}

func (d *detector) finish() {
	r := d.repo
	d.modules = topMost(d.modules)
	r.OtherModules = d.modules
	r.Terraform = topMost(d.tfDirs)
	r.Charts = topMost(d.charts)
	// Rule files inside charts are templates, not rule files.
	r.Rules = slices.DeleteFunc(r.Rules, func(p string) bool { return underAny(p, r.Charts) })
	var kdirs []string
	for k := range d.kustomize {
		kdirs = append(kdirs, k)
	}
	sort.Strings(kdirs)
	for _, k := range kdirs {
		if !d.referenced[k] && !underAny(k, r.Charts) {
			r.Overlays = append(r.Overlays, k)
		}
	}
	d.manifests(kdirs)
	if r.Module != nil {
		d.goPackages()
	}
	sort.Strings(r.Dockerfiles)
	sort.Strings(r.Postman)
	sort.Strings(r.K6)
	sort.Strings(r.Rules)
	sort.Strings(r.Kyverno)
	sort.Strings(r.Rollouts)
	sort.Strings(r.AnalysisTemplates)
}

// manifests picks the directories of plain manifests: YAML with
// apiVersion and kind outside charts, kustomize directories, the
// resources kustomizations name and gantry's own directory.
func (d *detector) manifests(kdirs []string) {
	var dirs []string
	for dir := range d.yamlFiles {
		dirs = append(dirs, dir)
	}
	sort.Strings(dirs)
	for _, dir := range dirs {
		if underAny(dir, d.repo.Charts) || slices.Contains(kdirs, dir) || under(dir, ".gantry") {
			continue
		}
		files := d.yamlFiles[dir]
		var yes []string
		all := true
		for f, isManifest := range files {
			switch {
			case d.referenced[f]:
				// Built through its kustomization.
			case isManifest:
				yes = append(yes, f)
			default:
				all = false
			}
		}
		sort.Strings(yes)
		switch {
		case len(yes) == 0:
		case all && len(yes) == len(files):
			d.repo.Manifests = append(d.repo.Manifests, dir)
		default:
			d.repo.Manifests = append(d.repo.Manifests, yes...)
		}
	}
}

// goPackages finds the main packages and the build tags of test files of
// the root module, and the services its requirements point at.
func (d *detector) goPackages() {
	m := d.repo.Module
	ctx := build.Default
	ctx.CgoEnabled = false
	sort.Strings(d.goDirs)
	for _, dir := range d.goDirs {
		if underAny(dir, d.modules) {
			continue
		}
		abs := filepath.Join(d.root, filepath.FromSlash(dir))
		pkg, err := ctx.ImportDir(abs, 0)
		var noGo *build.NoGoError
		if err != nil && !errors.As(err, &noGo) {
			// Broken packages are the compiler's to report, in the run.
			continue
		}
		if pkg == nil {
			continue
		}
		if len(pkg.TestGoFiles)+len(pkg.XTestGoFiles) > 0 {
			m.HasTests = true
		}
		for _, f := range pkg.IgnoredGoFiles {
			if strings.HasSuffix(f, "_test.go") {
				d.testTags(path.Join(dir, f))
			}
		}
		if pkg.Name == "main" && len(pkg.GoFiles) > 0 {
			p := "."
			if dir != "." {
				p = "./" + dir
			}
			if isToolDir(dir) {
				m.SkippedMains = append(m.SkippedMains, p)
			} else {
				m.Mains = append(m.Mains, p)
			}
		}
	}
	sort.Strings(m.Tags)
	for _, req := range d.requires {
		for _, s := range servicesByModule {
			if req == s.prefix || strings.HasPrefix(req, s.prefix+"/") {
				if !slices.ContainsFunc(m.Services, func(x Service) bool { return x.Name == s.service }) {
					m.Services = append(m.Services, Service{Name: s.service, From: req})
				}
			}
		}
	}
	order := map[string]int{"postgres": 0, "redis": 1, "sqs": 2}
	sort.SliceStable(m.Services, func(i, j int) bool { return order[m.Services[i].Name] < order[m.Services[j].Name] })
}

func isToolDir(dir string) bool {
	for d := range toolDirs {
		if under(dir, d) || strings.Contains("/"+dir+"/", "/"+d+"/") {
			return true
		}
	}
	return false
}

// notTestTags are constraint names that select platforms or toolchains,
// not groups of tests.
var notTestTags = map[string]bool{
	"ignore": true, "tools": true, "generate": true, "cgo": true, "gc": true, "gccgo": true,
	"race": true, "unix": true, "purego": true, "appengine": true, "netgo": true, "osusergo": true,
	"js": true, "wasm": true, "wasip1": true,
}

// testTags records the positive build tags of a test file's //go:build
// line that are not platform or toolchain names.
func (d *detector) testTags(rel string) {
	b, err := d.read(rel)
	if err != nil {
		return
	}
	m := d.repo.Module
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "package ") {
			return
		}
		if !constraint.IsGoBuild(line) {
			continue
		}
		expr, err := constraint.Parse(line)
		if err != nil {
			return
		}
		for _, tag := range positiveTags(expr, false) {
			if notTestTags[tag] || knownOS[tag] || knownArch[tag] || strings.HasPrefix(tag, "go1.") {
				continue
			}
			if !slices.Contains(m.Tags, tag) {
				m.Tags = append(m.Tags, tag)
				m.TagFiles[tag] = rel
			}
		}
		return
	}
}

func positiveTags(e constraint.Expr, negated bool) []string {
	switch x := e.(type) {
	case *constraint.TagExpr:
		if negated {
			return nil
		}
		return []string{x.Tag}
	case *constraint.NotExpr:
		return positiveTags(x.X, !negated)
	case *constraint.AndExpr:
		return append(positiveTags(x.X, negated), positiveTags(x.Y, negated)...)
	case *constraint.OrExpr:
		return append(positiveTags(x.X, negated), positiveTags(x.Y, negated)...)
	}
	return nil
}

var knownOS = map[string]bool{
	"aix": true, "android": true, "darwin": true, "dragonfly": true, "freebsd": true, "hurd": true,
	"illumos": true, "ios": true, "linux": true, "nacl": true, "netbsd": true, "openbsd": true,
	"plan9": true, "solaris": true, "windows": true, "zos": true,
}

var knownArch = map[string]bool{
	"386": true, "amd64": true, "arm": true, "arm64": true, "loong64": true, "mips": true,
	"mipsle": true, "mips64": true, "mips64le": true, "ppc64": true, "ppc64le": true,
	"riscv64": true, "s390x": true, "wasm": true,
}
