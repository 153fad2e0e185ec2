package argo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	rolloutsv1 "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// Target is where an environment's Rollout is.
type Target struct {
	// Client acts in the environment's namespace.
	Client *Client
	// Rollout is the name of the chart's Rollout in that namespace.
	Rollout string
	// ActiveURL and PreviewURL are shown in the status (e.g. the
	// Services' or Ingresses' addresses); they may be empty.
	ActiveURL, PreviewURL string
}

// Resolver says where an environment's Rollout is; an environment that
// is not a Kubernetes one (or unknown) is an error.
type Resolver func(ctx context.Context, environment string) (Target, error)

// Upgrade changes the environment's release to the request's revision
// (the Helm upgrade of the chart with the new image); it returns once the
// API server has accepted the objects.
type Upgrade func(ctx context.Context, req runtime.RolloutRequest) error

// Roller is runtime.Roller for Kubernetes environments: each verb acts
// on the environment's Argo Rollout through its Client.
type Roller struct {
	resolve Resolver
	upgrade Upgrade
	observe time.Duration
}

var _ runtime.Roller = (*Roller)(nil)

// RollerOption configures a Roller.
type RollerOption func(*Roller)

// WithObserveTimeout bounds how long Rollout waits for the Argo
// controller to observe the upgraded Rollout (default 2 minutes; values
// <= 0 are ignored).
func WithObserveTimeout(d time.Duration) RollerOption {
	return func(r *Roller) {
		if d > 0 {
			r.observe = d
		}
	}
}

// NewRoller returns a Roller that finds environments with resolve and
// rolls new revisions out with upgrade.
func NewRoller(resolve Resolver, upgrade Upgrade, opts ...RollerOption) *Roller {
	r := &Roller{resolve: resolve, upgrade: upgrade, observe: 2 * time.Minute}
	for _, o := range opts {
		o(r)
	}
	return r
}

// ErrNotObserved is wrapped when the Argo controller did not observe an
// upgraded Rollout in time (is the controller running?).
var ErrNotObserved = errors.New("the Argo Rollouts controller did not observe the new revision")

func (r *Roller) target(ctx context.Context, environment string) (Target, error) {
	t, err := r.resolve(ctx, environment)
	if err != nil {
		return Target{}, fmt.Errorf("environment %q: %w", environment, err)
	}
	if t.Client == nil || t.Rollout == "" {
		return Target{}, fmt.Errorf("environment %q: no Kubernetes client or Rollout name: %w", environment, runtime.ErrInvalidRequest)
	}
	return t, nil
}

// finish fills in what the environment adds to a Rollout's status.
func (t Target) finish(environment string, st runtime.RolloutStatus, err error) (runtime.RolloutStatus, error) {
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	st.Environment = environment
	st.ActiveURL, st.PreviewURL = t.ActiveURL, t.PreviewURL
	return st, nil
}

// Rollout upgrades the environment's release with the injected Upgrade,
// then waits until the Argo controller has observed the new spec and
// created (or picked) the ReplicaSet of the new pod template, and
// returns the status then: the blue/green cycle has started.
func (r *Roller) Rollout(ctx context.Context, req runtime.RolloutRequest) (runtime.RolloutStatus, error) {
	env := req.Deploy.Environment
	t, err := r.target(ctx, env)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	if r.upgrade == nil {
		return runtime.RolloutStatus{}, fmt.Errorf("rollout %q: no upgrade function: %w", env, runtime.ErrInvalidRequest)
	}
	if err := r.upgrade(ctx, req); err != nil {
		return runtime.RolloutStatus{}, fmt.Errorf("rollout %q: upgrade the release: %w", env, err)
	}
	wctx, cancel := context.WithTimeout(ctx, r.observe)
	defer cancel()
	var last *snapshot
	err = t.Client.watch(wctx, t.Rollout, func(s *snapshot) bool {
		last = s
		return !observed(s.ro) || s.rsByHash(s.ro.Status.CurrentPodHash) == nil
	})
	if err == nil {
		return t.finish(env, last.status(t.Client.now()), nil)
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		state := "the Rollout was never read"
		if last != nil {
			state = fmt.Sprintf("generation %d, observed generation %q, current pod hash %q",
				last.ro.Generation, last.ro.Status.ObservedGeneration, last.ro.Status.CurrentPodHash)
		}
		return runtime.RolloutStatus{}, fmt.Errorf("rollout %q: after %s: %s: %w", env, r.observe, state, ErrNotObserved)
	}
	return runtime.RolloutStatus{}, fmt.Errorf("rollout %q: wait for the controller: %w", env, err)
}

// Promote implements runtime.Roller (see Client.Promote).
func (r *Roller) Promote(ctx context.Context, environment string, full bool, who string) (runtime.RolloutStatus, error) {
	t, err := r.target(ctx, environment)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	st, err := t.Client.Promote(ctx, t.Rollout, full, who)
	return t.finish(environment, st, err)
}

// Abort implements runtime.Roller (see Client.Abort).
func (r *Roller) Abort(ctx context.Context, environment, who, reason string) (runtime.RolloutStatus, error) {
	t, err := r.target(ctx, environment)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	st, err := t.Client.Abort(ctx, t.Rollout, who, reason)
	return t.finish(environment, st, err)
}

// Retry implements runtime.Roller (see Client.Retry).
func (r *Roller) Retry(ctx context.Context, environment, who string) (runtime.RolloutStatus, error) {
	t, err := r.target(ctx, environment)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	st, err := t.Client.Retry(ctx, t.Rollout, who)
	return t.finish(environment, st, err)
}

// Undo implements runtime.Roller (see Client.Undo). Unlike the local
// runtime it does not pass through gantry's admission again: the
// cluster's admission webhook (gantry admission) sees the new pods.
func (r *Roller) Undo(ctx context.Context, environment string, toRevision int, who string) (runtime.RolloutStatus, error) {
	t, err := r.target(ctx, environment)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	st, err := t.Client.Undo(ctx, t.Rollout, toRevision, who)
	return t.finish(environment, st, err)
}

// RolloutStatus implements runtime.Roller (see Client.Status).
func (r *Roller) RolloutStatus(ctx context.Context, environment string) (runtime.RolloutStatus, error) {
	t, err := r.target(ctx, environment)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	st, err := t.Client.Status(ctx, t.Rollout)
	return t.finish(environment, st, err)
}

// Watch implements runtime.Roller (see Client.Watch).
func (r *Roller) Watch(ctx context.Context, environment string, f func(runtime.RolloutStatus) bool) error {
	t, err := r.target(ctx, environment)
	if err != nil {
		return err
	}
	return t.Client.Watch(ctx, t.Rollout, func(st runtime.RolloutStatus) bool {
		st, _ = t.finish(environment, st, nil)
		return f(st)
	})
}

// History lists the environment's revisions (see Client.History).
func (r *Roller) History(ctx context.Context, environment string) ([]runtime.Revision, error) {
	t, err := r.target(ctx, environment)
	if err != nil {
		return nil, err
	}
	revs, err := t.Client.History(ctx, t.Rollout)
	for i := range revs {
		revs[i].Environment = environment
	}
	return revs, err
}

// Revision statuses of History.
const (
	RevisionServing    = "serving"    // the active Service selects it
	RevisionDeploying  = "deploying"  // the revision being rolled out, behind the preview Service
	RevisionFailed     = "failed"     // the revision of an aborted rollout
	RevisionSuperseded = "superseded" // an older revision
)

// History lists the Rollout's revisions, oldest first, from the
// ReplicaSets it owns (as `kubectl argo rollouts` and `kubectl rollout
// history` read them): Number is the rollout.argoproj.io/revision
// annotation, Digest the first container's image digest, Status whether
// the active Service selects it. Revisions whose ReplicaSet was
// garbage-collected (revisionHistoryLimit) are gone; a template rolled
// out again (undo) keeps only its latest number.
func (c *Client) History(ctx context.Context, name string) ([]runtime.Revision, error) {
	s, err := c.read(ctx, name)
	if err != nil {
		return nil, err
	}
	ro := s.ro
	active := ro.Status.BlueGreen.ActiveSelector
	if active == "" {
		active = ro.Status.StableRS
	}
	var out []runtime.Revision
	for _, rs := range s.rss {
		n := revisionOf(rs.Annotations)
		if n == 0 {
			continue
		}
		hash := rs.Labels[rolloutsv1.DefaultRolloutUniqueLabelKey]
		rev := runtime.Revision{Environment: name, Number: n, Status: RevisionSuperseded, Created: rs.CreationTimestamp.Time}
		for _, ctr := range rs.Spec.Template.Spec.Containers {
			rev.Workloads = append(rev.Workloads, runtime.Workload{Name: ctr.Name, Image: ctr.Image})
			if _, d, ok := strings.Cut(ctr.Image, "@"); ok && rev.Digest == "" {
				rev.Digest = d
			}
		}
		switch {
		case hash == active:
			rev.Status = RevisionServing
		case hash == ro.Status.CurrentPodHash && ro.Status.Abort:
			rev.Status = RevisionFailed
			rev.Message = ro.Status.Message
		case hash == ro.Status.CurrentPodHash:
			rev.Status = RevisionDeploying
		}
		out = append(out, rev)
	}
	slices.SortFunc(out, func(a, b runtime.Revision) int { return a.Number - b.Number })
	return out, nil
}
