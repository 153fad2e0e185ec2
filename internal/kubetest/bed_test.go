package kubetest

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestMain(m *testing.M) { Main(m) }

func TestVersionsMatchBuildScript(t *testing.T) {
	script, err := os.ReadFile("../../scripts/testbed/build.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct{ variable, want string }{
		{"kube_version", KubernetesVersion}, {"kwok_version", KwokVersion}, {"argo_version", ArgoRolloutsVersion},
	} {
		m := regexp.MustCompile(`(?m)^` + v.variable + `=(\S+)$`).FindSubmatch(script)
		if m == nil || string(m[1]) != v.want {
			t.Errorf("build.sh %s = %q, want %s (kubetest's)", v.variable, m, v.want)
		}
	}
}

// eventually polls check until it passes or the test's deadline (a
// minute at most) passes.
func eventually(t *testing.T, what string, check func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var last error
	for {
		if last = check(ctx); last == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func TestDeploymentPodsRun(t *testing.T) {
	b := Start(t)
	ctx := t.Context()
	labels := map[string]string{"app": "web"}
	two := int32(2)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &two,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example/web:1"}}},
			},
		},
	}
	if _, err := b.Client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two pods of the deployment running on the fake nodes", func(ctx context.Context) error {
		pods, err := b.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && slices.Contains(Nodes, p.Spec.NodeName) {
				running++
			}
		}
		if running != 2 {
			return fmt.Errorf("%d of %d pods running on a kwok node", running, len(pods.Items))
		}
		return nil
	})
	// The pods' logs come through the apiserver from kwok's kubelet API.
	pods, err := b.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := b.Client.CoreV1().Pods("default").GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{Container: "web"}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("logs of %s: %v", pods.Items[0].Name, err)
	}
	if got, want := string(data), strings.Join(PodLog, "\n")+"\n"; got != want {
		t.Errorf("logs of %s: got %q, want %q", pods.Items[0].Name, got, want)
	}
	eventually(t, "the deployment available", func(ctx context.Context) error {
		got, err := b.Client.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Status.AvailableReplicas != 2 {
			return fmt.Errorf("available replicas %d, want 2", got.Status.AvailableReplicas)
		}
		return nil
	})
}

func TestArgoRollouts(t *testing.T) {
	b := Start(t)
	ctx := t.Context()
	res, err := b.Client.Discovery().ServerResourcesForGroupVersion("argoproj.io/v1alpha1")
	if err != nil {
		t.Fatalf("the Argo Rollouts API is not served: %v", err)
	}
	var served []string
	for _, r := range res.APIResources {
		served = append(served, r.Name)
	}
	for _, want := range []string{"rollouts", "analysisruns", "analysistemplates", "clusteranalysistemplates", "experiments"} {
		if !slices.Contains(served, want) {
			t.Errorf("argoproj.io/v1alpha1 serves %v, lacks %s", served, want)
		}
	}
	rollouts := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}
	r := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{"name": "api", "namespace": "default"},
		"spec": map[string]any{
			"replicas": int64(1),
			"selector": map[string]any{"matchLabels": map[string]any{"app": "api"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "api"}},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "api", "image": "registry.example/api:1"}}},
			},
			"strategy": map[string]any{"canary": map[string]any{"steps": []any{map[string]any{"setWeight": int64(100)}}}},
		},
	}}
	if _, err := b.Dynamic.Resource(rollouts).Namespace("default").Create(ctx, r, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the controller reconciles the Rollout to Healthy", func(ctx context.Context) error {
		got, err := b.Dynamic.Resource(rollouts).Namespace("default").Get(ctx, "api", metav1.GetOptions{})
		if err != nil {
			return err
		}
		phase, _, _ := unstructured.NestedString(got.Object, "status", "phase")
		if phase != "Healthy" {
			msg, _, _ := unstructured.NestedString(got.Object, "status", "message")
			return fmt.Errorf("rollout phase %q (%s), want Healthy", phase, msg)
		}
		return nil
	})
}
