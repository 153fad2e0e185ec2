package deploy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gantry-ci/gantry/internal/chart"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/spec"
)

// Request says what to deploy where; Build turns it into the
// runtime.DeployRequest the deploy kind and `gantry deploy` send.
type Request struct {
	// Dir is the repository the environment's files are read from.
	Dir         string
	Environment *spec.Environment
	// Image is the reference to run, REPO@sha256:...
	Image string
	// Expr is what the environment's env templates see
	// (spec.EnvironmentExprEnv).
	Expr map[string]any
	// DefaultKey verifies the evidence when the environment names no key:
	// the key the run signed with.
	DefaultKey string
	// StateDir, when set, may hold an operator's copy of a policy file:
	// STATE_DIR/policies/PATH is read instead of the repository's PATH
	// (as STATE_DIR/approvers.yaml wins over the repository's), so a key
	// can be trusted without changing the checkout.
	StateDir string
	Who      string
	Run      int64
	Reason   string
}

// Built is a request ready to send, with what the render left out.
type Built struct {
	Request runtime.DeployRequest
	// Notes say what the chart's pod template asked for that the local
	// runtime skips (Secrets not in the chart, ...).
	Notes []string
	// BlueGreen is the strategy of the chart's Argo Rollout (nil: the
	// chart renders none), for uses: blue-green.
	BlueGreen *runtime.BlueGreen
}

// Build renders the environment's chart with the image pinned, resolves
// its workloads, adds the environment's env and reads its files in.
func Build(ctx context.Context, r Request) (*Built, error) {
	e := r.Environment
	set, err := e.SetValues()
	if err != nil {
		return nil, err
	}
	res, err := chart.Render(ctx, r.Dir, e.Chart, chart.Options{
		ValuesFiles: spec.Files(e.Values),
		Set:         set,
		Image:       r.Image,
		ReleaseName: e.Name,
		Namespace:   e.Name,
		PortEnv:     e.PortEnv,
	})
	if err != nil {
		return nil, fmt.Errorf("environment %s: render %s: %w", e.Name, e.Chart, err)
	}
	extra, err := e.ResolveEnv(r.Expr)
	if err != nil {
		return nil, err
	}
	for i := range res.Workloads {
		res.Workloads[i].Env = overlay(res.Workloads[i].Env, extra)
	}
	es, notes, err := AdmissionSpec(r)
	if err != nil {
		return nil, err
	}
	es.Services = spec.Files(e.Services)
	return &Built{
		Request: runtime.DeployRequest{
			Environment: e.Name, Workloads: res.Workloads, Spec: es,
			Who: r.Who, Run: r.Run, Reason: r.Reason,
		},
		Notes:     append(res.Notes, notes...),
		BlueGreen: res.BlueGreen,
	}, nil
}

// overlay adds extra (KEY=VALUE) to env, a key of extra replacing the
// same key of env in place.
func overlay(env, extra []string) []string {
	out := slices.Clone(env)
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		i := slices.IndexFunc(out, func(e string) bool { return strings.HasPrefix(e, k+"=") })
		if i >= 0 {
			out[i] = kv
		} else {
			out = append(out, kv)
		}
	}
	return out
}

// AdmissionSpec reads what the environment demands of an image and the
// files it names (policies, the serve process's key path, alert rules):
// the runtime.EnvironmentSpec without the local runtime's services.
func AdmissionSpec(r Request) (runtime.EnvironmentSpec, []string, error) {
	e := r.Environment
	es := runtime.EnvironmentSpec{
		Require: spec.Files(e.Require),
		Key:     e.Key,
	}
	if es.Key == "" {
		es.Key = r.DefaultKey
	} else if !strings.Contains(es.Key, "://") {
		// The serve process verifies; it does not run in the repository.
		es.Key = filepath.Join(r.Dir, filepath.FromSlash(es.Key))
	}
	var notes []string
	var err error
	if es.Policies, notes, err = readPolicies(r.Dir, r.StateDir, spec.Files(e.Policy)); err != nil {
		return es, nil, fmt.Errorf("environment %s: policy: %w", e.Name, err)
	}
	if pr := e.Prometheus; pr != nil {
		es.PrometheusURL = pr.URL
		if es.AlertRules, err = readFiles(r.Dir, spec.Files(pr.Rules)); err != nil {
			return es, nil, fmt.Errorf("environment %s: prometheus rules: %w", e.Name, err)
		}
	}
	return es, notes, nil
}

func readFiles(dir string, names []string) ([]runtime.File, error) {
	var out []runtime.File
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(n)))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", n, err)
		}
		out = append(out, runtime.File{Name: n, Data: data})
	}
	return out, nil
}

// readPolicies reads the policy files names, each from
// STATE_DIR/policies/NAME when the state dir holds it (named by that
// path, with a note), else from the repository.
func readPolicies(dir, stateDir string, names []string) ([]runtime.File, []string, error) {
	var out []runtime.File
	var notes []string
	for _, n := range names {
		if stateDir != "" {
			p := filepath.Join(stateDir, "policies", filepath.FromSlash(n))
			data, err := os.ReadFile(p)
			switch {
			case err == nil:
				out = append(out, runtime.File{Name: p, Data: data})
				notes = append(notes, fmt.Sprintf("policy %s: read from %s (the state dir's copy wins over the repository's)", n, p))
				continue
			case !errors.Is(err, fs.ErrNotExist):
				return nil, nil, fmt.Errorf("read the state dir's copy of %s: %w", n, err)
			}
		}
		f, err := readFiles(dir, []string{n})
		if err != nil {
			return nil, nil, err
		}
		out = append(out, f...)
	}
	return out, notes, nil
}
