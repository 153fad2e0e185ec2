// Package kubeconform is the `kubeconform` step kind: Kubernetes manifests
// (plain files, kustomize overlays, Helm charts) validated offline against
// the schemas of Kubernetes v1.31.4 and of known CRDs.
package kubeconform

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/helmcheck"
	"github.com/gantry-ci/gantry/internal/manifests"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/checkstep"
)

// Chart is a Helm chart rendered and validated.
type Chart struct {
	Chart  string   `yaml:"chart"`
	Values []string `yaml:"values"`
	Set    []string `yaml:"set"`
}

// Config is the `with:` block.
type Config struct {
	checkstep.Gate `yaml:",inline"`
	// Paths are manifest files or directories.
	Paths []string `yaml:"paths"`
	// Kustomize are overlay directories built in-process.
	Kustomize []string `yaml:"kustomize"`
	// Helm are charts rendered with the Helm SDK.
	Helm []Chart `yaml:"helm"`
	// CRDs are extra CustomResourceDefinition files.
	CRDs []string `yaml:"crds"`
	// UnknownKinds is reject (default) or skip.
	UnknownKinds string `yaml:"unknown_kinds"`
	// SkipKinds are never validated.
	SkipKinds []string `yaml:"skip_kinds"`
}

// Options turns the config into a validator policy.
func (c Config) policy() manifests.UnknownKinds {
	if c.UnknownKinds == string(manifests.SkipUnknown) {
		return manifests.SkipUnknown
	}
	return manifests.RejectUnknown
}

// Kind is the step kind.
var Kind = step.Kind{
	Name:    "kubeconform",
	Gate:    "lint",
	Summary: "validate Kubernetes manifests, kustomize overlays and Helm renderings offline (Kubernetes " + manifests.KubernetesVersion + " + CRD schemas)",
	Outputs: append([]string{"documents", "valid", "skipped"}, checkstep.Outputs...),
	New: func(in step.Inputs) (step.Step, error) {
		var c Config
		if err := in.Decode(&c); err != nil {
			return nil, err
		}
		if err := c.Check(in); err != nil {
			return nil, err
		}
		switch c.UnknownKinds {
		case "", string(manifests.RejectUnknown), string(manifests.SkipUnknown):
		default:
			return nil, in.Errorf("unknown_kinds", "unknown_kinds must be reject or skip, not %q", c.UnknownKinds)
		}
		for i, h := range c.Helm {
			if h.Chart == "" {
				return nil, in.Errorf(fmt.Sprintf("helm.%d", i), "helm entry needs chart")
			}
		}
		if len(c.Paths)+len(c.Kustomize)+len(c.Helm) == 0 {
			c.Paths = []string{"."}
		}
		return &Step{cfg: c}, nil
	},
}

// Step validates manifests.
type Step struct{ cfg Config }

var (
	_ step.Step       = (*Step)(nil)
	_ step.PathInputs = (*Step)(nil)
	_ step.Cacheable  = (*Step)(nil)
)

// Run renders what needs rendering and validates every document.
func (s *Step) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	res, reports, err := Validate(ctx, env.Dir, s.cfg)
	if err != nil {
		return nil, err
	}
	return checkstep.Finish(ctx, env, Kind.Name, s.cfg.Gate,
		map[string]any{"documents": res.Documents, "valid": res.Valid, "skipped": res.Skipped}, reports...)
}

// Validate runs the check outside a pipeline too (gantry check).
func Validate(ctx context.Context, dir string, c Config) (manifests.Stats, []*findings.Report, error) {
	reg, err := manifests.NewRegistry()
	if err != nil {
		return manifests.Stats{}, nil, err
	}
	in := manifests.Input{Paths: c.Paths, Kustomize: c.Kustomize, CRDs: c.CRDs}
	var reports []*findings.Report
	for _, h := range c.Helm {
		out, r, err := helmcheck.Template(ctx, dir, h.Chart, helmcheck.Options{ValuesFiles: h.Values, Set: h.Set})
		if err != nil {
			return manifests.Stats{}, nil, err
		}
		if len(r.Findings) > 0 {
			reports = append(reports, r)
			continue
		}
		in.Rendered = append(in.Rendered, manifests.Rendered{Name: filepath.ToSlash(h.Chart) + " (helm template)", Data: out})
	}
	v := &manifests.Validator{Registry: reg, Unknown: c.policy(), SkipKinds: c.SkipKinds}
	r, st, err := v.Check(ctx, dir, in)
	if err != nil {
		return manifests.Stats{}, nil, err
	}
	return st, append([]*findings.Report{r}, reports...), nil
}

// CacheKey covers YAML, JSON, templates and helpers under the
// configured paths.
func (s *Step) CacheKey(context.Context, *step.Env) (step.CacheKey, error) {
	var files []string
	add := func(dir string) {
		for _, p := range []string{"**/*.yaml", "**/*.yml", "**/*.json", "**/*.tpl", "**/kustomization"} {
			files = append(files, filepath.Join(dir, p))
		}
	}
	for _, p := range s.cfg.Paths {
		add(p)
	}
	for _, k := range s.cfg.Kustomize {
		// Overlays reach into their bases; key on the whole parent tree.
		add(filepath.Dir(filepath.Dir(k)))
	}
	for _, h := range s.cfg.Helm {
		add(h.Chart)
		files = append(files, h.Values...)
	}
	files = append(files, s.cfg.CRDs...)
	return step.CacheKey{Files: files, Extra: map[string]string{"kubernetes": manifests.KubernetesVersion, "validator": "gantry-manifests/1"}}, nil
}

// Paths names the manifests, overlays, charts, values and CRD files.
func (s *Step) Paths() []step.PathRef {
	var refs []step.PathRef
	for i, p := range s.cfg.Paths {
		refs = append(refs, step.PathRef{Field: fmt.Sprintf("paths.%d", i), Value: p, Type: step.PathAny})
	}
	for i, p := range s.cfg.Kustomize {
		refs = append(refs, step.PathRef{Field: fmt.Sprintf("kustomize.%d", i), Value: p, Type: step.PathKustomization})
	}
	for i, h := range s.cfg.Helm {
		refs = append(refs, step.PathRef{Field: fmt.Sprintf("helm.%d.chart", i), Value: h.Chart, Type: step.PathChart})
		for j, v := range h.Values {
			refs = append(refs, step.PathRef{Field: fmt.Sprintf("helm.%d.values.%d", i, j), Value: v, Type: step.PathFile})
		}
	}
	for i, p := range s.cfg.CRDs {
		refs = append(refs, step.PathRef{Field: fmt.Sprintf("crds.%d", i), Value: p, Type: step.PathAny})
	}
	return refs
}
