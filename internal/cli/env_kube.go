package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/kube"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/serve"
	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/steps/bluegreen"
	"github.com/gantry-ci/gantry/internal/steps/builtin"
	"github.com/gantry-ci/gantry/internal/steps/deploy"
)

// kubeEnvironment returns the deployer of env when the pipeline file
// (--file, or DIR/.gantry/pipeline.yaml when it exists) declares it with
// runtime: kubernetes; nil when the environment is the serve process's.
func kubeEnvironment(cmd *cobra.Command, g *options.Global, src *options.EnvSource, env string) (*kube.Deployer, error) {
	r, err := kubeRequest(g, src, env)
	if r == nil || err != nil {
		return nil, err
	}
	d, _, err := deploy.Kubernetes(*r, nil)
	if err != nil {
		return nil, failed(err)
	}
	return d, nil
}

// kubeRoller returns the rollout controller of env when the pipeline file
// declares it with runtime: kubernetes (its cluster's Argo Rollouts
// controller); nil when the environment is the serve process's.
func kubeRoller(g *options.Global, src *options.EnvSource, env string) (*bluegreen.KubeRoller, error) {
	r, err := kubeRequest(g, src, env)
	if r == nil || err != nil {
		return nil, err
	}
	kr, err := bluegreen.NewKubeRoller(*r, nil)
	if err != nil {
		return nil, failed(err)
	}
	return kr, nil
}

// kubeRequest reads env from the pipeline file: nil when it is not a
// kubernetes environment (or there is no pipeline file at the default
// path).
func kubeRequest(g *options.Global, src *options.EnvSource, env string) (*deploy.Request, error) {
	reqs, err := kubeRequests(g, src)
	if err != nil {
		return nil, err
	}
	return reqs[env], nil
}

// kubeRequests reads the pipeline file's kubernetes environments, by
// name: none when there is no pipeline file at the default path.
func kubeRequests(g *options.Global, src *options.EnvSource) (map[string]*deploy.Request, error) {
	dir, err := filepath.Abs(src.Dir)
	if err != nil {
		return nil, usageErr(err)
	}
	file := pipelinePath(dir, src.Pipeline)
	data, err := os.ReadFile(file)
	if err != nil {
		if src.Pipeline == "" && errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, usageErr(fmt.Errorf("read pipeline: %w", err))
	}
	var services []string
	for n := range builtin.Services() {
		services = append(services, n)
	}
	sort.Strings(services)
	p, err := spec.ParseEnvironments(file, data, services, dir)
	if err != nil {
		return nil, usageErr(err)
	}
	reqs := map[string]*deploy.Request{}
	stateDir := ""
	for name, e := range p.Environments {
		if e.Runtime != spec.RuntimeKubernetes {
			continue
		}
		if stateDir == "" {
			if stateDir, err = g.ResolveStateDir(); err != nil {
				return nil, err
			}
		}
		reqs[name] = &deploy.Request{
			Dir: dir, Environment: e, StateDir: stateDir,
			DefaultKey: filepath.Join(signing.DefaultKeyDir(stateDir), signing.PublicKeyFile),
		}
	}
	return reqs, nil
}

// callRoller calls the rollout controller of env: its cluster's for a
// kubernetes environment of the pipeline file, else gantry serve's (local,
// or the server of --server).
func callRoller[T any](cmd *cobra.Command, g *options.Global, remote *options.Remote, src *options.EnvSource, env string, call func(context.Context, runtime.Roller) (T, error)) (T, error) {
	if !remote.Enabled() {
		kr, err := kubeRoller(g, src, env)
		if err != nil {
			var zero T
			return zero, err
		}
		if kr != nil {
			return call(cmd.Context(), kr)
		}
	}
	return callServeAt(cmd, g, remote, func(ctx context.Context, c *serve.Client) (T, error) { return call(ctx, c) })
}

// kubeRollback is a rollbacker's path for a kubernetes environment: Helm
// rollback to the revision before the latest one that served. A failed
// revision was applied to the cluster (unlike on the local runtime), so
// it is rolled back too.
func (r *rollbacker) kubeRollback(ctx context.Context, env, who, reason string) error {
	d, _, err := deploy.Kubernetes(deploy.Request{
		Dir: r.dir, Environment: r.kube, StateDir: r.stateDir,
		DefaultKey: filepath.Join(signing.DefaultKeyDir(r.stateDir), signing.PublicKeyFile),
	}, r.log)
	if err != nil {
		return fmt.Errorf("roll back %s: %w", env, err)
	}
	from := ""
	if hist, err := d.History(ctx); err == nil && len(hist) > 0 {
		from = hist[len(hist)-1].Digest
	}
	rev, err := d.Rollback(ctx, 0, who, reason)
	if errors.Is(err, kube.ErrNoRelease) || errors.Is(err, kube.ErrNoRevision) {
		fmt.Fprintf(r.out, "rollback %s: nothing rolled back: %v\n", env, err)
		r.log.Info("nothing rolled back", "environment", env, "reason", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("roll back %s: %w", env, err)
	}
	fmt.Fprintln(r.out, rollbackLine(env, from, rev))
	r.log.Info("rolled back", "environment", env, "from", from, "to", rev.Digest, "revision", rev.Number)
	return nil
}

// kubeStatuses is the status of each kubernetes environment of reqs, by
// name; one whose release is not installed yet has no current revision.
func kubeStatuses(ctx context.Context, reqs map[string]*deploy.Request) ([]runtime.EnvironmentStatus, error) {
	var out []runtime.EnvironmentStatus
	for _, name := range slices.Sorted(maps.Keys(reqs)) {
		d, _, err := deploy.Kubernetes(*reqs[name], nil)
		if err != nil {
			return nil, failed(err)
		}
		st, err := d.Status(ctx)
		if errors.Is(err, kube.ErrNoRelease) {
			st, err = runtime.EnvironmentStatus{Name: name}, nil
		}
		if err != nil {
			return nil, kubeErr(err)
		}
		out = append(out, st)
	}
	return out, nil
}
