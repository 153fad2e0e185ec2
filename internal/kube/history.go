package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// releases is the release history, oldest first.
func (d *Deployer) releases() ([]*release.Release, error) {
	cfg, err := d.helm()
	if err != nil {
		return nil, err
	}
	hist, err := cfg.Releases.History(d.t.Release)
	if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, explain("read the history of "+d.where(), err)
	}
	if len(hist) == 0 {
		return nil, fmt.Errorf("environment %s: %w: %s has no revision yet (deploy to it first)", d.t.Environment, ErrNoRelease, d.where())
	}
	slices.SortFunc(hist, func(a, b *release.Release) int { return a.Version - b.Version })
	return hist, nil
}

// History is the environment's revisions, oldest first: the Helm
// release's history (serving: deployed; superseded; failed: applied but
// never ready, or refused by the cluster; deploying: in progress). It
// wraps ErrNoRelease when the release does not exist.
func (d *Deployer) History(ctx context.Context) ([]runtime.Revision, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	hist, err := d.releases()
	if err != nil {
		return nil, err
	}
	out := make([]runtime.Revision, len(hist))
	for i, r := range hist {
		out[i] = d.revision(r)
	}
	return out, nil
}

// Status is the environment now: its newest revision and the pods of
// its workloads as instances.
func (d *Deployer) Status(ctx context.Context) (runtime.EnvironmentStatus, error) {
	st := runtime.EnvironmentStatus{Name: d.t.Environment}
	cur, err := d.current()
	if err != nil {
		return st, err
	}
	rev := d.revision(cur)
	st.Current = &rev
	pods, err := d.pods(ctx, cur)
	for _, p := range pods {
		st.Instances = append(st.Instances, instanceOf(&p))
	}
	return st, err
}

// current is the release revision that serves (the newest deployed one),
// else the newest.
func (d *Deployer) current() (*release.Release, error) {
	hist, err := d.releases()
	if err != nil {
		return nil, err
	}
	for _, r := range slices.Backward(hist) {
		if r.Info.Status == release.StatusDeployed {
			return r, nil
		}
	}
	return hist[len(hist)-1], nil
}

// pods lists the pods of rel's workloads (Deployments, StatefulSets,
// DaemonSets and Rollouts), workload by workload in the manifest's order.
func (d *Deployer) pods(ctx context.Context, rel *release.Release) ([]corev1.Pod, error) {
	objs, err := parseManifest(rel.Manifest)
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, o := range objs {
		switch o.Kind {
		case "Deployment", "StatefulSet", "DaemonSet", "Rollout":
		default:
			continue
		}
		ws, err := d.state(ctx, &o)
		if err != nil {
			return out, explain(fmt.Sprintf("read the status of %s/%s", o.Kind, o.Name), err)
		}
		if ws.selector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(ws.selector)
		if err != nil {
			continue
		}
		pods, err := d.c.Client.CoreV1().Pods(d.namespaceOf(&o)).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return out, explain("list the pods of "+o.Kind+"/"+o.Name, err)
		}
		out = append(out, pods.Items...)
	}
	return out, nil
}

func instanceOf(p *corev1.Pod) runtime.InstanceStatus {
	in := runtime.InstanceStatus{ID: p.Name, Addr: p.Status.PodIP, Since: p.CreationTimestamp.Time, State: "unready"}
	switch {
	case p.DeletionTimestamp != nil:
		in.State = "stopped"
	case p.Status.Phase == corev1.PodPending:
		in.State = "starting"
	case podReady(p):
		in.State = "ready"
	case p.Status.Phase == corev1.PodFailed:
		in.State = "crashed"
	}
	for _, cs := range p.Status.ContainerStatuses {
		in.Restarts += int(cs.RestartCount)
	}
	return in
}

// Rollback rolls the release back to toRevision, or (0) to the newest
// revision before the latest one that served (superseded or deployed; a
// failed revision is skipped), through the same admission as a deploy,
// and waits for readiness as Deploy does. The rollback is a new revision
// of the release. It wraps ErrNoRevision when there is nothing to go
// back to.
func (d *Deployer) Rollback(ctx context.Context, toRevision int, who, reason string) (runtime.Revision, error) {
	hist, err := d.releases()
	if err != nil {
		return runtime.Revision{}, err
	}
	last := hist[len(hist)-1]
	if last.Info.Status.IsPending() {
		return runtime.Revision{}, fmt.Errorf("roll back %s: %w: revision %d is %s since %s (%s)", d.where(), ErrConflict, last.Version, last.Info.Status, last.Info.LastDeployed.Format(time.RFC3339), last.Info.Description)
	}
	var target *release.Release
	if toRevision > 0 {
		i := slices.IndexFunc(hist, func(r *release.Release) bool { return r.Version == toRevision })
		if i < 0 {
			have := make([]int, len(hist))
			for j, r := range hist {
				have[j] = r.Version
			}
			return runtime.Revision{}, fmt.Errorf("roll back %s: %w: revision %d is not in its history (%v)", d.where(), ErrNoRevision, toRevision, have)
		}
		target = hist[i]
	} else {
		for _, r := range slices.Backward(hist[:len(hist)-1]) {
			if r.Info.Status == release.StatusSuperseded || r.Info.Status == release.StatusDeployed {
				target = r
				break
			}
		}
		if target == nil {
			return runtime.Revision{}, fmt.Errorf("roll back %s: %w: no revision before %d served", d.where(), ErrNoRevision, last.Version)
		}
	}
	image := d.imageOf(target)
	if image == "" {
		return runtime.Revision{}, fmt.Errorf("roll back %s to revision %d: its values hold no image at %s and %s (not deployed by gantry?)", d.where(), target.Version, d.t.RepositoryValue, d.t.DigestValue)
	}
	pinned, err := d.admit.Admit(ctx, d.t.Environment, d.spec, image)
	if err != nil {
		return runtime.Revision{}, fmt.Errorf("environment %s: roll back to revision %d: %w", d.t.Environment, target.Version, err)
	}
	if pinned != image {
		return runtime.Revision{}, fmt.Errorf("environment %s: roll back to revision %d: admission pinned %s, but the revision runs %s", d.t.Environment, target.Version, pinned, image)
	}
	cfg, err := d.helm()
	if err != nil {
		return runtime.Revision{}, err
	}
	rb := action.NewRollback(cfg)
	rb.Version, rb.Timeout, rb.MaxHistory = target.Version, d.t.Timeout, 20
	if err := rb.Run(d.t.Release); err != nil {
		return runtime.Revision{}, explain(fmt.Sprintf("roll back %s to revision %d", d.where(), target.Version), err)
	}
	rel, err := cfg.Releases.Last(d.t.Release)
	if err != nil {
		return runtime.Revision{}, explain("read the rolled-back "+d.where(), err)
	}
	if reason == "" {
		reason = fmt.Sprintf("rollback to %d", target.Version)
	}
	rel.Info.Description = describe(reason, who)
	rel.Labels = historyLabels(who, 0)
	if err := cfg.Releases.Update(rel); err != nil {
		return runtime.Revision{}, explain("record who rolled back "+d.where(), err)
	}
	d.log.InfoContext(ctx, "release rolled back", "environment", d.t.Environment, "release", d.t.Release, "to", target.Version, "revision", rel.Version)
	return d.finish(ctx, rel)
}

// Cluster is the connection the deployer uses (for internal/kube/argo's
// Client: argo.New(d.Cluster().Config, d.Namespace())).
func (d *Deployer) Cluster() *Cluster { return d.c }

// Rollouts names the Argo Rollouts of the release's newest revision, for
// the blue-green step to drive (argo.Target.Rollout). It wraps
// ErrNoRelease when the release does not exist.
func (d *Deployer) Rollouts(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	hist, err := d.releases()
	if err != nil {
		return nil, err
	}
	objs, err := parseManifest(hist[len(hist)-1].Manifest)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, o := range objs {
		if o.Kind == "Rollout" && o.APIVersion == rolloutsResource.GroupVersion().String() {
			names = append(names, o.Name)
		}
	}
	return names, nil
}
