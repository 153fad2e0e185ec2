// Package chart renders a repository's Helm chart with the Helm SDK and
// resolves the pod templates of its workloads (apps/v1 Deployment and
// StatefulSet, Argo Rollouts Rollout) into runtime.Workloads: what the
// local runtime runs, with the image pinned to the digest the pipeline
// pushed.
//
// The pinning rule: when the chart's values hold an `image` map with a
// `digest` key (the common image.repository/image.digest layout), the
// render sets image.repository and image.digest to the pinned reference.
// Then, in the rendered objects, the first container of every workload is
// the application and runs the pinned reference whatever its image says;
// another container (a sidecar) runs the pinned reference when its image
// names the same repository, and otherwise must already name its image by
// digest. A tag never reaches the runtime.
//
// A rendered Rollout's spec.strategy.blueGreen, and the AnalysisTemplates
// it names, are read into Result.BlueGreen (rollout.go, docs/rollouts.md).
package chart

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"sigs.k8s.io/yaml"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// Errors a render may wrap; an *Error names the file and field.
var (
	// ErrRender: the chart does not load or its templates do not render.
	ErrRender = errors.New("chart does not render")
	// ErrNoWorkload: the rendered chart holds no Deployment, StatefulSet
	// or Rollout.
	ErrNoWorkload = errors.New("no workload in the chart")
	// ErrNoImage: a container has no image.
	ErrNoImage = errors.New("container has no image")
	// ErrNotPinned: a container's image is not a reference by digest.
	ErrNotPinned = errors.New("image is not pinned by digest")
	// ErrUnknownPort: a probe names a port the container does not declare.
	ErrUnknownPort = errors.New("unknown named port")
	// ErrUnsupported: the pod template uses something the local runtime
	// cannot run yet (init containers, gRPC probes, a Rollout's
	// workloadRef).
	ErrUnsupported = errors.New("not supported on the local runtime yet")
	// ErrReference: env or envFrom names a ConfigMap, or a key, that the
	// chart does not render.
	ErrReference = errors.New("reference to something the chart does not render")
)

// Error is a problem in one rendered object: File is the template it came
// from, relative to the repository (deploy/chart/templates/rollout.yaml),
// Field the path inside the object.
// Line and Column, when known, are the field's position in the rendered
// file.
type Error struct {
	File   string
	Line   int
	Column int
	Field  string
	Err    error
}

func (e *Error) Error() string {
	where := e.File
	if e.Line > 0 {
		where = fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Column)
	}
	if e.Field == "" {
		return where + ": " + e.Err.Error()
	}
	return where + ": " + e.Field + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Options say how to render.
type Options struct {
	// ValuesFiles are values files relative to the repository, applied in
	// order after the chart's values.yaml.
	ValuesFiles []string
	// Set overrides values by dotted path (see ParseSetPath), after the
	// files.
	Set map[string]any
	// Image is the reference to run, REPO@sha256:...; "" leaves the
	// chart's images, which must then be by digest.
	Image string
	// ReleaseName (default: the environment's name or "release-name") and
	// Namespace (default "default") of the rendered release.
	ReleaseName string
	Namespace   string
	// PortEnv is copied into every workload (runtime.Workload.PortEnv).
	PortEnv string
}

// Result is a rendered chart, resolved.
type Result struct {
	Workloads []runtime.Workload
	// Notes say what was left out and why (a Secret the chart does not
	// render, a field the local runtime has no value for), for the step
	// log.
	Notes []string
	// Manifests are the rendered templates by repository path.
	Manifests map[string]string
	// BlueGreen is the rendered Rollout's spec.strategy.blueGreen, with
	// the AnalysisTemplates it names parsed from the rendered manifests;
	// nil when the chart renders no Rollout. Docs: docs/rollouts.md.
	BlueGreen *runtime.BlueGreen
}

// Render renders the chart at chartDir (relative to repo) and resolves
// its workloads.
func Render(ctx context.Context, repo, chartDir string, o Options) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	chartDir = filepath.ToSlash(path.Clean(filepath.ToSlash(chartDir)))
	ch, err := loader.Load(filepath.Join(repo, filepath.FromSlash(chartDir)))
	if err != nil {
		return nil, &Error{File: chartDir, Err: fmt.Errorf("%w: load: %w", ErrRender, err)}
	}
	// The files and set: apply over the chart's values.yaml, so that a
	// set: into a value the chart holds as a string is refused here
	// (Helm would only print a warning); a null still deletes a default.
	vals := mergeValues(nil, ch.Values)
	for _, f := range o.ValuesFiles {
		data, err := os.ReadFile(filepath.Join(repo, filepath.FromSlash(f)))
		if err != nil {
			return nil, fmt.Errorf("read values file: %w", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(data, &m); err != nil {
			return nil, &Error{File: f, Err: fmt.Errorf("%w: values file: %w", ErrRender, err)}
		}
		vals = mergeValues(vals, m)
	}
	for _, k := range slices.Sorted(mapKeys(o.Set)) {
		if err := SetValue(vals, k, o.Set[k]); err != nil {
			return nil, err
		}
	}
	var pin *name.Digest
	if o.Image != "" {
		d, err := name.NewDigest(o.Image)
		if err != nil {
			return nil, fmt.Errorf("%w: %q is not REPO@sha256:...: %w", ErrNotPinned, o.Image, err)
		}
		pin = &d
		if img, ok := Lookup(ch.Values, "image"); ok {
			if m, ok := img.(map[string]any); ok {
				if _, ok := m["digest"]; ok {
					_ = SetValue(vals, "image.repository", d.Context().Name())
					_ = SetValue(vals, "image.digest", d.DigestStr())
				}
			}
		}
	}
	release := o.ReleaseName
	if release == "" {
		release = "release-name"
	}
	ns := o.Namespace
	if ns == "" {
		ns = "default"
	}
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: release, Namespace: ns, Revision: 1, IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, &Error{File: chartDir, Err: fmt.Errorf("%w: values: %w", ErrRender, err)}
	}
	out, err := engine.Render(ch, rv)
	if err != nil {
		// Helm names templates chart-name/templates/x.yaml:LINE:COL;
		// say where they are in the repository.
		msg := strings.NewReplacer(ch.Name()+"/templates/", chartDir+"/templates/", ch.Name()+"/charts/", chartDir+"/charts/").Replace(err.Error())
		return nil, &Error{File: chartDir, Err: fmt.Errorf("%w: %s", ErrRender, msg)}
	}
	objs, manifests, err := decodeManifests(out, ch.Name(), chartDir)
	if err != nil {
		return nil, err
	}
	res, err := resolve(&extractor{objs: objs, pin: pin, ns: ns, portEnv: o.PortEnv})
	if err != nil {
		return nil, err
	}
	res.Manifests = manifests
	return res, nil
}

// resolve turns the rendered objects into workloads and the Rollout's
// strategy.
func resolve(x *extractor) (*Result, error) {
	if err := x.run(); err != nil {
		return nil, err
	}
	bg, err := x.blueGreen()
	if err != nil {
		return nil, err
	}
	return &Result{Workloads: x.workloads, Notes: x.notes, BlueGreen: bg}, nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
