package argo

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	rolloutsv1 "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// The patches of the kubectl-argo-rollouts plugin (blue/green subset).
const (
	patchUnpause         = `{"spec":{"paused":false}}`
	patchClearPause      = `{"status":{"pauseConditions":null}}`
	patchUnpauseAndClear = `{"spec":{"paused":false},"status":{"pauseConditions":null}}`
	patchPromoteFull     = `{"status":{"promoteFull":true}}`
	patchAbort           = `{"status":{"abort":true}}`
	// patchRetry is the plugin's {"status":{"abort":false}} plus a reset
	// of the pause and of the finished analysis: see Retry.
	patchRetry            = `{"status":{"abort":false,"controllerPause":false,"pauseConditions":null,"blueGreen":{"prePromotionAnalysisRunStatus":null,"postPromotionAnalysisRunStatus":null}}}`
	statusSubresourceName = "status"
)

// inProgress reports whether a new revision is being rolled out: the
// current pod template is not yet the stable one.
func inProgress(ro *rolloutsv1.Rollout) bool {
	return ro.Status.CurrentPodHash != "" && ro.Status.CurrentPodHash != ro.Status.StableRS
}

// annotate records who acted (merge patch of the Rollout's metadata).
func (c *Client) annotate(ctx context.Context, name string, kv map[string]string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": kv}})
	if err != nil {
		return fmt.Errorf("annotate rollout %s/%s: %w", c.namespace, name, err)
	}
	_, err = c.argo.ArgoprojV1alpha1().Rollouts(c.namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return c.apiError(ctx, "annotate rollout", "rollouts", name, err)
	}
	return nil
}

// patchStatus applies a merge patch to the status subresource, or to the
// Rollout itself where the CRD has no status subresource (as the plugin
// does).
func (c *Client) patchStatus(ctx context.Context, name, op, patch string) error {
	ri := c.argo.ArgoprojV1alpha1().Rollouts(c.namespace)
	_, err := ri.Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}, statusSubresourceName)
	if err != nil && isNotFound(err) {
		_, err = ri.Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	}
	if err != nil {
		return c.apiError(ctx, op, "rollouts", name, err)
	}
	return nil
}

// Promote ends the blue/green pause of the Rollout name: it clears the
// pause conditions (status) and spec.paused, as `kubectl argo rollouts
// promote` does. full also skips the analysis and the pause
// (status.promoteFull). who is recorded. Promoting a Rollout that is not
// rolling out a revision, or that is aborted (retry it first), wraps
// runtime.ErrRolloutState.
func (c *Client) Promote(ctx context.Context, name string, full bool, who string) (runtime.RolloutStatus, error) {
	s, err := c.read(ctx, name)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	ro := s.ro
	if ro.Status.Abort {
		return runtime.RolloutStatus{}, fmt.Errorf("promote rollout %s/%s: it is aborted, retry it first: %w", c.namespace, name, runtime.ErrRolloutState)
	}
	if !inProgress(ro) && len(ro.Status.PauseConditions) == 0 && !ro.Spec.Paused {
		return runtime.RolloutStatus{}, fmt.Errorf("promote rollout %s/%s: no revision is being rolled out: %w", c.namespace, name, runtime.ErrRolloutState)
	}
	if err := c.annotate(ctx, name, map[string]string{
		AnnotationPromotedBy: who, AnnotationPromotedRevision: strconv.Itoa(s.desired()),
	}); err != nil {
		return runtime.RolloutStatus{}, err
	}
	ri := c.argo.ArgoprojV1alpha1().Rollouts(c.namespace)
	if full {
		if inProgress(ro) {
			if err := c.patchStatus(ctx, name, "promote rollout (full)", patchPromoteFull); err != nil {
				return runtime.RolloutStatus{}, err
			}
		}
	} else {
		spec := ""
		if ro.Spec.Paused {
			spec = patchUnpause
		}
		if len(ro.Status.PauseConditions) > 0 {
			_, err := ri.Patch(ctx, name, types.MergePatchType, []byte(patchClearPause), metav1.PatchOptions{}, statusSubresourceName)
			if err != nil {
				if !isNotFound(err) {
					return runtime.RolloutStatus{}, c.apiError(ctx, "promote rollout", "rollouts", name, err)
				}
				spec = patchUnpauseAndClear // no status subresource
			}
		}
		if spec != "" {
			if _, err := ri.Patch(ctx, name, types.MergePatchType, []byte(spec), metav1.PatchOptions{}); err != nil {
				return runtime.RolloutStatus{}, c.apiError(ctx, "promote rollout", "rollouts", name, err)
			}
		}
	}
	c.log.InfoContext(ctx, "rollout promoted", "namespace", c.namespace, "rollout", name, "full", full, "who", who)
	return c.Status(ctx, name)
}

// Abort sends the active Service back to the stable ReplicaSet and marks
// the Rollout Degraded (status.abort, as `kubectl argo rollouts abort`).
// who and reason are recorded. Aborting a Rollout that is not rolling out
// a revision wraps runtime.ErrRolloutState.
func (c *Client) Abort(ctx context.Context, name, who, reason string) (runtime.RolloutStatus, error) {
	s, err := c.read(ctx, name)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	if !inProgress(s.ro) {
		return runtime.RolloutStatus{}, fmt.Errorf("abort rollout %s/%s: no revision is being rolled out: %w", c.namespace, name, runtime.ErrRolloutState)
	}
	if s.ro.Status.Abort {
		return runtime.RolloutStatus{}, fmt.Errorf("abort rollout %s/%s: already aborted: %w", c.namespace, name, runtime.ErrRolloutState)
	}
	if err := c.annotate(ctx, name, map[string]string{
		AnnotationAbortedBy: who, AnnotationAbortReason: reason, AnnotationAbortedRevision: strconv.Itoa(s.desired()),
	}); err != nil {
		return runtime.RolloutStatus{}, err
	}
	if err := c.patchStatus(ctx, name, "abort rollout", patchAbort); err != nil {
		return runtime.RolloutStatus{}, err
	}
	c.log.InfoContext(ctx, "rollout aborted", "namespace", c.namespace, "rollout", name, "who", who)
	return c.Status(ctx, name)
}

// Retry starts an aborted Rollout's cycle again, paused before promotion
// with a fresh analysis, as on the local runtime. The plugin's `retry
// rollout` only sets status.abort false; on a blue/green Rollout Argo
// (v1.8.5) then finds the aborted ReplicaSet still carrying its
// scale-down-deadline annotation, takes it for a rollback within the
// scale-down window and switches the active Service to it at once, with
// no analysis and no pause. Retry therefore holds the Rollout with
// spec.paused (which stops the active switch), clears status.abort with
// the pause state and the finished analysis, waits until the controller
// has removed the annotation (it does for an unaborted Rollout), then
// resumes: the controller runs a fresh analysis and pauses again. If the
// controller does not get there in RetryTimeout the Rollout stays held
// (promote releases it) and the error says what was observed. who is
// recorded. Retrying a Rollout that is not aborted wraps
// runtime.ErrRolloutState.
func (c *Client) Retry(ctx context.Context, name, who string) (runtime.RolloutStatus, error) {
	s, err := c.read(ctx, name)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	ro := s.ro
	if !ro.Status.Abort {
		return runtime.RolloutStatus{}, fmt.Errorf("retry rollout %s/%s: it is not aborted: %w", c.namespace, name, runtime.ErrRolloutState)
	}
	if err := c.annotate(ctx, name, map[string]string{AnnotationRetriedBy: who}); err != nil {
		return runtime.RolloutStatus{}, err
	}
	ri := c.argo.ArgoprojV1alpha1().Rollouts(c.namespace)
	held := ro.Spec.Paused // paused by someone else: leave it so
	if !held {
		if _, err := ri.Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"paused":true}}`), metav1.PatchOptions{}); err != nil {
			return runtime.RolloutStatus{}, c.apiError(ctx, "retry rollout (hold)", "rollouts", name, err)
		}
	}
	if err := c.patchStatus(ctx, name, "retry rollout", patchRetry); err != nil {
		return runtime.RolloutStatus{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, c.retryTimeout)
	defer cancel()
	var last *snapshot
	err = c.watch(wctx, name, func(s *snapshot) bool {
		last = s
		rs := s.rsByHash(s.ro.Status.CurrentPodHash)
		if rs == nil {
			return true
		}
		_, deadline := rs.Annotations[rolloutsv1.DefaultReplicaSetScaleDownDeadlineAnnotationKey]
		return s.ro.Status.Abort || s.ro.Status.AbortedAt != nil || deadline
	})
	if err != nil {
		state := "nothing"
		if last != nil {
			state = fmt.Sprintf("abort %v, current pod hash %q", last.ro.Status.Abort, last.ro.Status.CurrentPodHash)
		}
		return runtime.RolloutStatus{}, fmt.Errorf("retry rollout %s/%s: the controller did not clear the abort (observed %s); the rollout is held paused, promote releases it: %w",
			c.namespace, name, state, err)
	}
	if !held {
		if _, err := ri.Patch(ctx, name, types.MergePatchType, []byte(patchUnpause), metav1.PatchOptions{}); err != nil {
			return runtime.RolloutStatus{}, c.apiError(ctx, "retry rollout (release)", "rollouts", name, err)
		}
	}
	c.log.InfoContext(ctx, "rollout retried", "namespace", c.namespace, "rollout", name, "who", who)
	return c.Status(ctx, name)
}

// Undo puts the pod template of an earlier revision back into the
// Rollout (a JSON patch replacing spec.template, as `kubectl argo
// rollouts undo` does): toRevision 0 is the revision before the latest,
// otherwise the ReplicaSet whose rollout.argoproj.io/revision is
// toRevision. Argo then rolls it out as a new revision, blue/green (it
// is Healthy at once when that template is the stable one). A revision
// that no ReplicaSet holds any more, or the template already in the
// Rollout, wraps runtime.ErrRolloutState.
func (c *Client) Undo(ctx context.Context, name string, toRevision int, who string) (runtime.RolloutStatus, error) {
	s, err := c.read(ctx, name)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	rs, err := s.revisionRS(toRevision)
	if err != nil {
		return runtime.RolloutStatus{}, fmt.Errorf("undo rollout %s/%s: %w", c.namespace, name, err)
	}
	tmpl := rs.Spec.Template.DeepCopy()
	delete(tmpl.Labels, rolloutsv1.DefaultRolloutUniqueLabelKey)
	same, err := sameTemplate(&s.ro.Spec.Template, tmpl)
	if err != nil {
		return runtime.RolloutStatus{}, fmt.Errorf("undo rollout %s/%s: %w", c.namespace, name, err)
	}
	if same {
		return runtime.RolloutStatus{}, fmt.Errorf("undo rollout %s/%s: the rollout already has the template of revision %d: %w",
			c.namespace, name, revisionOf(rs.Annotations), runtime.ErrRolloutState)
	}
	if err := c.annotate(ctx, name, map[string]string{AnnotationUndoneBy: who}); err != nil {
		return runtime.RolloutStatus{}, err
	}
	patch, err := json.Marshal([]map[string]any{{"op": "replace", "path": "/spec/template", "value": tmpl}})
	if err != nil {
		return runtime.RolloutStatus{}, fmt.Errorf("undo rollout %s/%s: %w", c.namespace, name, err)
	}
	if _, err := c.argo.ArgoprojV1alpha1().Rollouts(c.namespace).Patch(ctx, name, types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
		return runtime.RolloutStatus{}, c.apiError(ctx, "undo rollout", "rollouts", name, err)
	}
	c.log.InfoContext(ctx, "rollout undone", "namespace", c.namespace, "rollout", name,
		"toRevision", revisionOf(rs.Annotations), "who", who)
	return c.Status(ctx, name)
}

// revisionRS finds the ReplicaSet of revision n (0: the one before the
// latest).
func (s *snapshot) revisionRS(n int) (*appsv1.ReplicaSet, error) {
	var latest, previous *appsv1.ReplicaSet
	for i := range s.rss {
		rs := &s.rss[i]
		v := revisionOf(rs.Annotations)
		if v == 0 {
			continue
		}
		if n > 0 {
			if v == n {
				return rs, nil
			}
			continue
		}
		switch {
		case latest == nil || v > revisionOf(latest.Annotations):
			previous, latest = latest, rs
		case previous == nil || v > revisionOf(previous.Annotations):
			previous = rs
		}
	}
	if n > 0 {
		return nil, fmt.Errorf("revision %d is not in the history (no ReplicaSet holds it): %w", n, runtime.ErrRolloutState)
	}
	if previous == nil {
		return nil, fmt.Errorf("no revision before the latest: %w", runtime.ErrRolloutState)
	}
	return previous, nil
}

// sameTemplate compares two pod templates without the pod template hash
// label, the defaults the API server adds counting as equal (as the
// plugin's equalIgnoreHash).
func sameTemplate(ro, rs any) (bool, error) {
	a, err := kruntime.DefaultUnstructuredConverter.ToUnstructured(ro)
	if err != nil {
		return false, err
	}
	b, err := kruntime.DefaultUnstructuredConverter.ToUnstructured(rs)
	if err != nil {
		return false, err
	}
	for _, m := range []map[string]any{a, b} {
		if md, ok := m["metadata"].(map[string]any); ok {
			if l, ok := md["labels"].(map[string]any); ok {
				delete(l, rolloutsv1.DefaultRolloutUniqueLabelKey)
			}
		}
	}
	return equality.Semantic.DeepDerivative(a, b), nil
}
