// Package helmtemplate is the `helm-template` step kind: a chart rendered
// through the Helm SDK, stored as an artifact and validated like the
// kubeconform kind does.
package helmtemplate

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

// Config is the `with:` block.
type Config struct {
	checkstep.Gate `yaml:",inline"`
	Chart          string   `yaml:"chart"`
	Values         []string `yaml:"values"`
	Set            []string `yaml:"set"`
	// Release and Namespace default to release-name and default.
	Release   string `yaml:"release"`
	Namespace string `yaml:"namespace"`
	// KubeVersion is the cluster version the templates see.
	KubeVersion string `yaml:"kube_version"`
	// Validate sends the rendering to schema validation (default true).
	Validate *bool `yaml:"validate"`
	// UnknownKinds is reject (default) or skip.
	UnknownKinds string `yaml:"unknown_kinds"`
}

// Kind is the step kind.
var Kind = step.Kind{
	Name:    "helm-template",
	Gate:    "lint",
	Summary: "render a Helm chart through the Helm SDK and validate the manifests offline",
	Outputs: append([]string{"documents"}, checkstep.Outputs...),
	New: func(in step.Inputs) (step.Step, error) {
		var c Config
		if err := in.Decode(&c); err != nil {
			return nil, err
		}
		if c.Chart == "" {
			return nil, in.Errorf("chart", "helm-template needs chart (the chart directory)")
		}
		switch c.UnknownKinds {
		case "", string(manifests.RejectUnknown), string(manifests.SkipUnknown):
		default:
			return nil, in.Errorf("unknown_kinds", "unknown_kinds must be reject or skip, not %q", c.UnknownKinds)
		}
		if err := c.Check(in); err != nil {
			return nil, err
		}
		return &Step{cfg: c}, nil
	},
}

// Step renders a chart.
type Step struct{ cfg Config }

var (
	_ step.Step       = (*Step)(nil)
	_ step.PathInputs = (*Step)(nil)
	_ step.Cacheable  = (*Step)(nil)
)

// Run renders, stores helm-template.yaml and validates.
func (s *Step) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	c := s.cfg
	out, r, err := helmcheck.Template(ctx, env.Dir, c.Chart, helmcheck.Options{ValuesFiles: c.Values, Set: c.Set,
		ReleaseName: c.Release, Namespace: c.Namespace, KubeVersion: c.KubeVersion})
	if err != nil {
		return nil, err
	}
	reports := []*findings.Report{r}
	docs := 0
	if len(r.Findings) == 0 {
		if env.Artifacts != nil {
			if err := env.Artifacts.PutBytes(ctx, "helm-template.yaml", out, "application/yaml"); err != nil {
				return nil, err
			}
		}
		if c.Validate == nil || *c.Validate {
			reg, err := manifests.NewRegistry()
			if err != nil {
				return nil, err
			}
			unknown := manifests.RejectUnknown
			if c.UnknownKinds == string(manifests.SkipUnknown) {
				unknown = manifests.SkipUnknown
			}
			v := &manifests.Validator{Registry: reg, Unknown: unknown}
			vr, st, err := v.Check(ctx, env.Dir, manifests.Input{Rendered: []manifests.Rendered{{Name: filepath.ToSlash(c.Chart) + " (helm template)", Data: out}}})
			if err != nil {
				return nil, err
			}
			docs = st.Documents
			reports = append(reports, vr)
		}
	}
	return checkstep.Finish(ctx, env, Kind.Name, c.Gate, map[string]any{"documents": docs}, reports...)
}

// CacheKey covers the chart and values files.
func (s *Step) CacheKey(context.Context, *step.Env) (step.CacheKey, error) {
	files := append([]string{filepath.Join(s.cfg.Chart, "**")}, s.cfg.Values...)
	return step.CacheKey{Files: files, Extra: map[string]string{"helm": helmcheck.SDKVersion, "kubernetes": manifests.KubernetesVersion}}, nil
}

// Paths names the chart and its values files.
func (s *Step) Paths() []step.PathRef {
	refs := []step.PathRef{{Field: "chart", Value: s.cfg.Chart, Type: step.PathChart}}
	for i, v := range s.cfg.Values {
		refs = append(refs, step.PathRef{Field: fmt.Sprintf("values.%d", i), Value: v, Type: step.PathFile})
	}
	return refs
}
