// Package helmcheck lints and renders Helm charts through the Helm SDK
// (helm lint, helm template), so no helm binary is needed. Rendered
// manifests go on to the manifests package for schema validation.
package helmcheck

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/lint/support"

	"github.com/gantry-ci/gantry/internal/findings"
)

// Tool names.
const (
	LintTool     = "helm-lint"
	TemplateTool = "helm-template"
)

// RuleRender marks a chart that does not render.
const RuleRender = "helm-template"

// Options are the chart's values and release settings.
type Options struct {
	// ValuesFiles are extra values files (-f), relative to the checked
	// directory.
	ValuesFiles []string
	// Set are --set values (key=value).
	Set []string
	// ReleaseName and Namespace of the rendered release (defaults
	// "release-name" and "default", as helm template uses).
	ReleaseName string
	Namespace   string
	// KubeVersion is the cluster version the templates see.
	KubeVersion string
	// Strict makes lint warnings fail (helm lint --strict).
	Strict bool
}

func (o Options) values(dir string) (map[string]any, error) {
	vo := values.Options{Values: o.Set}
	for _, f := range o.ValuesFiles {
		vo.ValueFiles = append(vo.ValueFiles, filepath.Join(dir, f))
	}
	v, err := vo.MergeValues(getter.Providers{})
	if err != nil {
		return nil, fmt.Errorf("read chart values: %w", err)
	}
	return v, nil
}

var lintLocation = regexp.MustCompile(`([\w./-]+\.(?:yaml|yml|tpl|txt|json)):(\d+)(?::(\d+))?`)

// Lint runs helm lint on the chart at dir/chartPath. Each lint message
// becomes a finding: errors as errors, warnings as warnings (errors with
// Strict), info as notes.
func Lint(ctx context.Context, dir, chartPath string, o Options) (*findings.Report, error) {
	r := &findings.Report{Tool: LintTool, Version: chartutil.DefaultCapabilities.HelmVersion.Version, InfoURI: "https://helm.sh/docs/helm/helm_lint/"}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	vals, err := o.values(dir)
	if err != nil {
		return nil, err
	}
	l := action.NewLint()
	l.Strict = o.Strict
	l.Namespace = cmpOr(o.Namespace, "default")
	if o.KubeVersion != "" {
		kv, err := chartutil.ParseKubeVersion(o.KubeVersion)
		if err != nil {
			return nil, fmt.Errorf("kube version %q: %w", o.KubeVersion, err)
		}
		l.KubeVersion = kv
	}
	abs := filepath.Join(dir, chartPath)
	res := l.Run([]string{abs}, vals)
	for _, m := range res.Messages {
		f := findings.Finding{File: relPath(dir, filepath.Join(abs, m.Path)), Rule: "helm-lint", Message: m.Err.Error()}
		switch m.Severity {
		case support.ErrorSev:
			f.Severity = findings.Error
		case support.WarningSev:
			f.Severity = findings.Warning
			if o.Strict {
				f.Severity = findings.Error
			}
		default:
			f.Severity = findings.Note
		}
		locate(&f, dir, abs)
		r.Add(f)
	}
	// Errors that carry no message (a chart that cannot be loaded).
	if len(res.Messages) == 0 {
		for _, e := range res.Errors {
			r.Add(findings.Finding{File: filepath.ToSlash(chartPath), Rule: "helm-lint", Severity: findings.Error, Message: e.Error()})
		}
	}
	return r, nil
}

// locate turns "templates/x.yaml:12:3: msg" inside a lint message into a
// file and line.
func locate(f *findings.Finding, dir, chartAbs string) {
	m := lintLocation.FindStringSubmatch(f.Message)
	if m == nil {
		return
	}
	name := m[1]
	// Template names start with the chart name: "payment/templates/x.yaml".
	if i := strings.Index(name, "templates/"); i >= 0 {
		name = name[i:]
	}
	cand := filepath.Join(chartAbs, name)
	if _, err := os.Stat(cand); err != nil {
		return
	}
	f.File = relPath(dir, cand)
	if m[2] != "" {
		f.Line, _ = strconv.Atoi(m[2])
	}
	if m[3] != "" {
		f.Column, _ = strconv.Atoi(m[3])
	}
}

func relPath(dir, p string) string {
	if rel, err := filepath.Rel(dir, p); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(rel)
	}
	return filepath.ToSlash(p)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Template renders the chart at dir/chartPath as `helm template` does
// (client-only dry-run install, hooks included, tests excluded) and
// returns the manifests as one YAML stream. A chart that fails to load or
// render yields a finding in the returned report instead of an error.
func Template(ctx context.Context, dir, chartPath string, o Options) ([]byte, *findings.Report, error) {
	r := &findings.Report{Tool: TemplateTool, Version: chartutil.DefaultCapabilities.HelmVersion.Version, InfoURI: "https://helm.sh/docs/helm/helm_template/"}
	vals, err := o.values(dir)
	if err != nil {
		return nil, nil, err
	}
	ch, err := loader.Load(filepath.Join(dir, chartPath))
	if err != nil {
		r.Add(findings.Finding{File: filepath.ToSlash(chartPath), Rule: RuleRender, Severity: findings.Error, Message: "load chart: " + err.Error()})
		return nil, r, nil
	}
	inst := action.NewInstall(&action.Configuration{})
	inst.DryRun = true
	inst.DryRunOption = "client"
	inst.ClientOnly = true
	inst.Replace = true
	inst.IncludeCRDs = true
	inst.DisableHooks = false
	inst.ReleaseName = cmpOr(o.ReleaseName, "release-name")
	inst.Namespace = cmpOr(o.Namespace, "default")
	if o.KubeVersion != "" {
		kv, err := chartutil.ParseKubeVersion(o.KubeVersion)
		if err != nil {
			return nil, nil, fmt.Errorf("kube version %q: %w", o.KubeVersion, err)
		}
		inst.KubeVersion = kv
	}
	rel, err := inst.RunWithContext(ctx, ch, vals)
	if err != nil {
		f := findings.Finding{File: filepath.ToSlash(chartPath), Rule: RuleRender, Severity: findings.Error, Message: err.Error()}
		locate(&f, dir, filepath.Join(dir, chartPath))
		r.Add(f)
		return nil, r, nil
	}
	var b strings.Builder
	b.WriteString(rel.Manifest)
	for _, h := range rel.Hooks {
		if strings.Contains(h.Path, "/tests/") {
			continue
		}
		fmt.Fprintf(&b, "\n---\n# Source: %s\n%s", h.Path, h.Manifest)
	}
	return []byte(b.String()), r, nil
}

// SDKVersion is the Helm SDK version gantry is built with (go.mod's
// helm.sh/helm/v3; a test keeps them in step). Step caches key on it.
const SDKVersion = "v3.19.0"
