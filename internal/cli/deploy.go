package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/bluegreen"
	"github.com/gantry-ci/gantry/internal/steps/builtin"
	"github.com/gantry-ci/gantry/internal/steps/deploy"
	"github.com/gantry-ci/gantry/internal/store"
	"github.com/gantry-ci/gantry/internal/workspace"
)

// connectDeployer reaches the environment controller of a state dir: the
// `gantry serve` process, started in the background when none runs
// (ensureServe, in serve.go). Nil means no controller (tests set it so):
// then the deploy kind is not registered (a pipeline using it fails
// validation), and `gantry deploy` and rollbacks fail saying so.
var connectDeployer = ensureServe

// errNoController says this build cannot deploy.
var errNoController = errors.New("this gantry has no environment controller (gantry serve) yet, so it cannot deploy or roll back")

// kinds are the step kinds pipelines may use: the built-in ones, and
// deploy when an environment controller can be reached.
func kinds() []step.Kind {
	k := builtin.Kinds()
	if connectDeployer != nil {
		k = append(k, builtin.Deploy(connectDeployer), builtin.BlueGreen(connectRoller))
	}
	return k
}

// connectRoller reaches the environment controller for uses: blue-green:
// its rollouts, over the same connection as deploys.
func connectRoller(ctx context.Context, stateDir string) (bluegreen.Controller, error) {
	d, err := connectDeployer(ctx, stateDir)
	if err != nil {
		return nil, err
	}
	c, ok := d.(bluegreen.Controller)
	if !ok {
		deploy.Release(d)
		return nil, errors.New("this environment controller runs no blue/green rollouts")
	}
	return c, nil
}

// connect returns the environment controller or errNoController.
func connect(ctx context.Context, stateDir string) (runtime.Deployer, error) {
	if connectDeployer == nil {
		return nil, errNoController
	}
	d, err := connectDeployer(ctx, stateDir)
	if err != nil {
		return nil, fmt.Errorf("reach the environment controller (gantry serve) of %s: %w", stateDir, err)
	}
	return d, nil
}

// rollbacker is the handler of `on_failure: [{rollback: ENV}]` for one
// declared environment: it rolls the environment back to its previous
// serving revision and writes which digest was rolled back to what.
type rollbacker struct {
	stateDir string
	// dir is the repository; kube the environment when it runs on
	// Kubernetes (nil: the serve process's).
	dir  string
	kube *spec.Environment
	// stages are the stages whose on_failure rolls this environment back.
	stages []string
	out    io.Writer
	log    *slog.Logger
}

var _ engine.Rollbacker = (*rollbacker)(nil)

func (r *rollbacker) Rollback(ctx context.Context, env string) error {
	who, err := engine.LocalUser{}.Identify(ctx)
	if err != nil {
		return err
	}
	if r.kube != nil {
		return r.kubeRollback(ctx, env, who.Name, "on_failure of stage "+strings.Join(r.stages, " or "))
	}
	d, err := connect(ctx, r.stateDir)
	if err != nil {
		return err
	}
	defer deploy.Release(d)
	// A deploy that failed or was refused replaced nothing: what served
	// before still serves, and rolling back from it would undo an earlier,
	// good deploy. An environment with no earlier revision has nothing to
	// go back to: that is expected after a first deploy, so it is a note.
	hist, err := d.History(ctx, env)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("roll back %s: read its history: %w", env, err)
	}
	if line := nothingToRollBack(env, hist); line != "" {
		fmt.Fprintln(r.out, line)
		r.log.Info("nothing rolled back", "environment", env, "revisions", len(hist))
		return nil
	}
	from := ""
	if st, err := d.Status(ctx, env); err == nil && st.Current != nil {
		from = st.Current.Digest
	}
	reason := "on_failure of stage " + strings.Join(r.stages, " or ")
	rev, err := d.Rollback(ctx, env, 0, who.Name, reason)
	if err != nil {
		return fmt.Errorf("roll back %s: %w", env, err)
	}
	line := rollbackLine(env, from, rev)
	fmt.Fprintln(r.out, line)
	r.log.Info("rolled back", "environment", env, "from", from, "to", rev.Digest, "revision", rev.Number)
	return nil
}

// nothingToRollBack says why a rollback of env with history hist (oldest
// first) has nothing to do, or returns "" when Rollback(env, 0) has a
// target: a superseded revision older than the one serving.
func nothingToRollBack(env string, hist []runtime.Revision) string {
	cur := servingOf(hist)
	earlier := false
	for _, rev := range hist {
		if cur != nil && rev.Number < cur.Number && rev.Status == "superseded" {
			earlier = true
		}
	}
	n := len(hist)
	switch {
	case n == 0:
		return fmt.Sprintf("rollback %s: nothing rolled back: %s had no earlier revision that served (no deploy to it was recorded)", env, env)
	case hist[n-1].Status != "serving" && cur != nil:
		last := hist[n-1]
		return fmt.Sprintf("rollback %s: nothing to roll back: revision %d (%s) never served; revision %d (%s) still serves", env, last.Number, last.Status, cur.Number, cur.Digest)
	case hist[n-1].Status != "serving":
		last := hist[n-1]
		return fmt.Sprintf("rollback %s: nothing rolled back: %s had no earlier revision that served; revision %d (%s) never served", env, env, last.Number, last.Status)
	case !earlier:
		return fmt.Sprintf("rollback %s: nothing rolled back: %s had no earlier revision that served; revision %d (%s) still serves", env, env, cur.Number, cur.Digest)
	}
	return ""
}

// servingOf is the newest serving revision of a history, nil if none.
func servingOf(hist []runtime.Revision) *runtime.Revision {
	for i := len(hist) - 1; i >= 0; i-- {
		if hist[i].Status == "serving" {
			return &hist[i]
		}
	}
	return nil
}

// rollbackLine is the summary of a rollback: which digest was rolled back
// to what.
func rollbackLine(env, from string, rev runtime.Revision) string {
	if from == "" {
		from = "nothing serving"
	}
	return fmt.Sprintf("rollback %s: %s -> %s (revision %d)", env, from, rev.Digest, rev.Number)
}

// rollbackOptions registers a rollbacker for each environment p declares.
func rollbackOptions(p *spec.Pipeline, dir, stateDir string, out io.Writer, log *slog.Logger) []engine.Option {
	var opts []engine.Option
	for _, env := range slices.Sorted(mapKeysOf(p.Environments)) {
		var stages []string
		for _, st := range p.Stages {
			for _, a := range st.OnFailure {
				if a.Rollback == env {
					stages = append(stages, st.Name)
				}
			}
		}
		rb := &rollbacker{stateDir: stateDir, dir: dir, stages: stages, out: out, log: log}
		if e := p.Environments[env]; e != nil && e.Runtime == spec.RuntimeKubernetes {
			rb.kube = e
		}
		opts = append(opts, engine.WithRollbacker(env, rb))
	}
	return opts
}

func mapKeysOf[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func newDeployCmd(g *options.Global) *cobra.Command {
	o := &options.Deploy{}
	cmd := &cobra.Command{
		Use:   "deploy IMAGE --env NAME",
		Short: "Deploy an image by digest to an environment of the pipeline file",
		Long: `Deploy IMAGE (REPO@sha256:..., never a tag) to the environment NAME that
the pipeline file declares in its environments: block, as the deploy step
does: render the environment's Helm chart with the image pinned, resolve
its pod template into workloads and ask the environment controller
(gantry serve, started when none runs) to run them. It returns once the
new revision serves; a revision that never becomes ready, or an image the
admission rules refuse, leaves the previous revision serving.

Exit status: 0 the new revision serves, 1 the deploy failed (refused,
never ready, or no controller), 2 bad usage or a bad pipeline file.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDeploy(cmd, g, o, args[0])
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runDeploy(cmd *cobra.Command, g *options.Global, o *options.Deploy, image string) error {
	ctx := cmd.Context()
	if o.Env == "" {
		return usageErr(errors.New("--env is required: the environment to deploy to"))
	}
	if o.Timeout <= 0 {
		return usageErr(fmt.Errorf("--timeout must be positive, got %s", o.Timeout))
	}
	if _, err := name.NewDigest(image); err != nil {
		return usageErr(fmt.Errorf("%q is not REPO@sha256:...: gantry deploys an image by digest, never a tag (gantry verify or the push step print it)", image))
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return usageErr(err)
	}
	file := pipelinePath(dir, o.Pipeline)
	data, err := os.ReadFile(file)
	if err != nil {
		return usageErr(fmt.Errorf("read pipeline: %w", err))
	}
	var services []string
	for n := range builtin.Services() {
		services = append(services, n)
	}
	sort.Strings(services)
	p, err := spec.ParseEnvironments(file, data, services, dir)
	if err != nil {
		return usageErr(err)
	}
	e, err := p.FindEnvironment(o.Env)
	if err != nil {
		return usageErr(err)
	}
	stateDir, err := g.ResolveStateDir()
	if err != nil {
		return err
	}
	gitInfo, err := workspace.Describe(ctx, dir)
	if err != nil {
		return err
	}
	who, err := engine.LocalUser{}.Identify(ctx)
	if err != nil {
		return err
	}
	if e.Runtime == spec.RuntimeKubernetes {
		dctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		res, err := deploy.DeployKubernetes(dctx, deploy.Request{
			Dir: dir, Environment: e, Image: image, StateDir: stateDir,
			DefaultKey: filepath.Join(signing.DefaultKeyDir(stateDir), signing.PublicKeyFile),
			Who:        who.Name, Reason: "gantry deploy",
		}, nil, cmd.OutOrStdout())
		if err != nil {
			return failed(err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: revision %d of helm release %s runs %s\n", e.Name, res.Revision.Number, e.Kubernetes.Release, res.Revision.Digest)
		return nil
	}
	built, err := deploy.Build(ctx, deploy.Request{
		Dir: dir, Environment: e, Image: image,
		Expr:       spec.EnvironmentExprEnv(gitInfo, "0", p.Name, p.Env),
		DefaultKey: filepath.Join(signing.DefaultKeyDir(stateDir), signing.PublicKeyFile), StateDir: stateDir,
		Who: who.Name, Reason: "gantry deploy",
	})
	if err != nil {
		return failed(err)
	}
	out := cmd.OutOrStdout()
	for _, n := range built.Notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
	d, err := connect(ctx, stateDir)
	if err != nil {
		return failed(err)
	}
	defer deploy.Release(d)
	dctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	res, err := deploy.Deploy(dctx, d, built, out)
	if err != nil {
		return failed(err)
	}
	fmt.Fprintf(out, "%s: revision %d serves %s at %s\n", e.Name, res.Revision.Number, res.Revision.Digest, res.URL)
	return nil
}
