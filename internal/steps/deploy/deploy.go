// Package deploy is the deploy step kind (the seed's Helm deploy to
// staging): it renders the environment's chart with the image pinned to
// the digest the run pushed, resolves the pod template into workloads and
// asks the environment controller (runtime.Deployer, the `gantry serve`
// process) to run them. `gantry deploy` sends the same request.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/step"
)

// Connect returns the environment controller for a state dir, starting
// the serve process when none runs.
type Connect func(ctx context.Context, stateDir string) (runtime.Deployer, error)

// Outputs of a deploy step.
var Outputs = []string{"url", "revision", "digest", "previous_digest", "sink_url", "prometheus_url"}

// DefaultTimeout bounds a deploy when with.timeout is not set.
const DefaultTimeout = 5 * time.Minute

// NewKind returns `uses: deploy`, deploying through connect.
func NewKind(connect Connect) step.Kind {
	return step.Kind{
		Name:    "deploy",
		Summary: "render the environment's Helm chart and run its pod template from the pushed digest (gantry serve)",
		Outputs: Outputs,
		New: func(in step.Inputs) (step.Step, error) {
			return New(in, connect)
		},
	}
}

// Config is the `with:` block.
type Config struct {
	// Environment names an entry of the pipeline's environments: block.
	Environment string `yaml:"environment"`
	// Image is REPO@sha256:... to deploy (default: the image pushed
	// earlier in the run, the latest step whose `image` output is a
	// reference by digest).
	Image string `yaml:"image"`
	// Timeout bounds the deploy, until the new revision serves (default
	// 5m).
	Timeout time.Duration `yaml:"timeout"`
}

type deployStep struct {
	cfg     Config
	connect Connect
}

// New decodes the inputs.
func New(in step.Inputs, connect Connect) (step.Step, error) {
	var c Config
	if err := in.Decode(&c); err != nil {
		return nil, err
	}
	if c.Environment == "" {
		return nil, in.Errorf("environment", "with.environment is required: the name of an entry of the pipeline's environments: block")
	}
	if c.Timeout < 0 {
		return nil, in.Errorf("timeout", "with.timeout must be positive, got %s", c.Timeout)
	}
	if c.Image != "" && (in.Resolved() || !strings.Contains(c.Image, "${")) {
		if _, err := name.NewDigest(c.Image); err != nil {
			return nil, in.Errorf("image", "with.image %q is not REPO@sha256:...: a deploy runs an image by digest, never a tag", c.Image)
		}
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return &deployStep{cfg: c, connect: connect}, nil
}

// Run deploys.
func (s *deployStep) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	out := env.Stdout
	if out == nil {
		out = io.Discard
	}
	if len(env.PipelineSource) == 0 {
		return nil, errors.New("deploy: the run's pipeline file is not available to the step")
	}
	p, err := spec.ParseEnvironments(env.PipelineFile, env.PipelineSource, nil, env.Dir)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	e, err := p.FindEnvironment(s.cfg.Environment)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	image, from, err := s.image(env)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "deploying %s to %s (image from %s)\n", image, e.Name, from)
	runID, _ := strconv.ParseInt(env.RunID, 10, 64)
	if e.Runtime == spec.RuntimeKubernetes {
		dctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
		res, err := DeployKubernetes(dctx, Request{
			Dir: env.Dir, Environment: e, Image: image,
			DefaultKey: DefaultKey(env), StateDir: env.StateDir,
			Who: "run " + env.RunID, Run: runID, Reason: "deploy",
		}, env.Log, out)
		if err != nil {
			return nil, err
		}
		return &step.Result{
			Outputs: map[string]any{
				"url": "", "revision": res.Revision.Number, "digest": res.Revision.Digest, "previous_digest": res.Previous,
				"sink_url": "", "prometheus_url": res.PrometheusURL,
			},
			Summary: fmt.Sprintf("%s revision %d (helm release %s) runs %s", e.Name, res.Revision.Number, e.Kubernetes.Release, shortDigest(res.Revision.Digest)),
		}, nil
	}
	built, err := Build(ctx, Request{
		Dir: env.Dir, Environment: e, Image: image,
		Expr:       spec.EnvironmentExprEnv(env.Git, env.RunID, p.Name, VarsMap(env.Vars)),
		DefaultKey: DefaultKey(env), StateDir: env.StateDir,
		Who: "run " + env.RunID, Run: runID, Reason: "deploy",
	})
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	for _, n := range built.Notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
	d, err := s.connect(ctx, env.StateDir)
	if err != nil {
		return nil, fmt.Errorf("deploy: reach the environment controller (gantry serve): %w", err)
	}
	defer Release(d)
	dctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	res, err := Deploy(dctx, d, built, out)
	if err != nil {
		return nil, err
	}
	return &step.Result{
		Outputs: map[string]any{
			"url": res.URL, "revision": res.Revision.Number, "digest": res.Revision.Digest, "previous_digest": res.Previous,
			"sink_url": res.SinkURL, "prometheus_url": res.PrometheusURL,
		},
		Summary: fmt.Sprintf("%s revision %d serving %s at %s", e.Name, res.Revision.Number, shortDigest(res.Revision.Digest), res.URL),
	}, nil
}

// Release closes a deployer that holds connections (the serve client's
// Close), once its caller is done with it.
func Release(d runtime.Deployer) {
	if c, ok := d.(interface{ Close() }); ok {
		c.Close()
	}
}

// Deployed is the outcome of Deploy.
type Deployed struct {
	Revision runtime.Revision
	// Previous is the digest the environment served before ("" for the
	// first deploy).
	Previous string
	URL      string
	// SinkURL is the environment's webhook sink, PrometheusURL its
	// Prometheus ("" when it has none).
	SinkURL, PrometheusURL string
}

// Deploy sends a built request and reports progress to out: the
// workloads, the revision, how its instances run and where it serves. A
// refusal or a revision that never became ready is the error.
func Deploy(ctx context.Context, d runtime.Deployer, b *Built, out io.Writer) (*Deployed, error) {
	req := b.Request
	for _, w := range req.Workloads {
		fmt.Fprintf(out, "workload %s: %s, %d replica(s)%s\n", w.Name, w.Image, w.Replicas, describeLimits(w.Resources))
	}
	var previous string
	if st, err := d.Status(ctx, req.Environment); err == nil && st.Current != nil {
		previous = st.Current.Digest
		fmt.Fprintf(out, "%s serves revision %d (%s)\n", req.Environment, st.Current.Number, shortDigest(previous))
	}
	rev, err := d.Deploy(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("deploy to %s: %w", req.Environment, err)
	}
	st, err := d.Status(ctx, req.Environment)
	if err != nil {
		return nil, fmt.Errorf("deploy to %s: revision %d deployed, but its status: %w", req.Environment, rev.Number, err)
	}
	fmt.Fprintf(out, "revision %d serves %s at %s\n", rev.Number, shortDigest(rev.Digest), st.URL)
	var how []string
	for _, in := range st.Instances {
		fmt.Fprintf(out, "instance %s: %s at %s (%s)\n", in.ID, in.State, in.Addr, in.Isolation)
		if s := isolationText(in.Isolation); !slices.Contains(how, s) {
			how = append(how, s)
		}
	}
	if len(how) > 0 {
		fmt.Fprintf(out, "instances run %s\n", strings.Join(how, " and "))
	}
	return &Deployed{Revision: rev, Previous: previous, URL: st.URL, SinkURL: st.SinkURL, PrometheusURL: st.PrometheusURL}, nil
}

func isolationText(i runtime.Isolation) string {
	switch i {
	case runtime.OCI:
		return "under an OCI runtime (runc), with the image's user, cgroup limits and the chart's read-only root"
	case runtime.Process:
		return "as plain processes (no OCI runtime can run here: limits and the read-only root are not enforced)"
	}
	return string(i)
}

func describeLimits(r runtime.Resources) string {
	var parts []string
	if r.MemoryLimit > 0 {
		parts = append(parts, fmt.Sprintf("memory %d MiB", r.MemoryLimit>>20))
	}
	if r.CPUMillis > 0 {
		parts = append(parts, fmt.Sprintf("cpu %dm", r.CPUMillis))
	}
	if len(parts) == 0 {
		return ""
	}
	return ", " + strings.Join(parts, ", ")
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}

// image returns what to deploy and where it came from.
func (s *deployStep) image(env *step.Env) (string, string, error) {
	if s.cfg.Image != "" {
		return s.cfg.Image, "with.image", nil
	}
	return PushedImage(env)
}

// PushedImage returns the image an earlier step of the run pushed (the
// latest `image` output that is a reference by digest) and which step it
// came from.
func PushedImage(env *step.Env) (string, string, error) {
	if env.Run != nil {
		v := env.Run()
		for i := len(v.Stages) - 1; i >= 0; i-- {
			st := v.Stages[i]
			for j := len(st.Steps) - 1; j >= 0; j-- {
				sv := st.Steps[j]
				if sv.Status != "passed" && sv.Status != "cached" {
					continue
				}
				img, _ := sv.Outputs["image"].(string)
				if img == "" {
					continue
				}
				if _, err := name.NewDigest(img); err == nil {
					return img, st.Name + "/" + sv.Name, nil
				}
			}
		}
	}
	return "", "", errors.New("deploy: no step of this run pushed an image by digest (an `image` output REPO@sha256:..., as image-push sets); set with.image")
}

// DefaultKey is the public key the run signed with (a sign step's `key`
// output), else gantry's default key of the state dir.
func DefaultKey(env *step.Env) string {
	if env.Run != nil {
		v := env.Run()
		for i := len(v.Stages) - 1; i >= 0; i-- {
			for j := len(v.Stages[i].Steps) - 1; j >= 0; j-- {
				sv := v.Stages[i].Steps[j]
				if _, signed := sv.Outputs["signature"]; !signed {
					continue
				}
				if k, _ := sv.Outputs["key"].(string); k != "" {
					return k
				}
			}
		}
	}
	return filepath.Join(signing.DefaultKeyDir(env.StateDir), signing.PublicKeyFile)
}

// VarsMap turns KEY=VALUE pairs into a map.
func VarsMap(vars []string) map[string]string {
	m := make(map[string]string, len(vars))
	for _, kv := range vars {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
