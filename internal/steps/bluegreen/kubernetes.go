package bluegreen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/gantry-ci/gantry/internal/kube"
	"github.com/gantry-ci/gantry/internal/kube/argo"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/steps/deploy"
)

// KubeRoller is the rollout controller of a `runtime: kubernetes`
// environment: the Argo Rollouts controller of its cluster, driven through
// the API (internal/kube/argo), with new revisions applied as upgrades of
// the environment's Helm release (internal/kube). It runs in the calling
// process; the cluster keeps the state.
type KubeRoller struct {
	*argo.Roller
	Deployer *kube.Deployer
	// Notes are what the admission spec left out (as deploy.Kubernetes
	// says).
	Notes []string
	req   deploy.Request
}

// Rollout rolls req's image out. The first release of the environment
// has no blue to keep: it is installed and waited for as a deploy is, and
// its Rollout is Healthy at once, as Argo makes a first rollout.
func (k *KubeRoller) Rollout(ctx context.Context, req runtime.RolloutRequest) (runtime.RolloutStatus, error) {
	if _, err := k.Deployer.Rollouts(ctx); !errors.Is(err, kube.ErrNoRelease) {
		return k.Roller.Rollout(ctx, req)
	}
	if k.req.Image == "" {
		return runtime.RolloutStatus{}, fmt.Errorf("environment %s: no image to roll out: %w", k.req.Environment.Name, runtime.ErrInvalidRequest)
	}
	kreq, err := deploy.KubeRequest(k.req)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	if _, err := k.Deployer.Deploy(ctx, kreq); err != nil {
		return runtime.RolloutStatus{}, err
	}
	return k.RolloutStatus(ctx, req.Deploy.Environment)
}

// NewKubeRoller returns the rollout controller of r.Environment, which
// must be a kubernetes one. r.Image, when set, is what Rollout upgrades
// the release to (the blue-green step); the verbs of `gantry rollout`
// leave it empty.
func NewKubeRoller(r deploy.Request, log *slog.Logger) (*KubeRoller, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d, notes, err := deploy.Kubernetes(r, log)
	if err != nil {
		return nil, err
	}
	c := d.Cluster()
	client, err := argo.New(c.Config, c.Namespace, argo.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("environment %s: %w", r.Environment.Name, err)
	}
	kr := &KubeRoller{Deployer: d, Notes: notes, req: r}
	resolve := func(ctx context.Context, environment string) (argo.Target, error) {
		if environment != r.Environment.Name {
			return argo.Target{}, fmt.Errorf("environment %s is not %s: %w", environment, r.Environment.Name, runtime.ErrInvalidRequest)
		}
		names, err := d.Rollouts(ctx)
		switch {
		case errors.Is(err, kube.ErrNoRelease):
			return argo.Target{}, fmt.Errorf("%w: release %s in namespace %s does not exist yet (a blue-green step installs it)", runtime.ErrNoRollout, d.Release(), d.Namespace())
		case err != nil:
			return argo.Target{}, err
		case len(names) != 1:
			return argo.Target{}, fmt.Errorf("%w: release %s in namespace %s holds %d Argo Rollouts (%s); the blue-green kind drives exactly one (uses: deploy deploys any chart)",
				runtime.ErrNoRollout, d.Release(), d.Namespace(), len(names), strings.Join(names, ", "))
		}
		return argo.Target{Client: client, Rollout: names[0]}, nil
	}
	upgrade := func(ctx context.Context, _ runtime.RolloutRequest) error {
		if r.Image == "" {
			return fmt.Errorf("environment %s: no image to roll out: %w", r.Environment.Name, runtime.ErrInvalidRequest)
		}
		req, err := deploy.KubeRequest(r)
		if err != nil {
			return err
		}
		_, err = d.Upgrade(ctx, req)
		return err
	}
	kr.Roller = argo.NewRoller(resolve, upgrade)
	return kr, nil
}

// runKubernetes rolls image out to the kubernetes environment e through
// its cluster's Argo Rollouts controller and follows it as Run does on
// the local runtime.
func (s *blueGreenStep) runKubernetes(ctx context.Context, r deploy.Request, e *spec.Environment, monitors []runtime.Monitor, log *slog.Logger, out io.Writer) (runtime.RolloutStatus, error) {
	// What only the local runtime does is refused before anything
	// changes, rather than ignored.
	switch {
	case len(monitors) > 0:
		return runtime.RolloutStatus{}, fmt.Errorf("blue-green: environment %s runs on Kubernetes, where synthetic monitors are not built yet; set with.monitors: [] on this step (the pipeline declares %d)", e.Name, len(monitors))
	case s.cfg.Traffic != nil:
		return runtime.RolloutStatus{}, fmt.Errorf("blue-green: environment %s runs on Kubernetes, where with.traffic is not built yet (the Rollout's own trafficRouting is the way there)", e.Name)
	case s.cfg.AnalysisInterval != "" || s.cfg.Prometheus != "":
		return runtime.RolloutStatus{}, fmt.Errorf("blue-green: environment %s runs on Kubernetes, where the Argo Rollouts controller runs the chart's AnalysisTemplates as they are: with.analysis_interval and with.prometheus apply to the local runtime only", e.Name)
	}
	kr, err := NewKubeRoller(r, log)
	if err != nil {
		return runtime.RolloutStatus{}, fmt.Errorf("blue-green: %w", err)
	}
	for _, n := range kr.Notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
	fmt.Fprintf(out, "helm release %s in namespace %s, rolled out by the cluster's Argo Rollouts controller\n", kr.Deployer.Release(), kr.Deployer.Namespace())
	req := runtime.RolloutRequest{Deploy: runtime.DeployRequest{
		Environment: e.Name, Who: r.Who, Run: r.Run, Reason: r.Reason,
		Workloads: []runtime.Workload{{Name: e.Name, Image: r.Image}},
	}}
	st, err := Start(ctx, kr, req, out)
	if err != nil {
		return st, err
	}
	return Follow(ctx, kr, e.Name, st, nil, out)
}
