package admissionhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/gantry-ci/gantry/internal/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// webhookOnBed serves the webhook over TLS on loopback and registers it
// with the bed's API server for the namespaces labelled
// gantry-test=NAMESPACE; it returns that namespace, created.
func webhookOnBed(t *testing.T, b *kubetest.Bed, f *fixture, namespace string) {
	t.Helper()
	cert, caPEM, err := kubetest.ServingCert("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- newHandler(t, f.policies).Serve(ctx, ln, cert) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("webhook: %v", err)
		}
	})
	v, m, err := Configurations(Install{Name: "gantry-" + namespace, URL: "https://" + ln.Addr().String(), CABundle: caPEM,
		NamespaceSelector: "gantry-test=" + namespace})
	if err != nil {
		t.Fatal(err)
	}
	adm := b.Client.AdmissionregistrationV1()
	if _, err := adm.ValidatingWebhookConfigurations().Create(t.Context(), v, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.MutatingWebhookConfigurations().Create(t.Context(), m, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = adm.ValidatingWebhookConfigurations().Delete(ctx, v.Name, metav1.DeleteOptions{})
		_ = adm.MutatingWebhookConfigurations().Delete(ctx, m.Name, metav1.DeleteOptions{})
	})
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace, Labels: map[string]string{"gantry-test": namespace}}}
	if _, err := b.Client.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func pod(name, image string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
	}
}

func deployment(name, image string) *appsv1.Deployment {
	one := int32(1)
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}},
		},
	}
}

// TestWebhookOnTheAPIServer registers the webhook with a real API server
// over TLS and creates objects through it.
func TestWebhookOnTheAPIServer(t *testing.T) {
	b := kubetest.Start(t)
	f := newFixture(t)
	const ns = "admission"
	webhookOnBed(t, b, f, ns)
	pods := b.Client.CoreV1().Pods(ns)
	ctx := t.Context()

	// The API server reads webhook configurations through an informer:
	// wait until the webhook answers.
	deadline := time.Now().Add(time.Minute)
	for i := 0; ; i++ {
		_, err := pods.Create(ctx, pod(fmt.Sprintf("probe-%d", i), f.unsigned), metav1.CreateOptions{})
		if err != nil && strings.Contains(err.Error(), "require-cosign-signature") {
			break
		}
		if err == nil {
			_ = pods.Delete(ctx, fmt.Sprintf("probe-%d", i), metav1.DeleteOptions{})
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API server does not call the webhook: last answer %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	refused := []struct {
		name, image string
		want        []string
	}{
		{"unsigned", f.unsigned, []string{"require-cosign-signature", "unsigned"}},
		{"other-registry", f.elsewhereTag, []string{"restrict-registries", "registry not allowed"}},
		{"failing-evidence", f.failing.String(), []string{"require-evidence", "evidence failing"}},
	}
	for _, tc := range refused {
		t.Run("pod "+tc.name+" refused", func(t *testing.T) {
			_, err := pods.Create(ctx, pod(tc.name, tc.image), metav1.CreateOptions{})
			checkRefused(t, err, tc.want)
		})
		t.Run("deployment "+tc.name+" refused", func(t *testing.T) {
			_, err := b.Client.AppsV1().Deployments(ns).Create(ctx, deployment(tc.name, tc.image), metav1.CreateOptions{})
			checkRefused(t, err, tc.want)
		})
	}

	t.Run("pod tag stored as its digest", func(t *testing.T) {
		if _, err := pods.Create(ctx, pod("signed", f.signedTag), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := pods.Get(ctx, "signed", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img := got.Spec.Containers[0].Image; img != f.signed.String() {
			t.Errorf("stored image %s, want %s", img, f.signed)
		}
	})
	t.Run("deployment tag stored as its digest and its pods run", func(t *testing.T) {
		if _, err := b.Client.AppsV1().Deployments(ns).Create(ctx, deployment("signed", f.signedTag), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := b.Client.AppsV1().Deployments(ns).Get(ctx, "signed", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img := got.Spec.Template.Spec.Containers[0].Image; img != f.signed.String() {
			t.Errorf("stored image %s, want %s", img, f.signed)
		}
		// The ReplicaSet's pods pass the webhook too.
		deadline := time.Now().Add(time.Minute)
		for {
			list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=signed"})
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Items) == 1 && list.Items[0].Status.Phase == corev1.PodRunning {
				if img := list.Items[0].Spec.Containers[0].Image; img != f.signed.String() {
					t.Errorf("pod image %s, want %s", img, f.signed)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the deployment's pod does not run: %+v", list.Items)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	t.Run("rollout tag stored as its digest", func(t *testing.T) {
		rollouts := b.Dynamic.Resource(schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}).Namespace(ns)
		r := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
			"metadata": map[string]any{"name": "api"},
			"spec": map[string]any{
				"replicas": int64(1),
				"selector": map[string]any{"matchLabels": map[string]any{"app": "api"}},
				"template": map[string]any{
					"metadata": map[string]any{"labels": map[string]any{"app": "api"}},
					"spec":     map[string]any{"containers": []any{map[string]any{"name": "api", "image": f.signedTag}}},
				},
				"strategy": map[string]any{"canary": map[string]any{}},
			},
		}}
		if _, err := rollouts.Create(ctx, r, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := rollouts.Get(ctx, "api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cs, _, _ := unstructured.NestedSlice(got.Object, "spec", "template", "spec", "containers")
		if img := cs[0].(map[string]any)["image"]; img != f.signed.String() {
			t.Errorf("stored image %v, want %s", img, f.signed)
		}
		r.SetName("unsigned")
		unstructured.SetNestedSlice(r.Object, []any{map[string]any{"name": "api", "image": f.unsigned}}, "spec", "template", "spec", "containers")
		_, err = rollouts.Create(ctx, r, metav1.CreateOptions{})
		checkRefused(t, err, []string{"require-cosign-signature", "unsigned"})
	})
}

// checkRefused checks the API server refused the object with the
// webhook's message.
func checkRefused(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatal("created; want refused by the webhook")
	}
	var se *apierrors.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("error %T %v, want the API server's status", err, err)
	}
	if !apierrors.IsForbidden(err) {
		t.Errorf("status %d %s, want 403 Forbidden: %v", se.ErrStatus.Code, se.ErrStatus.Reason, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message %q lacks %q", err.Error(), w)
		}
	}
}
