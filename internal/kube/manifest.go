package kube

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// object is one rendered manifest document.
type object struct {
	// Source is the template it came from (chart/templates/x.yaml).
	Source     string
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	u          *unstructured.Unstructured
}

// parseManifest splits a Helm release manifest into objects.
func parseManifest(manifest string) ([]object, error) {
	var out []object
	for _, doc := range strings.Split("\n"+manifest, "\n---") {
		source := ""
		for _, line := range strings.Split(doc, "\n") {
			if s, ok := strings.CutPrefix(line, "# Source: "); ok {
				source = strings.TrimSpace(s)
				break
			}
		}
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("%s: a document without apiVersion and kind", source)
		}
		out = append(out, object{Source: source, APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Name: u.GetName(), Namespace: u.GetNamespace(), u: u})
	}
	return out, nil
}

// podTemplatePath is where a workload kind keeps its pod spec.
var podTemplatePath = map[string][]string{
	"Deployment":  {"spec", "template", "spec"},
	"StatefulSet": {"spec", "template", "spec"},
	"DaemonSet":   {"spec", "template", "spec"},
	"ReplicaSet":  {"spec", "template", "spec"},
	"Job":         {"spec", "template", "spec"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template", "spec"},
	"Rollout":     {"spec", "template", "spec"},
	"Pod":         {"spec"},
}

// checkPinned refuses a chart whose workloads do not run the pinned
// reference: each workload's pod template must run it, and no container
// may run the same repository by another tag or digest.
func checkPinned(objs []object, pin name.Digest, t Target) error {
	want := pin.String()
	repo := pin.Context().Name()
	workloads := 0
	for _, o := range objs {
		p, ok := podTemplatePath[o.Kind]
		if !ok {
			continue
		}
		spec, found, _ := unstructured.NestedMap(o.u.Object, p...)
		if !found {
			continue // a Rollout's workloadRef: the pod template is elsewhere
		}
		workloads++
		var images []string
		runs := false
		for _, field := range []string{"initContainers", "containers"} {
			cs, _, _ := unstructured.NestedSlice(spec, field)
			for _, c := range cs {
				cm, _ := c.(map[string]any)
				img, _ := cm["image"].(string)
				cname, _ := cm["name"].(string)
				images = append(images, cname+"="+img)
				if img == want {
					runs = true
					continue
				}
				if r, err := name.ParseReference(img); err == nil && r.Context().Name() == repo {
					return fmt.Errorf("%s: %s %s: container %s runs %s, not the admitted %s: %w (the chart must take the image from %s and %s, or set kubernetes.image_values to the values it reads)", o.Source, o.Kind, o.Name, cname, img, want, ErrDigestIgnored, t.RepositoryValue, t.DigestValue)
				}
			}
		}
		if !runs {
			return fmt.Errorf("%s: %s %s: no container runs the admitted %s (%s): %w; set kubernetes.image_values to the values the chart reads the image from (now %s and %s)", o.Source, o.Kind, o.Name, want, strings.Join(images, ", "), ErrDigestIgnored, t.RepositoryValue, t.DigestValue)
		}
	}
	if workloads == 0 {
		return errors.New("the chart renders no workload (Deployment, StatefulSet, DaemonSet, Job, Rollout, Pod): nothing would run the image")
	}
	return nil
}
