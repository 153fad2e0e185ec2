package admission

import (
	"encoding/json"
	"fmt"
)

// FromObject reads the pod spec of a Kubernetes object (JSON, as an
// AdmissionReview carries it): a Pod, or the pod template of a
// Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController,
// Job, CronJob or Argo Rollout. It returns the JSON Pointer of the pod
// spec inside the object, to prefix Review's patches with.
func FromObject(object []byte) (PodSpec, string, error) {
	var head struct {
		Kind string          `json:"kind"`
		Spec json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(object, &head); err != nil {
		return PodSpec{}, "", fmt.Errorf("read object: %w", err)
	}
	var path []string
	switch head.Kind {
	case "Pod":
		path = []string{"spec"}
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "Rollout":
		path = []string{"spec", "template", "spec"}
	case "CronJob":
		path = []string{"spec", "jobTemplate", "spec", "template", "spec"}
	default:
		return PodSpec{}, "", fmt.Errorf("read object: kind %q holds no pod spec gantry reads", head.Kind)
	}
	raw := json.RawMessage(object)
	pointer := ""
	for _, step := range path {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return PodSpec{}, "", fmt.Errorf("read %s%s: %w", head.Kind, pointer, err)
		}
		next, ok := m[step]
		pointer += "/" + step
		if !ok {
			return PodSpec{}, "", fmt.Errorf("read %s: no %s", head.Kind, pointer)
		}
		raw = next
	}
	var pod PodSpec
	if err := json.Unmarshal(raw, &pod); err != nil {
		return PodSpec{}, "", fmt.Errorf("read %s%s: %w", head.Kind, pointer, err)
	}
	return pod, pointer, nil
}
