package argo

import (
	"strconv"
	"testing"
	"time"

	rolloutsv1 "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/runtime"
)

// rolloutIn builds a blue/green Rollout whose status is set by mod.
func rolloutIn(mod func(*rolloutsv1.Rollout)) *rolloutsv1.Rollout {
	ro := &rolloutsv1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Generation: 4, Annotations: map[string]string{RevisionAnnotation: "2"}},
		Spec: rolloutsv1.RolloutSpec{Strategy: rolloutsv1.RolloutStrategy{BlueGreen: &rolloutsv1.BlueGreenStrategy{
			ActiveService: "api", PreviewService: "api-preview",
		}}},
		Status: rolloutsv1.RolloutStatus{
			ObservedGeneration: "4", CurrentPodHash: "green", StableRS: "blue",
			BlueGreen: rolloutsv1.BlueGreenStatus{ActiveSelector: "blue", PreviewSelector: "green"},
		},
	}
	mod(ro)
	return ro
}

func replicaSet(hash string, rev, replicas int32, deadline string) appsv1.ReplicaSet {
	rs := appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{
		Labels:      map[string]string{rolloutsv1.DefaultRolloutUniqueLabelKey: hash},
		Annotations: map[string]string{RevisionAnnotation: strconv.Itoa(int(rev))},
	}, Spec: appsv1.ReplicaSetSpec{Replicas: &replicas}}
	if deadline != "" {
		rs.Annotations[rolloutsv1.DefaultReplicaSetScaleDownDeadlineAnnotationKey] = deadline
	}
	return rs
}

// TestStep maps the blue/green states of a Rollout onto gantry's steps.
func TestStep(t *testing.T) {
	deadline := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rss := []appsv1.ReplicaSet{replicaSet("blue", 1, 2, ""), replicaSet("green", 2, 2, "")}
	for _, tc := range []struct {
		name string
		mod  func(*rolloutsv1.Rollout)
		rss  []appsv1.ReplicaSet
		want runtime.RolloutStep
	}{
		{"green starting", func(*rolloutsv1.Rollout) {}, rss, runtime.StepPreview},
		{"spec not observed yet", func(ro *rolloutsv1.Rollout) { ro.Status.ObservedGeneration = "3" }, rss, runtime.StepPreview},
		{"pre-promotion analysis running", func(ro *rolloutsv1.Rollout) {
			ro.Status.BlueGreen.PrePromotionAnalysisRunStatus = &rolloutsv1.RolloutAnalysisRunStatus{Name: "a", Status: rolloutsv1.AnalysisPhaseRunning}
		}, rss, runtime.StepPrePromotion},
		{"paused for promotion", func(ro *rolloutsv1.Rollout) {
			ro.Status.PauseConditions = []rolloutsv1.PauseCondition{{Reason: rolloutsv1.PauseReasonBlueGreenPause}}
		}, rss, runtime.StepPaused},
		{"held by spec.paused", func(ro *rolloutsv1.Rollout) { ro.Spec.Paused = true }, rss, runtime.StepPaused},
		{"active on green, not yet stable", func(ro *rolloutsv1.Rollout) { ro.Status.BlueGreen.ActiveSelector = "green" }, rss, runtime.StepPostPromotion},
		{"blue waiting for its scale-down", func(ro *rolloutsv1.Rollout) {
			ro.Status.BlueGreen.ActiveSelector, ro.Status.StableRS = "green", "green"
		}, []appsv1.ReplicaSet{replicaSet("blue", 1, 2, deadline.Format(time.RFC3339)), replicaSet("green", 2, 2, "")}, runtime.StepScaleDown},
		{"completed", func(ro *rolloutsv1.Rollout) {
			ro.Status.BlueGreen.ActiveSelector, ro.Status.StableRS = "green", "green"
		}, []appsv1.ReplicaSet{replicaSet("blue", 1, 0, deadline.Format(time.RFC3339)), replicaSet("green", 2, 2, "")}, runtime.StepCompleted},
		{"aborted", func(ro *rolloutsv1.Rollout) { ro.Status.Abort = true }, rss, runtime.StepAborted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &snapshot{ro: rolloutIn(tc.mod), rss: tc.rss}
			if got := s.step(); got != tc.want {
				t.Errorf("step %s, want %s", got, tc.want)
			}
		})
	}
}

// TestStatusRecords shows who acted only for the revision they acted on,
// and the automatic abort as Argo's.
func TestStatusRecords(t *testing.T) {
	rss := []appsv1.ReplicaSet{replicaSet("blue", 1, 2, ""), replicaSet("green", 2, 2, "")}
	for _, tc := range []struct {
		name                  string
		mod                   func(*rolloutsv1.Rollout)
		promotedBy, abortedBy string
		stable, desired       int
		wantMessage           string
	}{
		{"promoted this revision", func(ro *rolloutsv1.Rollout) {
			ro.Annotations[AnnotationPromotedBy], ro.Annotations[AnnotationPromotedRevision] = "alice", "2"
		}, "alice", "", 1, 2, ""},
		{"promoted an earlier revision", func(ro *rolloutsv1.Rollout) {
			ro.Annotations[AnnotationPromotedBy], ro.Annotations[AnnotationPromotedRevision] = "alice", "1"
		}, "", "", 1, 2, ""},
		{"aborted by a person", func(ro *rolloutsv1.Rollout) {
			ro.Status.Abort = true
			ro.Annotations[AnnotationAbortedBy], ro.Annotations[AnnotationAbortedRevision] = "bob", "2"
			ro.Annotations[AnnotationAbortReason] = "p99 too high"
		}, "", "bob", 1, 2, "p99 too high"},
		{"aborted by the controller", func(ro *rolloutsv1.Rollout) {
			ro.Status.Abort = true
			ro.Status.Message = "RolloutAborted: metric failed"
			ro.Annotations[AnnotationAbortedBy], ro.Annotations[AnnotationAbortedRevision] = "bob", "1"
		}, "", AutoAborter, 1, 2, "RolloutAborted: metric failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := (&snapshot{ro: rolloutIn(tc.mod), rss: rss}).status(time.Now())
			if st.PromotedBy != tc.promotedBy || st.AbortedBy != tc.abortedBy {
				t.Errorf("promoted by %q aborted by %q, want %q and %q", st.PromotedBy, st.AbortedBy, tc.promotedBy, tc.abortedBy)
			}
			if st.Stable != tc.stable || st.Desired != tc.desired {
				t.Errorf("stable %d desired %d, want %d and %d", st.Stable, st.Desired, tc.stable, tc.desired)
			}
			if st.Message != tc.wantMessage {
				t.Errorf("message %q, want %q", st.Message, tc.wantMessage)
			}
		})
	}
}

// TestConvertRun converts an AnalysisRun's measurements into gantry's.
func TestConvertRun(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ar := &rolloutsv1.AnalysisRun{
		ObjectMeta: metav1.ObjectMeta{Name: "api-green-2-pre"},
		Spec: rolloutsv1.AnalysisRunSpec{Metrics: []rolloutsv1.Metric{
			{Name: "p99", SuccessCondition: "result[0] < 0.25"},
			{Name: "errors", FailureCondition: "result[0] > 0.001"},
		}},
		Status: rolloutsv1.AnalysisRunStatus{
			Phase: rolloutsv1.AnalysisPhaseFailed, Message: "metric \"p99\" assessed Failed", StartedAt: &at,
			MetricResults: []rolloutsv1.MetricResult{{
				Name: "p99", Phase: rolloutsv1.AnalysisPhaseFailed, Count: 2, Successful: 1, Failed: 1,
				Measurements: []rolloutsv1.Measurement{
					{Phase: rolloutsv1.AnalysisPhaseSuccessful, Value: "[0.1]", StartedAt: &at, FinishedAt: &at},
					{Phase: rolloutsv1.AnalysisPhaseFailed, Value: "[0.3]", StartedAt: &at, FinishedAt: &at},
				},
			}},
		},
	}
	run := convertRun(ar)
	if run.Template != "api-green-2-pre" || run.Phase != analysis.PhaseFailed || !run.StartedAt.Equal(at.Time) || !run.FinishedAt.IsZero() {
		t.Errorf("run %+v, want the AnalysisRun's name, Failed, its start and no end", run)
	}
	if len(run.Metrics) != 2 {
		t.Fatalf("%d metrics, want 2", len(run.Metrics))
	}
	p99, errs := run.Metrics[0], run.Metrics[1]
	if p99.Phase != analysis.PhaseFailed || p99.Successful != 1 || p99.Failed != 1 || len(p99.Measurements) != 2 ||
		p99.Measurements[1].Value != "[0.3]" || p99.Measurements[1].Phase != analysis.PhaseFailed || p99.SuccessCondition != "result[0] < 0.25" {
		t.Errorf("p99 %+v, want 2 measurements, the second Failed with [0.3]", p99)
	}
	if errs.Phase != analysis.PhasePending || len(errs.Measurements) != 0 || errs.FailureCondition != "result[0] > 0.001" {
		t.Errorf("errors %+v, want Pending with no measurement", errs)
	}
}
