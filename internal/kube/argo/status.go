package argo

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	rolloutsv1 "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/runtime"
)

var metav1GetOptions = metav1.GetOptions{}

// snapshot is a Rollout with the ReplicaSets and AnalysisRuns it owns,
// read together.
type snapshot struct {
	ro   *rolloutsv1.Rollout
	rss  []appsv1.ReplicaSet
	runs []rolloutsv1.AnalysisRun
}

// read takes a snapshot of the Rollout name.
func (c *Client) read(ctx context.Context, name string) (*snapshot, error) {
	ro, err := c.get(ctx, name)
	if err != nil {
		return nil, err
	}
	if ro.Spec.Strategy.BlueGreen == nil {
		return nil, fmt.Errorf("rollout %s/%s: %w", c.namespace, name, ErrNotBlueGreen)
	}
	s := &snapshot{ro: ro}
	rsl, err := c.kube.AppsV1().ReplicaSets(c.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, c.apiError(ctx, "list replicasets of rollout", "replicasets", name, err)
	}
	for _, rs := range rsl.Items {
		if metav1.IsControlledBy(&rs, ro) {
			s.rss = append(s.rss, rs)
		}
	}
	arl, err := c.argo.ArgoprojV1alpha1().AnalysisRuns(c.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, c.apiError(ctx, "list analysisruns of rollout", "analysisruns", name, err)
	}
	for _, ar := range arl.Items {
		if metav1.IsControlledBy(&ar, ro) {
			s.runs = append(s.runs, ar)
		}
	}
	slices.SortFunc(s.runs, func(a, b rolloutsv1.AnalysisRun) int {
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	})
	return s, nil
}

// Status reads the Rollout name and reports it as gantry does
// (docs/rollouts-kubernetes.md has the mapping). Environment is the
// Rollout's name and the URLs are empty: Roller fills them in.
func (c *Client) Status(ctx context.Context, name string) (runtime.RolloutStatus, error) {
	s, err := c.read(ctx, name)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	return s.status(c.now()), nil
}

// revisionOf reads Argo's revision annotation (0 when absent or bad).
func revisionOf(annotations map[string]string) int {
	n, err := strconv.Atoi(annotations[RevisionAnnotation])
	if err != nil {
		return 0
	}
	return n
}

// rsByHash is the owned ReplicaSet whose pod template hash is hash.
func (s *snapshot) rsByHash(hash string) *appsv1.ReplicaSet {
	if hash == "" {
		return nil
	}
	for i := range s.rss {
		if s.rss[i].Labels[rolloutsv1.DefaultRolloutUniqueLabelKey] == hash {
			return &s.rss[i]
		}
	}
	return nil
}

func (s *snapshot) revisionOfHash(hash string) int {
	if rs := s.rsByHash(hash); rs != nil {
		return revisionOf(rs.Annotations)
	}
	return 0
}

// observed reports whether the controller has seen the Rollout's latest
// spec (Argo's isGenerationObserved).
func observed(ro *rolloutsv1.Rollout) bool {
	return ro.Status.ObservedGeneration == strconv.FormatInt(ro.Generation, 10)
}

// desired is the revision being rolled out: that of the ReplicaSet of the
// current pod template, else the Rollout's own annotation.
func (s *snapshot) desired() int {
	if n := s.revisionOfHash(s.ro.Status.CurrentPodHash); n > 0 {
		return n
	}
	return revisionOf(s.ro.Annotations)
}

// status converts the snapshot.
func (s *snapshot) status(now time.Time) runtime.RolloutStatus {
	ro := s.ro
	st := runtime.RolloutStatus{
		Environment: ro.Name,
		Phase:       runtime.RolloutPhase(ro.Status.Phase),
		Message:     ro.Status.Message,
		Desired:     s.desired(),
		Updated:     now,
	}
	if st.Phase == "" {
		st.Phase = runtime.RolloutProgressing
	}
	if !observed(ro) {
		st.Phase = runtime.RolloutProgressing
		st.Message = "waiting for the Argo Rollouts controller to observe the new spec"
	}
	active := ro.Status.BlueGreen.ActiveSelector
	if active == "" {
		active = ro.Status.StableRS
	}
	st.Stable = s.revisionOfHash(active)
	if st.Stable == 0 {
		st.Stable = s.revisionOfHash(ro.Status.StableRS)
	}
	for _, ctr := range ro.Spec.Template.Spec.Containers {
		if _, d, ok := strings.Cut(ctr.Image, "@"); ok {
			st.Digest = d
			break
		}
	}
	for _, cd := range ro.Status.Conditions {
		st.Conditions = append(st.Conditions, runtime.RolloutCondition{
			Type: string(cd.Type), Status: string(cd.Status), Reason: cd.Reason,
			Message: cd.Message, Changed: cd.LastTransitionTime.Time,
		})
	}
	st.Step = s.step()
	if rev := ro.Annotations[AnnotationPromotedRevision]; rev != "" && rev == strconv.Itoa(st.Desired) {
		st.PromotedBy = ro.Annotations[AnnotationPromotedBy]
	}
	if ro.Status.Abort {
		st.AbortedBy = AutoAborter
		if rev := ro.Annotations[AnnotationAbortedRevision]; rev != "" && rev == strconv.Itoa(st.Desired) {
			st.AbortedBy = ro.Annotations[AnnotationAbortedBy]
			if r := ro.Annotations[AnnotationAbortReason]; r != "" && st.Message == "" {
				st.Message = r
			}
		}
	}
	st.ScaleDownAt = s.scaleDownAt()
	if bg := ro.Spec.Strategy.BlueGreen; bg != nil && bg.AutoPromotionSeconds > 0 {
		for _, pc := range ro.Status.PauseConditions {
			if pc.Reason == rolloutsv1.PauseReasonBlueGreenPause {
				st.PauseUntil = pc.StartTime.Add(time.Duration(bg.AutoPromotionSeconds) * time.Second)
			}
		}
	}
	st.Analyses = s.analyses(st.Desired)
	return st
}

// step maps the Rollout's blue/green state onto gantry's steps.
func (s *snapshot) step() runtime.RolloutStep {
	ro := s.ro
	bg := ro.Status.BlueGreen
	current := ro.Status.CurrentPodHash
	switch {
	case ro.Status.Abort:
		return runtime.StepAborted
	case current == "" || !observed(ro):
		return runtime.StepPreview
	case bg.ActiveSelector != "" && bg.ActiveSelector != current:
		// Green is up behind the preview Service.
		for _, pc := range ro.Status.PauseConditions {
			if pc.Reason == rolloutsv1.PauseReasonBlueGreenPause {
				return runtime.StepPaused
			}
		}
		if ro.Spec.Paused {
			return runtime.StepPaused
		}
		if a := bg.PrePromotionAnalysisRunStatus; a != nil && !a.Status.Completed() {
			return runtime.StepPrePromotion
		}
		return runtime.StepPreview
	case ro.Status.StableRS != current:
		// Active on green, not yet stable: post-promotion analysis.
		return runtime.StepPostPromotion
	}
	if !s.scaleDownAt().IsZero() {
		return runtime.StepScaleDown
	}
	return runtime.StepCompleted
}

// scaleDownAt is the earliest scale-down deadline of an old ReplicaSet
// that still runs pods.
func (s *snapshot) scaleDownAt() time.Time {
	var at time.Time
	for _, rs := range s.rss {
		d := rs.Annotations[rolloutsv1.DefaultReplicaSetScaleDownDeadlineAnnotationKey]
		if d == "" || rs.Labels[rolloutsv1.DefaultRolloutUniqueLabelKey] == s.ro.Status.CurrentPodHash {
			continue
		}
		if rs.Spec.Replicas != nil && *rs.Spec.Replicas == 0 {
			continue
		}
		t, err := time.Parse(time.RFC3339, d)
		if err != nil {
			continue
		}
		if at.IsZero() || t.Before(at) {
			at = t
		}
	}
	return at
}

// analyses converts the AnalysisRuns of revision rev, oldest first.
func (s *snapshot) analyses(rev int) []runtime.AnalysisStatus {
	var out []runtime.AnalysisStatus
	for i := range s.runs {
		ar := &s.runs[i]
		r := revisionOf(ar.Annotations)
		if r != rev {
			continue
		}
		kind := ""
		switch ar.Labels[rolloutsv1.RolloutTypeLabel] {
		case rolloutsv1.RolloutTypePrePromotionLabel:
			kind = "prePromotion"
		case rolloutsv1.RolloutTypePostPromotionLabel:
			kind = "postPromotion"
		default:
			continue
		}
		run := convertRun(ar)
		out = append(out, runtime.AnalysisStatus{Kind: kind, Revision: r, Runs: []*analysis.Run{run}, Phase: run.Phase})
	}
	return out
}

// convertRun converts an AnalysisRun into an analysis.Run named after the
// AnalysisRun (one AnalysisRun merges all the templates a Rollout names).
func convertRun(ar *rolloutsv1.AnalysisRun) *analysis.Run {
	run := &analysis.Run{
		Template: ar.Name,
		Phase:    phase(ar.Status.Phase),
		Message:  ar.Status.Message,
	}
	if ar.Status.StartedAt != nil {
		run.StartedAt = ar.Status.StartedAt.Time
	}
	if ar.Status.CompletedAt != nil {
		run.FinishedAt = ar.Status.CompletedAt.Time
	}
	for _, m := range ar.Spec.Metrics {
		mr := analysis.MetricResult{
			Name: m.Name, Phase: analysis.PhasePending,
			SuccessCondition: m.SuccessCondition, FailureCondition: m.FailureCondition,
		}
		for _, got := range ar.Status.MetricResults {
			if got.Name != m.Name {
				continue
			}
			mr.Phase = phase(got.Phase)
			mr.DryRun = got.DryRun
			mr.Message = got.Message
			mr.Count = int(got.Count)
			mr.Successful = int(got.Successful)
			mr.Failed = int(got.Failed)
			mr.Inconclusive = int(got.Inconclusive)
			mr.Error = int(got.Error)
			mr.ConsecutiveError = int(got.ConsecutiveError)
			for _, ms := range got.Measurements {
				x := analysis.Measurement{Phase: phase(ms.Phase), Value: ms.Value, Message: ms.Message}
				if ms.StartedAt != nil {
					x.StartedAt = ms.StartedAt.Time
				}
				if ms.FinishedAt != nil {
					x.FinishedAt = ms.FinishedAt.Time
				}
				mr.Measurements = append(mr.Measurements, x)
			}
		}
		run.Metrics = append(run.Metrics, mr)
	}
	return run
}

// phase converts Argo's analysis phase; both use Argo's names, and "" is
// Pending.
func phase(p rolloutsv1.AnalysisPhase) analysis.Phase {
	if p == "" {
		return analysis.PhasePending
	}
	return analysis.Phase(p)
}
