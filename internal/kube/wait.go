package kube

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	rollouts "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/gantry-ci/gantry/internal/runtime"
)

var rolloutsResource = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}

// NotReadyError is a revision whose workloads did not become ready: the
// workload, what its status said, and the first failing pod with its
// events and last log lines. It wraps runtime.ErrNotReady.
type NotReadyError struct {
	// Workload is KIND/NAME; Status what its status said last.
	Workload string
	Status   string
	// Cause is why the wait ended: the deadline, or the workload's own
	// verdict (ProgressDeadlineExceeded, a Degraded Rollout).
	Cause string
	// Pod is the failing pod ("" when none exists), PodState its phase
	// and conditions, Events its events (and the workload's), Logs its
	// containers' last log lines or why there are none.
	Pod      string
	PodState string
	Events   []string
	Logs     []string
}

func (e *NotReadyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s: %s", e.Workload, e.Cause, e.Status)
	if e.Pod != "" {
		fmt.Fprintf(&b, "\n  pod %s: %s", e.Pod, e.PodState)
	} else {
		b.WriteString("\n  no pod of it exists")
	}
	if len(e.Events) > 0 {
		b.WriteString("\n  events:")
		for _, ev := range e.Events {
			b.WriteString("\n    " + ev)
		}
	}
	for _, l := range e.Logs {
		b.WriteString("\n  " + l)
	}
	return b.String()
}

func (e *NotReadyError) Unwrap() error { return runtime.ErrNotReady }

// workloadState is one read of a workload's status.
type workloadState struct {
	ready bool
	// fatal: the controller gave up (no waiting will help).
	fatal  bool
	status string
	note   string
	// selector finds its pods (newest revision's when known).
	selector *metav1.LabelSelector
}

// waitReady polls the workloads until all are ready, one gives up, or
// ctx ends. It returns a note (a Rollout paused for promotion) or a
// *NotReadyError.
func (d *Deployer) waitReady(ctx context.Context, objs []object) (string, error) {
	var workloads []object
	for _, o := range objs {
		switch o.Kind {
		case "Deployment", "StatefulSet", "DaemonSet", "Rollout":
			workloads = append(workloads, o)
		}
	}
	for {
		var notes []string
		var pending *object
		var last workloadState
		for i := range workloads {
			o := &workloads[i]
			st, err := d.state(ctx, o)
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				return "", explain(fmt.Sprintf("read the status of %s/%s", o.Kind, o.Name), err)
			}
			if st.fatal {
				return "", d.diagnose(ctx, o, st, "the controller gave up")
			}
			if !st.ready {
				pending, last = o, st
				break
			}
			if st.note != "" {
				notes = append(notes, st.note)
			}
		}
		if pending == nil && ctx.Err() == nil {
			return strings.Join(notes, "; "), nil
		}
		timer := time.NewTimer(d.poll)
		select {
		case <-ctx.Done():
			timer.Stop()
			if pending == nil {
				pending = &workloads[0]
			}
			return "", d.diagnose(ctx, pending, last, "not ready before the deadline ("+d.t.Timeout.String()+" or the step's timeout)")
		case <-timer.C:
		}
	}
}

func (d *Deployer) namespaceOf(o *object) string {
	if o.Namespace != "" {
		return o.Namespace
	}
	return d.c.Namespace
}

// state reads one workload's readiness from its status.
func (d *Deployer) state(ctx context.Context, o *object) (workloadState, error) {
	ns := d.namespaceOf(o)
	switch o.Kind {
	case "Deployment":
		dep, err := d.c.Client.AppsV1().Deployments(ns).Get(ctx, o.Name, metav1.GetOptions{})
		if err != nil {
			return workloadState{}, err
		}
		st := deploymentState(dep)
		if rs, ok := timedOutReplicaSet(dep); ok && st.fatal {
			got, err := d.c.Client.AppsV1().ReplicaSets(ns).Get(ctx, rs, metav1.GetOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return workloadState{}, err
			}
			if err != nil || staleTimeout(dep, got) {
				st.fatal = false
				st.status = "the deployment controller has not taken up the new spec yet (the progress deadline of an earlier rollout, ReplicaSet " + rs + ", passed)"
			}
		}
		return st, nil
	case "StatefulSet":
		ss, err := d.c.Client.AppsV1().StatefulSets(ns).Get(ctx, o.Name, metav1.GetOptions{})
		if err != nil {
			return workloadState{}, err
		}
		return statefulSetState(ss), nil
	case "DaemonSet":
		ds, err := d.c.Client.AppsV1().DaemonSets(ns).Get(ctx, o.Name, metav1.GetOptions{})
		if err != nil {
			return workloadState{}, err
		}
		return daemonSetState(ds), nil
	case "Rollout":
		u, err := d.c.Dynamic.Resource(rolloutsResource).Namespace(ns).Get(ctx, o.Name, metav1.GetOptions{})
		if err != nil {
			return workloadState{}, err
		}
		var ro rollouts.Rollout
		if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &ro); err != nil {
			return workloadState{}, fmt.Errorf("decode Rollout %s: %w", o.Name, err)
		}
		return rolloutState(&ro), nil
	}
	return workloadState{ready: true}, nil
}

func replicasOf(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func deploymentState(dep *appsv1.Deployment) workloadState {
	st := workloadState{selector: dep.Spec.Selector}
	want := replicasOf(dep.Spec.Replicas)
	s := dep.Status
	if s.ObservedGeneration < dep.Generation {
		st.status = "the deployment controller has not seen the new spec yet"
		return st
	}
	for _, c := range s.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
			st.fatal, st.status = true, "progress deadline exceeded: "+c.Message
			return st
		}
	}
	switch {
	case s.UpdatedReplicas < want:
		st.status = fmt.Sprintf("%d of %d replicas updated", s.UpdatedReplicas, want)
	case s.Replicas > s.UpdatedReplicas:
		st.status = fmt.Sprintf("%d old replicas still terminating", s.Replicas-s.UpdatedReplicas)
	case s.AvailableReplicas < want:
		st.status = fmt.Sprintf("%d of %d updated replicas available", s.AvailableReplicas, want)
	default:
		st.ready, st.status = true, fmt.Sprintf("%d of %d replicas available", s.AvailableReplicas, want)
	}
	return st
}

// timedOutRS reads the name of the ReplicaSet from the message of the
// deployment controller's ProgressDeadlineExceeded condition.
var timedOutRS = regexp.MustCompile(`^ReplicaSet "([^"]+)" has timed out progressing`)

// timedOutReplicaSet names the ReplicaSet whose progress deadline dep's
// Progressing condition says has passed.
func timedOutReplicaSet(dep *appsv1.Deployment) (string, bool) {
	for _, c := range dep.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			if m := timedOutRS.FindStringSubmatch(c.Message); m != nil {
				return m[1], true
			}
		}
	}
	return "", false
}

// staleTimeout reports whether the ReplicaSet rs that timed out belongs
// to an earlier rollout of dep than its current one. A rollback to a
// revision whose ReplicaSet still runs makes no progress the controller
// can count (its pods are ready already), so the controller's first
// status for the new spec keeps the previous rollout's timed-out
// condition until the old pods are gone: that is not this rollout
// failing.
func staleTimeout(dep *appsv1.Deployment, rs *appsv1.ReplicaSet) bool {
	const revision = "deployment.kubernetes.io/revision"
	cur, was := dep.Annotations[revision], rs.Annotations[revision]
	return cur != "" && was != "" && cur != was
}

func statefulSetState(ss *appsv1.StatefulSet) workloadState {
	st := workloadState{selector: ss.Spec.Selector}
	want := replicasOf(ss.Spec.Replicas)
	s := ss.Status
	switch {
	case s.ObservedGeneration < ss.Generation:
		st.status = "the statefulset controller has not seen the new spec yet"
	case ss.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType && s.UpdatedReplicas < want:
		st.status = fmt.Sprintf("%d of %d replicas updated", s.UpdatedReplicas, want)
	case s.ReadyReplicas < want:
		st.status = fmt.Sprintf("%d of %d replicas ready", s.ReadyReplicas, want)
	case ss.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType && s.UpdateRevision != "" && s.CurrentRevision != s.UpdateRevision:
		st.status = "the rolling update has not finished (current revision " + s.CurrentRevision + ", update " + s.UpdateRevision + ")"
	default:
		st.ready, st.status = true, fmt.Sprintf("%d of %d replicas ready", s.ReadyReplicas, want)
	}
	return st
}

// daemonSetState: every node that should run the DaemonSet's pod runs
// the new one, available.
func daemonSetState(ds *appsv1.DaemonSet) workloadState {
	st := workloadState{selector: ds.Spec.Selector}
	s := ds.Status
	switch {
	case s.ObservedGeneration < ds.Generation:
		st.status = "the daemonset controller has not seen the new spec yet"
	case ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType && s.UpdatedNumberScheduled < s.DesiredNumberScheduled:
		st.status = fmt.Sprintf("%d of %d nodes run the updated pod", s.UpdatedNumberScheduled, s.DesiredNumberScheduled)
	case s.NumberAvailable < s.DesiredNumberScheduled:
		st.status = fmt.Sprintf("%d of %d nodes' pods available", s.NumberAvailable, s.DesiredNumberScheduled)
	default:
		st.ready, st.status = true, fmt.Sprintf("%d of %d nodes' pods available", s.NumberAvailable, s.DesiredNumberScheduled)
	}
	return st
}

// rolloutState reads an Argo Rollout's phase. A blue-green Rollout
// paused for promotion counts as deployed: its preview runs the new
// revision, the active Service still the previous one, and promotion is
// the blue-green step's (or gantry rollout promote's) decision.
func rolloutState(ro *rollouts.Rollout) workloadState {
	sel := ro.Spec.Selector
	if sel != nil && ro.Status.CurrentPodHash != "" {
		sel = sel.DeepCopy()
		if sel.MatchLabels == nil {
			sel.MatchLabels = map[string]string{}
		}
		sel.MatchLabels[rollouts.DefaultRolloutUniqueLabelKey] = ro.Status.CurrentPodHash
	}
	st := workloadState{selector: sel}
	s := ro.Status
	status := "phase " + string(s.Phase)
	if s.Message != "" {
		status += ": " + s.Message
	}
	st.status = status
	if s.ObservedGeneration != strconv.FormatInt(ro.Generation, 10) {
		st.status = "the Argo Rollouts controller has not seen the new spec yet (" + status + ")"
		return st
	}
	switch s.Phase {
	case rollouts.RolloutPhaseHealthy:
		st.ready = true
	case rollouts.RolloutPhaseDegraded:
		st.fatal = true
	case rollouts.RolloutPhasePaused:
		if ro.Spec.Strategy.BlueGreen != nil && slices.ContainsFunc(s.PauseConditions, func(c rollouts.PauseCondition) bool {
			return c.Reason == rollouts.PauseReasonBlueGreenPause
		}) {
			st.ready = true
			st.note = fmt.Sprintf("Rollout %s is paused for promotion: its preview runs the new revision (pod hash %s), the active Service still serves the previous one; the blue-green step or gantry rollout promote promotes it", ro.Name, s.CurrentPodHash)
		}
	}
	return st
}

// diagnose builds the NotReadyError of workload o: its last status and
// the first pod that is not ready, with events and log lines.
func (d *Deployer) diagnose(ctx context.Context, o *object, st workloadState, cause string) error {
	// ctx may be the one that just ended.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	e := &NotReadyError{Workload: o.Kind + "/" + o.Name, Status: st.status, Cause: cause}
	if e.Status == "" {
		e.Status = "no status read"
	}
	ns := d.namespaceOf(o)
	if st.selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(st.selector)
		if err == nil {
			pods, err := d.c.Client.CoreV1().Pods(ns).List(dctx, metav1.ListOptions{LabelSelector: sel.String()})
			if err == nil {
				if p := failingPod(pods.Items); p != nil {
					e.Pod, e.PodState = p.Name, podState(p)
					e.Events = d.events(dctx, ns, "Pod", p.Name)
					e.Logs = d.lastLogs(dctx, p)
				}
			} else {
				e.Events = append(e.Events, "(pods not listed: "+err.Error()+")")
			}
		}
	}
	if e.Pod == "" {
		e.Events = append(e.Events, d.events(dctx, ns, o.Kind, o.Name)...)
	}
	return e
}

// failingPod picks the newest pod that is not ready.
func failingPod(pods []corev1.Pod) *corev1.Pod {
	slices.SortFunc(pods, func(a, b corev1.Pod) int {
		return b.CreationTimestamp.Compare(a.CreationTimestamp.Time)
	})
	for i := range pods {
		if !podReady(&pods[i]) {
			return &pods[i]
		}
	}
	if len(pods) > 0 {
		return &pods[0]
	}
	return nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podState is the pod's phase, its false conditions and its containers'
// waiting or terminated reasons.
func podState(p *corev1.Pod) string {
	parts := []string{string(p.Status.Phase)}
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			s := string(c.Type) + "=" + string(c.Status)
			if c.Reason != "" {
				s += " " + c.Reason
			}
			if c.Message != "" {
				s += ": " + c.Message
			}
			parts = append(parts, s)
		}
	}
	for _, cs := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
		switch {
		case cs.State.Waiting != nil:
			parts = append(parts, fmt.Sprintf("container %s waiting: %s %s", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message))
		case cs.State.Terminated != nil:
			parts = append(parts, fmt.Sprintf("container %s terminated: %s (exit %d) %s", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode, cs.State.Terminated.Message))
		}
		if cs.RestartCount > 0 {
			parts = append(parts, fmt.Sprintf("container %s restarted %d times", cs.Name, cs.RestartCount))
		}
	}
	return strings.Join(parts, "; ")
}

// events lists the events of one object, oldest first, at most 10.
func (d *Deployer) events(ctx context.Context, ns, kind, name string) []string {
	list, err := d.c.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=" + kind + ",involvedObject.name=" + name,
	})
	if err != nil {
		return []string{"(events not listed: " + err.Error() + ")"}
	}
	evs := list.Items
	slices.SortFunc(evs, func(a, b corev1.Event) int { return eventTime(a).Compare(eventTime(b)) })
	if len(evs) > 10 {
		evs = evs[len(evs)-10:]
	}
	var out []string
	for _, ev := range evs {
		s := fmt.Sprintf("%s %s: %s", ev.Type, ev.Reason, strings.TrimSpace(ev.Message))
		if ev.Count > 1 {
			s += fmt.Sprintf(" (x%d)", ev.Count)
		}
		out = append(out, s)
	}
	return out
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// lastLogs reads the last lines of each started container of p, or says
// why there are none (never started; a node that serves no logs).
func (d *Deployer) lastLogs(ctx context.Context, p *corev1.Pod) []string {
	started := ranContainers(p)
	var out []string
	tail, limit := int64(10), int64(4096)
	for _, c := range append(slices.Clone(p.Spec.InitContainers), p.Spec.Containers...) {
		if !started[c.Name] {
			out = append(out, "logs of "+c.Name+": none (the container never started)")
			continue
		}
		opts := &corev1.PodLogOptions{Container: c.Name, TailLines: &tail, LimitBytes: &limit}
		data, err := d.c.Client.CoreV1().Pods(p.Namespace).GetLogs(p.Name, opts).DoRaw(ctx)
		if err != nil {
			out = append(out, "logs of "+c.Name+": none available ("+firstLine(err.Error())+")")
			continue
		}
		text := strings.TrimRight(string(data), "\n")
		if text == "" {
			out = append(out, "logs of "+c.Name+": empty")
			continue
		}
		out = append(out, "last log lines of "+c.Name+":\n    "+strings.ReplaceAll(text, "\n", "\n    "))
	}
	return out
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
