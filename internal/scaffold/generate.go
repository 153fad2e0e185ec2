package scaffold

import (
	"encoding/json"
	"fmt"
	"math"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/license"
)

// Plan is what init writes and what it tells the user.
type Plan struct {
	// Pipeline is the content of .gantry/pipeline.yaml.
	Pipeline []byte
	// Companions are configuration files the pipeline needs that the
	// repository lacks.
	Companions []File
	// Found lists what was detected, one line each, with the file that
	// showed it.
	Found []string
	// Notes say what was found but not generated, and why.
	Notes []string
	// Relaxed says, one line each, what the pipeline does not judge yet
	// because the repository did not pass it when init measured it, and
	// how to tighten it.
	Relaxed []string
}

// File is one file to write.
type File struct {
	Path    string
	Content []byte
}

// Options are the facts Generate cannot see in the tree.
type Options struct {
	// Name is the pipeline's name when there is no Go module (usually the
	// directory's name).
	Name string
	// DefaultBranch is the pull-request target (default main).
	DefaultBranch string
	// Head is the commit init saw ("" when the repository has none):
	// lint and commit messages judge only what comes after it.
	Head string
	// Measured is what init measured; nil when nothing was run
	// (--no-measure): then there is no coverage gate.
	Measured *Measurement
	// Today dates the exceptions init records (default time.Now).
	Today time.Time
	// Owner owns the exceptions init records (default "unassigned").
	Owner string
}

// ExceptionDays is how long the exceptions init records last.
const ExceptionDays = 30

// CoverageGate is the minimum coverage of the build-test gate, as the
// seed pipeline sets it.
const CoverageGate = 80

// Generate writes the pipeline for what Detect found.
func Generate(r *Repo, o Options) *Plan {
	if o.Today.IsZero() {
		o.Today = time.Now().UTC()
	}
	if o.Owner == "" {
		o.Owner = "unassigned"
	}
	g := &gen{r: r, o: o, plan: &Plan{}}
	g.found()
	g.pipeline()
	return g.plan
}

type gen struct {
	r    *Repo
	o    Options
	plan *Plan
	b    strings.Builder
	// images are the image-build steps: name of the step, push step,
	// image name.
	images []image
}

type image struct {
	build, push, pkg, name string
}

// where names the image's package for comments.
func (im image) where() string {
	if im.pkg == "." {
		return "the module root"
	}
	return strings.TrimPrefix(im.pkg, "./")
}

// relax records one relaxation for the report.
func (g *gen) relax(format string, args ...any) {
	g.plan.Relaxed = append(g.plan.Relaxed, clean(fmt.Sprintf(format, args...)))
}

// short is the abbreviated commit id for messages.
func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func (g *gen) line(format string, args ...any) {
	fmt.Fprintf(&g.b, format+"\n", args...)
}

// comment writes a comment line; text from the repository (file names)
// cannot end the comment: control characters become '?'.
func (g *gen) comment(indent, format string, args ...any) {
	g.line("%s# %s", indent, clean(fmt.Sprintf(format, args...)))
}

func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0x2028 || r == 0x2029 || r == 0x85 {
			return '?'
		}
		return r
	}, s)
}

var plainRE = regexp.MustCompile(`^[A-Za-z0-9_./][A-Za-z0-9_./-]*$`)

// q renders a string as a YAML scalar: plain when safe, else a JSON
// (YAML double-quoted) string.
func q(s string) string {
	if plainRE.MatchString(s) && s != "." && !slices.Contains([]string{"true", "false", "null", "yes", "no", "on", "off", "y", "n"}, strings.ToLower(s)) {
		return s
	}
	b, _ := json.Marshal(s) //nolint:errchkjson // a string always marshals
	return string(b)
}

func list(items []string) string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = q(s)
	}
	return "[" + strings.Join(out, ", ") + "]"
}

// stepName is base, or base-SUFFIX when there are several.
func stepName(base, p string, many bool) string {
	if !many {
		return base
	}
	s := strings.Trim(nonName.ReplaceAllString(strings.ToLower(path.Base(p)), "-"), "-")
	if s == "" || s == "." {
		s = "root"
	}
	return base + "-" + s
}

var nonName = regexp.MustCompile(`[^a-z0-9_-]+`)

// pipelineName is the module's last path element without a major
// version suffix.
func (g *gen) pipelineName() string {
	if m := g.r.Module; m != nil {
		p := m.Path
		if b := path.Base(p); regexp.MustCompile(`^v[0-9]+$`).MatchString(b) && path.Dir(p) != "." {
			p = path.Dir(p)
		}
		return path.Base(p)
	}
	if g.o.Name != "" {
		return g.o.Name
	}
	return "pipeline"
}

func (g *gen) found() {
	r := g.r
	add := func(format string, args ...any) {
		g.plan.Found = append(g.plan.Found, clean(fmt.Sprintf(format, args...)))
	}
	note := func(format string, args ...any) {
		g.plan.Notes = append(g.plan.Notes, clean(fmt.Sprintf(format, args...)))
	}
	if m := r.Module; m != nil {
		add("Go module %s (go.mod)", m.Path)
		for _, p := range m.Mains {
			add("main package %s: an image", p)
		}
		for _, p := range m.SkippedMains {
			note("main package %s looks like an example or a tool: no image is built for it", p)
		}
		for _, t := range m.Tags {
			add("tests behind the build tag %q (%s)", t, m.TagFiles[t])
		}
		for _, s := range m.Services {
			add("service %s for integration tests (go.mod requires %s)", s.Name, s.From)
		}
		if len(m.Services) > 0 && len(m.Tags) == 0 {
			note("go.mod requires clients of %s but no test file is behind a build tag: no step starts them; add `services:` to the step whose tests need them", serviceNames(m.Services))
		}
		if r.GolangciV1 {
			note("%s is a golangci-lint v1 configuration, which the golangci-lint v2 of the go-lint step refuses: convert it with `golangci-lint migrate`", r.GolangciConfig)
		}
		if !m.HasTests && len(m.Tags) == 0 {
			note("no Go tests found: the build-test stage has no coverage gate")
		}
	} else {
		note("no go.mod at the root: no Go lint, tests, image or security scans")
	}
	for _, p := range r.OtherModules {
		note("Go module in %s is not built (only the module at the root is)", p)
	}
	for _, d := range r.Terraform {
		add("Terraform in %s", d)
	}
	for _, d := range r.Charts {
		add("Helm chart %s", d)
	}
	for _, d := range r.Overlays {
		add("kustomize overlay %s", d)
	}
	for _, d := range r.Manifests {
		add("Kubernetes manifests %s", d)
	}
	for _, f := range r.Kyverno {
		add("Kyverno policy %s", f)
	}
	for _, f := range r.Rollouts {
		add("Argo Rollout %s", f)
	}
	for _, f := range r.AnalysisTemplates {
		add("Argo AnalysisTemplate %s", f)
	}
	for _, f := range r.Dockerfiles {
		add("Dockerfile %s", f)
		note("%s is not used: gantry builds the Go program into a distroless-style image itself, without a container engine", f)
	}
	for _, f := range r.Postman {
		add("Postman collection %s", f)
	}
	for _, f := range r.K6 {
		add("k6 script %s", f)
	}
	for _, f := range r.Rules {
		add("Prometheus rules %s", f)
	}
	if ms := g.o.Measured; ms != nil {
		if len(ms.FailedTests) > 0 {
			note("tests fail today, so the first run will fail in build-test until they are fixed: %s", strings.Join(ms.FailedTests, ", "))
		}
		if len(ms.Uncounted) > 0 && ms.Coverage != nil {
			note("the coverage init measured (%.1f%%) leaves out %s, whose tests failed before writing coverage: check the gate once they pass", *ms.Coverage, strings.Join(ms.Uncounted, ", "))
		}
		g.plan.Notes = append(g.plan.Notes, ms.Notes...)
	}
	if g.deployable() {
		note("stages 4 (deploy staging) and 5 (promote prod) are not generated by init yet: write them by hand from docs/environments.md and docs/rollouts.md (the payment example's .gantry/pipeline.yaml has both)")
	} else if len(r.Postman)+len(r.K6)+len(r.Rules) > 0 {
		note("Postman collections, k6 scripts and Prometheus rules run against a deployed service (stage 4), which needs a Helm chart or manifests")
	}
}

func serviceNames(ss []Service) string {
	var n []string
	for _, s := range ss {
		n = append(n, s.Name)
	}
	return strings.Join(n, ", ")
}

func (g *gen) deployable() bool {
	return len(g.r.Charts)+len(g.r.Manifests)+len(g.r.Overlays) > 0
}

func (g *gen) pipeline() {
	r := g.r
	name := g.pipelineName()
	branch := g.o.DefaultBranch
	if branch == "" {
		branch = "main"
	}
	g.comment("", "gantry pipeline for %s, written by `gantry init` from what the", name)
	g.line("# repository holds. Every step says which file it was made for; edit")
	g.line("# freely (`gantry validate` checks the file and the paths it names).")
	g.line("name: %s", q(name))
	g.line("")
	g.line("on:")
	g.line(`  push: {branches: ["**"]}`)
	g.line("  pull_request: {branches: [%s]}", q(branch))
	g.line("")
	g.line("# Images go to gantry's embedded OCI registry; set a registry host to")
	g.line("# push elsewhere.")
	g.line("registry: embedded")
	m := r.Module
	if m != nil {
		for _, p := range m.Mains {
			g.images = append(g.images, image{pkg: p})
		}
		many := len(g.images) > 1
		for i := range g.images {
			im := &g.images[i]
			im.build = stepName("image", im.pkg, many)
			im.push = stepName("push", im.pkg, many)
			im.name = path.Base(im.pkg)
			if im.pkg == "." {
				im.name = name
			}
		}
	}
	if len(g.images) > 0 {
		g.line("")
		g.line("secrets:")
		g.line("  # The signing key's password (unset: the key made on first use has")
		g.line("  # none); only the sign step, which lists it, sees it.")
		g.line("  COSIGN_PASSWORD: {env: COSIGN_PASSWORD}")
	}
	g.line("")
	g.line("stages:")
	g.commitStage()
	if m != nil {
		g.line("")
		g.buildStage()
		g.line("")
		g.securityStage()
	}
	if g.deployable() {
		g.line("")
		g.line("  # Stages 4 (deploy staging) and 5 (promote prod) are not generated by")
		g.line("  # init yet: see docs/environments.md and docs/rollouts.md (deploy,")
		g.line("  # load-test, newman, blue-green). The files they would use:")
		for _, p := range slices.Concat(r.Charts, r.Overlays, r.Manifests, r.Postman, r.K6, r.Rules, r.AnalysisTemplates) {
			g.comment("  ", "  %s", p)
		}
	}
	g.plan.Pipeline = []byte(g.b.String())
	g.companions()
}

func (g *gen) commitStage() {
	r := g.r
	g.line("  # Stage 1 — commit: lint, formatting, manifests, commit messages.")
	g.line("  # Gate: every check passes.")
	g.line("  - name: commit")
	g.line("    steps:")
	if r.Module != nil {
		cfg := "golangci-lint's default linters (no config file)"
		if r.GolangciConfig != "" {
			cfg = r.GolangciConfig
		} else if len(r.Module.Tags) > 0 {
			cfg = ".golangci.yml, written by init so tagged tests are linted"
		}
		g.comment("      ", "go.mod: lint the module with %s.", cfg)
		if h := g.o.Head; h != "" {
			g.comment("      ", "Only issues in code changed after %s, the commit `gantry init` saw,", short(h))
			g.line("      # fail: existing code is not judged yet. Remove new_from_rev to lint it all.")
			g.line("      - {name: go-lint, uses: golangci-lint, with: {new_from_rev: %s}}", q(h))
			g.relax("go-lint judges only code changed after %s (golangci-lint new_from_rev): run golangci-lint on the whole module and remove new_from_rev once it is clean", short(h))
		} else {
			g.line("      - {name: go-lint, uses: golangci-lint}")
		}
	}
	many := len(r.Terraform) > 1
	for _, d := range r.Terraform {
		g.comment("      ", "%s holds Terraform: formatting and tflint.", d)
		g.line("      - {name: %s, uses: terraform-fmt, with: {dir: %s}}", stepName("tf-fmt", d, many), q(d))
		g.line("      - {name: %s, uses: tflint, with: {dir: %s}}", stepName("tflint", d, many), q(d))
	}
	if g.deployable() {
		var what []string
		if len(r.Manifests) > 0 {
			what = append(what, "manifests in "+strings.Join(r.Manifests, ", "))
		}
		if len(r.Overlays) > 0 {
			what = append(what, "overlays "+strings.Join(r.Overlays, ", "))
		}
		if len(r.Charts) > 0 {
			what = append(what, "chart "+strings.Join(r.Charts, ", "))
		}
		g.comment("      ", "Kubernetes objects (%s) against the schemas.", strings.Join(what, "; "))
		g.line("      - name: manifests")
		g.line("        uses: kubeconform")
		g.line("        with:")
		if len(r.Manifests) > 0 {
			g.line("          paths: %s", list(r.Manifests))
		}
		if len(r.Overlays) > 0 {
			g.line("          kustomize: %s", list(envOrder(r.Overlays)))
		}
		if len(r.Charts) > 0 {
			var charts []string
			for _, c := range r.Charts {
				charts = append(charts, "{chart: "+q(c)+"}")
			}
			g.line("          helm: [%s]", strings.Join(charts, ", "))
		}
	}
	many = len(r.Charts) > 1
	for _, c := range r.Charts {
		g.comment("      ", "%s/Chart.yaml: lint the chart and render it.", c)
		g.line("      - {name: %s, uses: helm-lint, with: {chart: %s}}", stepName("chart-lint", c, many), q(c))
		g.line("      - {name: %s, uses: helm-template, with: {chart: %s}}", stepName("chart-render", c, many), q(c))
	}
	if h := g.o.Head; h != "" {
		g.comment("      ", "Conventional Commits messages of the commits after %s, the commit", short(h))
		g.line("      # `gantry init` saw (the history before it is not judged); remove")
		g.line("      # `from` once a conventional commit is on top, to lint each push's commits.")
		g.line("      - {name: commits, uses: commitlint, with: {from: %s}}", q(h))
		g.line("      # Then the next version.")
		g.relax("commits checks the messages of commits after %s only (commitlint from): the history before it is not judged; remove `from` once a conventional commit is on top", short(h))
	} else {
		g.line("      # Every commit: Conventional Commits messages, then the next version.")
		g.line("      - {name: commits, uses: commitlint}")
	}
	g.line("      - {name: version, uses: next-version}")
	g.line("    gate: all_passed")
}

// envRank orders overlays the way changes are promoted.
var envRank = map[string]int{"dev": 1, "development": 1, "test": 2, "qa": 2, "stage": 3, "staging": 3, "preprod": 4, "prod": 5, "production": 5}

func envOrder(dirs []string) []string {
	out := slices.Clone(dirs)
	slices.SortStableFunc(out, func(a, b string) int {
		ra, rb := envRank[path.Base(a)], envRank[path.Base(b)]
		if path.Dir(a) == path.Dir(b) && ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	return out
}

func (g *gen) buildStage() {
	m := g.r.Module
	g.line("  # Stage 2 — build & test: race-enabled tests with coverage, an image")
	g.line("  # of each program with SLSA provenance, pushed with the commit and")
	gate, gateWhy := g.coverageGate()
	if gate >= 0 {
		g.line("  # version as tags. Gate: tests pass, coverage >= %d%%.", gate)
	} else {
		g.line("  # version as tags. Gate: tests pass.")
	}
	g.line("  - name: build-test")
	g.line("    steps:")
	g.line("      # go.mod: the module's tests with the race detector.")
	g.line("      - {name: unit, uses: go-test, with: {race: true}}")
	gateStep := "unit"
	needs := []string{"unit"}
	if len(m.Tags) > 0 {
		var files []string
		for _, t := range m.Tags {
			files = append(files, m.TagFiles[t])
		}
		g.comment("      ", "Tests behind build tags (%s), coverage merged with unit's.", strings.Join(files, ", "))
		g.line("      - name: integration")
		g.line("        uses: go-test")
		g.line("        needs: [unit]")
		g.line("        with: {tags: %s, merge: [unit]}", list(m.Tags))
		if len(m.Services) > 0 {
			var from []string
			for _, s := range m.Services {
				from = append(from, s.From)
			}
			g.comment("        ", "go.mod requires %s.", strings.Join(from, ", "))
			var names []string
			for _, s := range m.Services {
				names = append(names, s.Name)
			}
			g.line("        services: %s", list(names))
		}
		gateStep = "integration"
		needs = append(needs, "integration")
	}
	for _, im := range g.images {
		g.comment("      ", "package main in %s: a distroless-style image named %s.", im.where(), im.name)
		with := g.imageWith(im)
		if with == "" {
			g.line("      - {name: %s, uses: image-build, needs: %s}", im.build, list(needs))
		} else {
			g.line("      - {name: %s, uses: image-build, needs: %s, with: {%s}}", im.build, list(needs), with)
		}
		g.line("      - name: %s", im.push)
		g.line("        uses: image-push")
		g.line("        needs: [%s]", im.build)
		g.line("        with:")
		if im.build != "image" {
			g.line("          from: %s", im.build)
		}
		g.line(`          tags: ["${git.sha}", "${stages.commit.steps.version.outputs.version}"]`)
	}
	for _, w := range gateWhy {
		g.comment("    ", "%s", w)
	}
	if gate >= 0 {
		g.line("    gate: steps.%s.outputs.coverage >= %d", gateStep, gate)
	}
	g.line("    on_failure: [{stop: true}]")
}

// coverageGate is the minimum coverage of the build-test gate (-1: no
// gate) and the comment lines saying where it comes from. With a
// measurement below the seed's 80 %, the gate is the measured coverage
// rounded down, so the repository passes today and coverage cannot fall.
func (g *gen) coverageGate() (int, []string) {
	m := g.r.Module
	if !m.HasTests && len(m.Tags) == 0 {
		return -1, nil
	}
	if !m.HasTests {
		// Only tagged tests: init cannot start their services to measure.
		return CoverageGate, nil
	}
	ms := g.o.Measured
	if ms == nil {
		g.relax("no coverage gate: init ran nothing (--no-measure); add `gate: steps.unit.outputs.coverage >= N` with the coverage of the first run")
		return -1, []string{"No coverage gate: `gantry init --no-measure` did not run the tests. Add", "gate: steps.unit.outputs.coverage >= N once the first run shows the coverage."}
	}
	if ms.Coverage == nil {
		g.relax("no coverage gate: %s", ms.CoverageNote)
		return -1, []string{"No coverage gate: init could not measure the coverage (" + ms.CoverageNote + ")."}
	}
	cov := *ms.Coverage
	if cov >= CoverageGate {
		return CoverageGate, []string{fmt.Sprintf("Coverage measured by `gantry init`: %.1f%%.", cov)}
	}
	gate := int(math.Floor(cov))
	g.relax("coverage gate at %d%%, the coverage init measured (%.1f%%), below the seed's %d%%: raise it as tests are added", gate, cov, CoverageGate)
	return gate, []string{
		fmt.Sprintf("Coverage measured by `gantry init`: %.1f%%, below the seed's %d%%: the", cov, CoverageGate),
		fmt.Sprintf("gate holds it there (a ratchet). Raise it as tests are added, up to %d.", CoverageGate),
	}
}

// imageWith returns the with: fields an image-build step needs beyond
// the kind's defaults (package ./cmd/X when cmd/ holds one directory,
// else .; the name from the package, or the directory for .).
func (g *gen) imageWith(im image) string {
	var fields []string
	if im.pkg != g.defaultPackage() {
		fields = append(fields, "package: "+q(im.pkg))
	}
	if im.pkg == "." {
		fields = append(fields, "name: "+q(im.name))
	}
	return strings.Join(fields, ", ")
}

// defaultPackage is image-build's default: ./cmd/X when cmd/ holds
// exactly one directory of main packages found, else ".".
func (g *gen) defaultPackage() string {
	var cmds []string
	for _, p := range slices.Concat(g.r.Module.Mains, g.r.Module.SkippedMains) {
		if strings.HasPrefix(p, "./cmd/") {
			cmds = appendOnce(cmds, strings.SplitN(strings.TrimPrefix(p, "./cmd/"), "/", 2)[0])
		}
	}
	if len(cmds) == 1 && slices.Contains(g.r.Module.Mains, "./cmd/"+cmds[0]) {
		return "./cmd/" + cmds[0]
	}
	return "."
}

func (g *gen) securityStage() {
	g.line("  # Stage 3 — security: known vulnerabilities (HIGH and CRITICAL fail")
	g.line("  # unless no fix has existed for 30 days; exceptions go in")
	g.line("  # .gantry/exceptions.yaml), SAST and secrets, a CycloneDX SBOM,")
	g.line("  # licences, and a signature over the image and every gate verdict.")
	g.line("  - name: security")
	g.line("    steps:")
	g.securityExceptions()
	if len(g.images) == 0 {
		g.line("      # No main package: the module's dependencies are scanned.")
		g.line("      - {name: trivy, uses: vuln-scan, with: {target: ., fail_on: [HIGH, CRITICAL], no_fix_older_than: 30d}}")
		g.sast()
		g.line("      - {name: sbom, uses: sbom, with: {target: .}}")
		g.line("      - {name: licenses, uses: license-check}")
	}
	many := len(g.images) > 1
	for _, im := range g.images {
		g.comment("      ", "The image of %s.", im.where())
		g.line("      - name: %s", stepName("trivy", im.pkg, many))
		g.line("        uses: vuln-scan")
		g.line("        with: {from: build-test/%s, fail_on: [HIGH, CRITICAL], no_fix_older_than: 30d}", im.push)
		if many {
			g.line("      - {name: %s, uses: sbom, with: {from: build-test/%s, push: build-test/%s}}", stepName("sbom", im.pkg, many), im.build, im.push)
		}
	}
	if len(g.images) > 0 {
		g.line("      # The module: source analysis, secrets, dependency licences.")
		g.sast()
		if !many {
			g.line("      - {name: sbom, uses: sbom}")
		}
		g.line("      - {name: licenses, uses: license-check}")
	}
	for _, im := range g.images {
		scan, sbom := stepName("trivy", im.pkg, many), stepName("sbom", im.pkg, many)
		g.comment("      ", "Sign the image of %s; attest its provenance, SBOM and gate verdicts.", im.where())
		g.line("      - name: %s", stepName("sign", im.pkg, many))
		g.line("        uses: sign")
		g.line("        after: %s", list([]string{scan, "sast", sbom, "licenses"}))
		if many {
			g.line("        with: {push: build-test/%s, provenance: build-test/%s}", im.push, im.build)
		}
		g.line("        secrets: [COSIGN_PASSWORD]")
	}
	g.line("    # To be told of failures, declare a webhook secret and a notify target")
	g.line("    # (notify: {slack: {webhook: \"${secrets.SLACK_WEBHOOK_URL}\"}}), then:")
	g.line("    # on_failure: [{notify: slack}]")
}

// sast writes the sast step; rules gosec found in the code init saw are
// excluded, each named in a comment and the report.
func (g *gen) sast() {
	ms := g.o.Measured
	if ms == nil || len(ms.Gosec) == 0 {
		g.line("      - {name: sast, uses: sast}")
		return
	}
	rules := make([]string, 0, len(ms.Gosec))
	for r := range ms.Gosec {
		rules = append(rules, r)
	}
	slices.Sort(rules)
	var counts []string
	for _, r := range rules {
		counts = append(counts, fmt.Sprintf("%s (%d)", r, ms.Gosec[r]))
	}
	g.comment("      ", "gosec found in the code `gantry init` saw: %s.", strings.Join(counts, ", "))
	g.line("      # Those rules are excluded until that code is fixed (or each finding")
	g.line("      # carries a `gantry:ignore RULE -- reason` comment); remove a rule from")
	g.line("      # exclude_rules to enforce it again. Every other rule fails.")
	g.line("      - {name: sast, uses: sast, with: {exclude_rules: %s}}", list(rules))
	g.relax("sast excludes the gosec rules %s, found in the existing code: fix or annotate the findings, then remove each rule from exclude_rules", strings.Join(counts, ", "))
}

// securityExceptions records the vulnerabilities and licence violations
// init measured as exceptions that expire, in .gantry/exceptions.yaml and
// .gantry/licenses.yaml (never over existing files: then the report
// lists them).
func (g *gen) securityExceptions() {
	ms := g.o.Measured
	if ms == nil {
		return
	}
	today := g.o.Today.Format("2006-01-02")
	expires := g.o.Today.AddDate(0, 0, ExceptionDays).Format("2006-01-02")
	if len(ms.Vulns) > 0 {
		var ids []string
		for _, v := range ms.Vulns {
			ids = append(ids, v.ID+" in "+v.Package)
		}
		if g.r.HasExceptions {
			g.plan.Notes = append(g.plan.Notes, clean(fmt.Sprintf("known vulnerabilities fail the security stage: %s; fix them or add exceptions to the existing .gantry/exceptions.yaml", strings.Join(ids, ", "))))
		} else {
			var b strings.Builder
			b.WriteString("# Risk exceptions recorded by `gantry init` on " + today + ": the known\n")
			b.WriteString("# vulnerabilities of the dependencies when gantry adopted the repository.\n")
			fmt.Fprintf(&b, "# Each expires after %d days: upgrade the package to the fixed version\n", ExceptionDays)
			b.WriteString("# and delete its entry. See docs/steps/vuln-scan.md (Risk exceptions).\n")
			b.WriteString("exceptions:\n")
			for _, v := range ms.Vulns {
				fix := "no fixed version yet"
				if v.Fixed != "" {
					fix = "fixed in " + v.Fixed
				}
				fmt.Fprintf(&b, "  - id: %s\n", q(v.ID))
				fmt.Fprintf(&b, "    package: %s\n", q(v.Package))
				fmt.Fprintf(&b, "    justification: %s\n", q(fmt.Sprintf("present when gantry init adopted the repository (%s %s, %s)", v.Package, v.Version, fix)))
				fmt.Fprintf(&b, "    owner: %s\n", q(g.o.Owner))
				fmt.Fprintf(&b, "    expires: %s\n", expires)
			}
			g.plan.Companions = append(g.plan.Companions, File{Path: ".gantry/exceptions.yaml", Content: []byte(b.String())})
			g.relax("%d known vulnerabilities recorded as exceptions expiring on %s in .gantry/exceptions.yaml (%s): upgrade and delete each entry", len(ms.Vulns), expires, strings.Join(ids, ", "))
		}
	}
	if len(ms.Licenses) > 0 {
		mods := map[string][]string{}
		var order []string
		for _, v := range ms.Licenses {
			if _, ok := mods[v.Module]; !ok {
				order = append(order, v.Module)
			}
			mods[v.Module] = append(mods[v.Module], v.Rule)
		}
		var what []string
		for _, m := range order {
			what = append(what, m+" ("+strings.Join(mods[m], ", ")+")")
		}
		if g.r.HasLicensePolicy {
			g.plan.Notes = append(g.plan.Notes, clean(fmt.Sprintf("licences the policy refuses fail the security stage: %s; replace the modules or allow them in the existing .gantry/licenses.yaml", strings.Join(what, ", "))))
		} else {
			var b strings.Builder
			b.WriteString("# Licence policy written by `gantry init` on " + today + ": the default\n")
			b.WriteString("# rules (copyleft, unknown), with the dependencies that broke them when\n")
			fmt.Fprintf(&b, "# gantry adopted the repository allowed for %d days. Replace each module\n", ExceptionDays)
			b.WriteString("# (or settle its licence) and delete its entry. See docs/steps/license-check.md.\n")
			b.WriteString("allow:\n")
			for _, m := range order {
				fmt.Fprintf(&b, "  - module: %s\n", q(m))
				fmt.Fprintf(&b, "    reason: %s\n", q("broke "+strings.Join(mods[m], ", ")+" when gantry init adopted the repository"))
				fmt.Fprintf(&b, "    expires: %s\n", expires)
			}
			g.plan.Companions = append(g.plan.Companions, File{Path: license.PolicyFile, Content: []byte(b.String())})
			g.relax("licences: %s allowed until %s in %s: replace them and delete each entry", strings.Join(what, ", "), expires, license.PolicyFile)
		}
	}
}

// companions adds the config files the pipeline needs and the
// repository lacks.
func (g *gen) companions() {
	m := g.r.Module
	if m == nil || g.r.GolangciConfig != "" || len(m.Tags) == 0 {
		return
	}
	var b strings.Builder
	b.WriteString("# golangci-lint v2 configuration written by `gantry init`: the default\n")
	b.WriteString("# linters, with the build tags of the tagged tests so they are linted too.\n")
	b.WriteString("version: \"2\"\n\nrun:\n  build-tags:\n")
	for _, t := range m.Tags {
		fmt.Fprintf(&b, "    - %s\n", q(t))
	}
	b.WriteString("\nlinters:\n  default: standard\n")
	g.plan.Companions = append(g.plan.Companions, File{Path: ".golangci.yml", Content: []byte(b.String())})
}
