package kube

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	rollouts "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/google/go-containerregistry/pkg/name"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/gantry-ci/gantry/internal/runtime"
)

func ptr[T any](v T) *T { return &v }

func TestDeploymentState(t *testing.T) {
	dep := func(gen, observed int64, replicas, updated, total, available int32, conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Generation: gen},
			Spec:       appsv1.DeploymentSpec{Replicas: ptr(replicas)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: observed, UpdatedReplicas: updated, Replicas: total,
				AvailableReplicas: available, Conditions: conds},
		}
	}
	deadline := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: "timed out"}
	tests := []struct {
		name         string
		d            *appsv1.Deployment
		ready, fatal bool
		status       string
	}{
		{"not observed", dep(2, 1, 2, 2, 2, 2), false, false, "has not seen the new spec"},
		{"stale deadline before observed", dep(3, 2, 2, 0, 2, 0, deadline), false, false, "has not seen the new spec"},
		{"deadline", dep(2, 2, 2, 1, 3, 2, deadline), false, true, "progress deadline exceeded: timed out"},
		{"updating", dep(2, 2, 3, 1, 3, 3), false, false, "1 of 3 replicas updated"},
		{"old terminating", dep(2, 2, 2, 2, 3, 2), false, false, "1 old replicas still terminating"},
		{"unavailable", dep(2, 2, 2, 2, 2, 1), false, false, "1 of 2 updated replicas available"},
		{"ready", dep(2, 2, 2, 2, 2, 2), true, false, "2 of 2 replicas available"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := deploymentState(tc.d)
			if got.ready != tc.ready || got.fatal != tc.fatal || !strings.Contains(got.status, tc.status) {
				t.Errorf("got ready %v fatal %v %q, want ready %v fatal %v %q", got.ready, got.fatal, got.status, tc.ready, tc.fatal, tc.status)
			}
		})
	}
}

func TestDaemonSetState(t *testing.T) {
	ds := func(gen, observed int64, desired, updated, available int32) *appsv1.DaemonSet {
		return &appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Generation: gen},
			Status: appsv1.DaemonSetStatus{ObservedGeneration: observed, DesiredNumberScheduled: desired,
				UpdatedNumberScheduled: updated, NumberAvailable: available},
		}
	}
	onDelete := ds(2, 2, 2, 0, 2)
	onDelete.Spec.UpdateStrategy.Type = appsv1.OnDeleteDaemonSetStrategyType
	for _, tc := range []struct {
		name   string
		d      *appsv1.DaemonSet
		ready  bool
		status string
	}{
		{"not observed", ds(2, 1, 2, 2, 2), false, "has not seen the new spec"},
		{"updating", ds(2, 2, 2, 1, 2), false, "1 of 2 nodes run the updated pod"},
		{"unavailable", ds(2, 2, 2, 2, 1), false, "1 of 2 nodes' pods available"},
		{"ready", ds(2, 2, 2, 2, 2), true, "2 of 2 nodes' pods available"},
		{"on delete: old pods count", onDelete, true, "2 of 2 nodes' pods available"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := daemonSetState(tc.d)
			if got.ready != tc.ready || got.fatal || !strings.Contains(got.status, tc.status) {
				t.Errorf("got ready %v fatal %v %q, want ready %v %q", got.ready, got.fatal, got.status, tc.ready, tc.status)
			}
		})
	}
}

// TestStaleTimeout: a ProgressDeadlineExceeded condition names the
// ReplicaSet that timed out; it is this rollout's failure only while
// that ReplicaSet is the deployment's current revision.
func TestStaleTimeout(t *testing.T) {
	const revision = "deployment.kubernetes.io/revision"
	dep := func(rev, msg string) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{revision: rev}},
			Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Message: `ReplicaSet "other" has timed out progressing.`},
				{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: msg},
			}},
		}
	}
	rs := func(rev string) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{revision: rev}}}
	}
	const msg = `ReplicaSet "web-68b4fb54f4" has timed out progressing.`
	if name, ok := timedOutReplicaSet(dep("3", msg)); !ok || name != "web-68b4fb54f4" {
		t.Errorf("timedOutReplicaSet: got %q %v, want web-68b4fb54f4", name, ok)
	}
	if name, ok := timedOutReplicaSet(dep("3", "timed out")); ok {
		t.Errorf("timedOutReplicaSet of an unknown message: got %q, want none", name)
	}
	for _, tc := range []struct {
		name          string
		depRev, rsRev string
		stale         bool
	}{
		{"this rollout's", "2", "2", false},
		{"a rollback's first status", "3", "2", true},
		{"no revision on the deployment", "", "2", false},
		{"no revision on the replicaset", "3", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := staleTimeout(dep(tc.depRev, msg), rs(tc.rsRev)); got != tc.stale {
				t.Errorf("staleTimeout: got %v, want %v", got, tc.stale)
			}
		})
	}
}

func TestRolloutState(t *testing.T) {
	ro := func(gen int64, observed string, phase rollouts.RolloutPhase, pause ...rollouts.PauseReason) *rollouts.Rollout {
		r := &rollouts.Rollout{ObjectMeta: metav1.ObjectMeta{Name: "pay", Generation: gen}}
		r.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pay"}}
		r.Spec.Strategy.BlueGreen = &rollouts.BlueGreenStrategy{ActiveService: "pay"}
		r.Status = rollouts.RolloutStatus{ObservedGeneration: observed, Phase: phase, CurrentPodHash: "abc", Message: "msg"}
		for _, p := range pause {
			r.Status.PauseConditions = append(r.Status.PauseConditions, rollouts.PauseCondition{Reason: p})
		}
		return r
	}
	tests := []struct {
		name                string
		r                   *rollouts.Rollout
		ready, fatal, noted bool
	}{
		{"not observed", ro(3, "2", rollouts.RolloutPhaseHealthy), false, false, false},
		{"healthy", ro(3, "3", rollouts.RolloutPhaseHealthy), true, false, false},
		{"progressing", ro(3, "3", rollouts.RolloutPhaseProgressing), false, false, false},
		{"degraded", ro(3, "3", rollouts.RolloutPhaseDegraded), false, true, false},
		{"paused for promotion", ro(3, "3", rollouts.RolloutPhasePaused, rollouts.PauseReasonBlueGreenPause), true, false, true},
		{"paused by hand", ro(3, "3", rollouts.RolloutPhasePaused, rollouts.PauseReasonCanaryPauseStep), false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := rolloutState(tc.r)
			if got.ready != tc.ready || got.fatal != tc.fatal || (got.note != "") != tc.noted {
				t.Errorf("got ready %v fatal %v note %q, want ready %v fatal %v noted %v", got.ready, got.fatal, got.note, tc.ready, tc.fatal, tc.noted)
			}
			if h := got.selector.MatchLabels[rollouts.DefaultRolloutUniqueLabelKey]; h != "abc" {
				t.Errorf("selector: got pod hash %q, want abc (the current revision's pods)", h)
			}
		})
	}
}

func TestCheckPinned(t *testing.T) {
	pin, err := name.NewDigest("registry.example/web@" + digest(1))
	if err != nil {
		t.Fatal(err)
	}
	doc := func(kind, images string) string {
		return fmt.Sprintf("---\n# Source: c/templates/%s.yaml\napiVersion: apps/v1\nkind: %s\nmetadata: {name: w}\nspec:\n  template:\n    spec:\n      containers: [%s]\n", strings.ToLower(kind), kind, images)
	}
	tg := Target{RepositoryValue: "image.repository", DigestValue: "image.digest"}
	tests := []struct {
		name, manifest string
		wantErr        string
	}{
		{"pinned", doc("Deployment", `{name: app, image: "registry.example/web@`+digest(1)+`"}, {name: side, image: "other.example/proxy@`+digest(5)+`"}`), ""},
		{"tag", doc("Deployment", `{name: app, image: "registry.example/web:1.0"}`), "c/templates/deployment.yaml: Deployment w: container app runs registry.example/web:1.0, not the admitted"},
		{"other digest", doc("StatefulSet", `{name: app, image: "registry.example/web@`+digest(2)+`"}`), "StatefulSet w: container app runs registry.example/web@" + digest(2)},
		{"not at all", doc("Deployment", `{name: app, image: "nginx:1"}`), "no container runs the admitted registry.example/web@" + digest(1) + " (app=nginx:1)"},
		{"no workload", "---\n# Source: c/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "the chart renders no workload"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := parseManifest(tc.manifest)
			if err != nil {
				t.Fatal(err)
			}
			err = checkPinned(objs, pin, tg)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("got %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	gr := schema.GroupResource{Resource: "secrets"}
	tests := []struct {
		name string
		err  error
		is   error
		want string
	}{
		{"forbidden", apierrors.NewForbidden(gr, "", errors.New("no RBAC")), ErrForbidden, "give the kubeconfig's user a RoleBinding"},
		{"unauthorized", apierrors.NewUnauthorized("bad token"), ErrUnauthorized, "check the kubeconfig's user credentials"},
		{"conflict", apierrors.NewConflict(gr, "sh.helm.release.v1.web.v2", errors.New("changed")), ErrConflict, "another operation on the release is in progress"},
		{"exists", fmt.Errorf("create: %w", apierrors.NewAlreadyExists(gr, "sh.helm.release.v1.web.v2")), ErrConflict, "already exists"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := explain("upgrade release web", tc.err)
			if !errors.Is(got, tc.is) || !strings.Contains(got.Error(), tc.want) || !strings.HasPrefix(got.Error(), "upgrade release web: ") {
				t.Errorf("got %v, want %v with %q", got, tc.is, tc.want)
			}
		})
	}
	if err := explain("x", nil); err != nil {
		t.Errorf("explain(nil): got %v", err)
	}
}

func TestNotReadyErrorIsErrNotReady(t *testing.T) {
	err := fmt.Errorf("deploy: %w", &NotReadyError{Workload: "Deployment/w", Cause: "gave up", Status: "s"})
	if !errors.Is(err, runtime.ErrNotReady) {
		t.Errorf("errors.Is(%v, runtime.ErrNotReady) = false", err)
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add("---\n# Source: c/templates/d.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: x}]\n")
	f.Add("---\nkind: x\n---\n")
	f.Add("a: [")
	pin, _ := name.NewDigest("registry.example/web@" + digest(1))
	f.Fuzz(func(t *testing.T, m string) {
		objs, err := parseManifest(m)
		if err != nil {
			return
		}
		for _, o := range objs {
			if o.Kind == "" || o.APIVersion == "" {
				t.Fatalf("object without kind or apiVersion: %+v", o)
			}
		}
		_ = checkPinned(objs, pin, Target{})
	})
}
