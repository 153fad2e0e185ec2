package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"

	"helm.sh/helm/v3/pkg/action"

	"github.com/gantry-ci/gantry/internal/kubetest"
)

// storageClass names the PersistentVolumes the test makes for the
// chart's claims: the test bed has no volume provisioner.
const storageClass = "gantry-chart-test"

// The chart installs, becomes ready, upgrades with a new configuration
// (keeping its generated PostgreSQL password and certificate) and
// uninstalls, with the Helm SDK against the real API server of the test
// bed (kwok runs the pods).
func TestInstallUpgradeUninstall(t *testing.T) {
	b := kubetest.Start(t)
	ctx := t.Context()
	const ns = "gantry-chart"
	if _, err := b.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	// One volume for the state dir, one for PostgreSQL's data.
	for _, name := range []string{"gantry-chart-state", "gantry-chart-pgdata"} {
		makeVolume(ctx, t, b.Client, name)
	}
	cfg := helmConfig(t, b.Kubeconfig, ns)

	base := `
persistence: {storageClass: ` + storageClass + `, size: 1Gi}
postgresql:
  persistence: {storageClass: ` + storageClass + `, size: 1Gi}
`
	inst := action.NewInstall(cfg)
	inst.ReleaseName = testRelease
	inst.Namespace = ns
	inst.Timeout = 2 * time.Minute
	rel, err := inst.RunWithContext(ctx, loadChart(t), values(t, base))
	if err != nil {
		t.Fatalf("helm install: %v", err)
	}
	if rel.Info.Status != "deployed" {
		t.Fatalf("release status %q, want deployed", rel.Info.Status)
	}
	waitReady(t, b.Client, ns, 1)
	pgSecret := secretData(ctx, t, b.Client, ns, "ci-postgresql")
	tlsSecret := secretData(ctx, t, b.Client, ns, "ci-gantry-tls")
	if len(pgSecret["password"]) != 32 {
		t.Fatalf("generated PostgreSQL password has %d bytes, want 32", len(pgSecret["password"]))
	}
	if !bytes.Contains(tlsSecret["tls.crt"], []byte("BEGIN CERTIFICATE")) {
		t.Fatalf("generated tls.crt is not a PEM certificate: %.60q", tlsSecret["tls.crt"])
	}
	pg, err := b.Client.AppsV1().StatefulSets(ns).Get(ctx, "ci-postgresql", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The webhook secret the upgrade turns on.
	hooks := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "hooks", Namespace: ns}, Data: map[string][]byte{"secret": []byte("0123456789abcdef0123456789abcdef")}}
	if _, err := b.Client.CoreV1().Secrets(ns).Create(ctx, hooks, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// An upgrade that changes the configuration rolls the Deployment
	// and keeps what was generated at install.
	up := action.NewUpgrade(cfg)
	up.Namespace = ns
	up.Timeout = 2 * time.Minute
	rel, err = up.RunWithContext(ctx, testRelease, loadChart(t), values(t, base+`
server: {workers: 3, origins: ["https://ci.example.com"], repos: ["https://github.com/acme/app.git"]}
webhooks: {existingSecret: hooks}
`))
	if err != nil {
		t.Fatalf("helm upgrade: %v", err)
	}
	if rel.Version != 2 || rel.Info.Status != "deployed" {
		t.Fatalf("release version %d status %q after upgrade, want 2 deployed", rel.Version, rel.Info.Status)
	}
	waitReady(t, b.Client, ns, 2)
	eventually(t, "the running pod has the upgraded arguments", func(ctx context.Context) error {
		pods, err := b.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=gantry,app.kubernetes.io/instance=ci"})
		if err != nil {
			return err
		}
		var seen []string
		for _, p := range pods.Items {
			args := p.Spec.Containers[0].Args
			w, _ := flag(args, "workers")
			o, _ := flag(args, "origin")
			h, _ := flag(args, "webhook-secret-file")
			seen = append(seen, fmt.Sprintf("%s (%s, %d init containers): --workers %q --origin %q --webhook-secret-file %q", p.Name, p.Status.Phase, len(p.Spec.InitContainers), w, o, h))
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && w == "3" && o == "https://ci.example.com" &&
				h == "/run/gantry/secrets/webhook-secret" && len(p.Spec.InitContainers) == 1 {
				return nil
			}
		}
		return fmt.Errorf("no running pod with the upgraded flags and the secret files' init container; pods: %v", seen)
	})
	if got, err := b.Client.AppsV1().StatefulSets(ns).Get(ctx, "ci-postgresql", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	} else if got.Generation != pg.Generation {
		t.Errorf("PostgreSQL's StatefulSet after gantry's upgrade: generation %d, was %d; an upgrade of gantry's configuration must not restart the database", got.Generation, pg.Generation)
	}
	if got := secretData(ctx, t, b.Client, ns, "ci-postgresql"); !bytes.Equal(got["password"], pgSecret["password"]) {
		t.Error("the upgrade changed the generated PostgreSQL password; the database was initialised with the old one")
	}
	if got := secretData(ctx, t, b.Client, ns, "ci-gantry-tls"); !bytes.Equal(got["tls.key"], tlsSecret["tls.key"]) {
		t.Error("the upgrade generated a new TLS key")
	}

	// Uninstall removes every object of the release but the data: the
	// StatefulSet's claim (Kubernetes keeps volume claim templates'
	// claims) and the state dir's (helm.sh/resource-policy: keep).
	un := action.NewUninstall(cfg)
	un.Wait = false
	if _, err := un.Run(testRelease); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	eventually(t, "the release's objects deleted", func(ctx context.Context) error {
		var left []string
		c := b.Client
		check := func(kind string, err error) {
			if err == nil {
				left = append(left, kind)
			} else if !apierrors.IsNotFound(err) {
				left = append(left, kind+": "+err.Error())
			}
		}
		_, err := c.AppsV1().Deployments(ns).Get(ctx, "ci-gantry", metav1.GetOptions{})
		check("Deployment/ci-gantry", err)
		_, err = c.AppsV1().StatefulSets(ns).Get(ctx, "ci-postgresql", metav1.GetOptions{})
		check("StatefulSet/ci-postgresql", err)
		for _, s := range []string{"ci-gantry", "ci-postgresql", "ci-postgresql-hl"} {
			_, err = c.CoreV1().Services(ns).Get(ctx, s, metav1.GetOptions{})
			check("Service/"+s, err)
		}
		for _, s := range []string{"ci-gantry-tls", "ci-postgresql"} {
			_, err = c.CoreV1().Secrets(ns).Get(ctx, s, metav1.GetOptions{})
			check("Secret/"+s, err)
		}
		_, err = c.CoreV1().ServiceAccounts(ns).Get(ctx, "ci-gantry", metav1.GetOptions{})
		check("ServiceAccount/ci-gantry", err)
		_, err = c.NetworkingV1().NetworkPolicies(ns).Get(ctx, "ci-postgresql", metav1.GetOptions{})
		check("NetworkPolicy/ci-postgresql", err)
		if len(left) > 0 {
			return fmt.Errorf("still there: %s", strings.Join(left, ", "))
		}
		return nil
	})
	for _, claim := range []string{"data-ci-postgresql-0", "ci-gantry-state"} {
		if _, err := b.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{}); err != nil {
			t.Errorf("claim %s after uninstall: %v; want it kept", claim, err)
		}
	}
	list := action.NewList(cfg)
	list.All = true
	rels, err := list.Run()
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 0 {
		t.Errorf("%d releases left after uninstall, want none", len(rels))
	}
}

// With SQLite the store is on the state dir's claim: one replica, no
// PostgreSQL, the claim bound.
func TestInstallSQLite(t *testing.T) {
	b := kubetest.Start(t)
	ctx := t.Context()
	const ns = "gantry-chart-sqlite"
	if _, err := b.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	makeVolume(ctx, t, b.Client, "gantry-chart-sqlite-state")
	cfg := helmConfig(t, b.Kubeconfig, ns)
	inst := action.NewInstall(cfg)
	inst.ReleaseName = testRelease
	inst.Namespace = ns
	if _, err := inst.RunWithContext(ctx, loadChart(t), values(t, `
postgresql: {enabled: false}
persistence: {storageClass: `+storageClass+`, size: 1Gi}
`)); err != nil {
		t.Fatalf("helm install: %v", err)
	}
	eventually(t, "the gantry Deployment ready", func(ctx context.Context) error {
		d, err := b.Client.AppsV1().Deployments(ns).Get(ctx, "ci-gantry", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := deploymentReady(d, 1); err != nil {
			return fmt.Errorf("%w%s", err, podStates(ctx, b.Client, ns, "app.kubernetes.io/name=gantry"))
		}
		return nil
	})
	pvc, err := b.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "ci-gantry-state", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName != "gantry-chart-sqlite-state" {
		t.Errorf("state claim %s bound to %q, want Bound to gantry-chart-sqlite-state", pvc.Status.Phase, pvc.Spec.VolumeName)
	}
	sets, err := b.Client.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sets.Items) != 0 {
		t.Errorf("%d StatefulSets with SQLite, want none", len(sets.Items))
	}
	if _, err := action.NewUninstall(cfg).Run(testRelease); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
}

// helmConfig is the Helm SDK's configuration for the bed's cluster,
// releases stored as Secrets as helm does.
func helmConfig(t *testing.T, kubeconfig, ns string) *action.Configuration {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &kubeconfig
	flags.Namespace = &ns
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, ns, "secret", t.Logf); err != nil {
		t.Fatalf("helm configuration: %v", err)
	}
	return cfg
}

// makeVolume makes a PersistentVolume of the test's storage class; the
// claims of the chart bind to them.
func makeVolume(ctx context.Context, t *testing.T, c kubernetes.Interface, name string) {
	t.Helper()
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			StorageClassName:              storageClass,
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/" + name}},
		},
	}
	if _, err := c.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create PersistentVolume %s: %v", name, err)
	}
}

func secretData(ctx context.Context, t *testing.T, c kubernetes.Interface, ns, name string) map[string][]byte {
	t.Helper()
	s, err := c.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get Secret %s: %v", name, err)
	}
	return s.Data
}

// waitReady waits until the Deployment has rolled out its generation
// (at least minGeneration) with every replica ready, and the PostgreSQL
// StatefulSet has its replica ready.
func waitReady(t *testing.T, c kubernetes.Interface, ns string, minGeneration int64) {
	t.Helper()
	eventually(t, "the gantry Deployment rolled out and ready", func(ctx context.Context) error {
		d, err := c.AppsV1().Deployments(ns).Get(ctx, "ci-gantry", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := deploymentReady(d, minGeneration); err != nil {
			return fmt.Errorf("%w%s", err, podStates(ctx, c, ns, "app.kubernetes.io/name=gantry"))
		}
		return nil
	})
	eventually(t, "the PostgreSQL StatefulSet ready", func(ctx context.Context) error {
		s, err := c.AppsV1().StatefulSets(ns).Get(ctx, "ci-postgresql", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if s.Status.ObservedGeneration < s.Generation || s.Status.ReadyReplicas != 1 || s.Status.UpdatedReplicas != 1 {
			return fmt.Errorf("generation %d observed %d, ready %d, updated %d; want 1 ready and updated%s",
				s.Generation, s.Status.ObservedGeneration, s.Status.ReadyReplicas, s.Status.UpdatedReplicas, podStates(ctx, c, ns, "app.kubernetes.io/name=postgresql"))
		}
		return nil
	})
}

func deploymentReady(d *appsv1.Deployment, minGeneration int64) error {
	want := *d.Spec.Replicas
	st := d.Status
	if d.Generation < minGeneration || st.ObservedGeneration < d.Generation || st.UpdatedReplicas != want || st.ReadyReplicas != want || st.Replicas != want {
		return fmt.Errorf("generation %d (want >= %d) observed %d, replicas %d, updated %d, ready %d; want %d of each",
			d.Generation, minGeneration, st.ObservedGeneration, st.Replicas, st.UpdatedReplicas, st.ReadyReplicas, want)
	}
	return nil
}

// podStates describes the pods of a selector, for failure messages.
func podStates(ctx context.Context, c kubernetes.Interface, ns, selector string) string {
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return "; pods: " + err.Error()
	}
	var out []string
	for _, p := range pods.Items {
		s := fmt.Sprintf("%s %s on %q", p.Name, p.Status.Phase, p.Spec.NodeName)
		for _, cond := range p.Status.Conditions {
			if cond.Status != corev1.ConditionTrue {
				s += fmt.Sprintf(" %s=%s(%s)", cond.Type, cond.Status, cond.Message)
			}
		}
		out = append(out, s)
	}
	return "; pods: " + strings.Join(out, ", ")
}

// eventually polls check until it passes, or fails the test with the
// last state seen after two minutes.
func eventually(t *testing.T, what string, check func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var last error
	for {
		if last = check(ctx); last == nil {
			return
		}
		select {
		case <-ctx.Done():
			if errors.Is(last, context.DeadlineExceeded) {
				t.Fatalf("%s: timed out", what)
			}
			t.Fatalf("%s: %v", what, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
