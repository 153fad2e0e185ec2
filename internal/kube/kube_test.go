package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rollouts "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/gantry-ci/gantry/internal/admission"
	"github.com/gantry-ci/gantry/internal/kubetest"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/syncbuf"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// digest is a made-up image digest: kwok's pods never pull.
func digest(n int) string { return fmt.Sprintf("sha256:%064x", n) }

const webRepo = "registry.example/web"

func webImage(n int) string { return webRepo + "@" + digest(n) }

// newDeployer returns a deployer of release rel in namespace ns on the
// bed, with gantry's real admission (no policy, no evidence required).
func newDeployer(t *testing.T, kubeconfig, ns, rel string, mod ...func(*Target)) *Deployer {
	t.Helper()
	adm, err := admission.New()
	if err != nil {
		t.Fatal(err)
	}
	tg := Target{Environment: rel, Kubeconfig: kubeconfig, Namespace: ns, Release: rel, Timeout: 2 * time.Minute}
	for _, m := range mod {
		m(&tg)
	}
	c, err := Connect(tg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(tg, c, runtime.EnvironmentSpec{}, adm, withPoll(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func webRequest(image string, set map[string]any) Request {
	return Request{Chart: filepath.Join("testdata", "web"), Set: set, Image: image, Who: "tester", Run: 7, Reason: "deploy"}
}

// deploymentImage is the image the Deployment's pod template runs.
func deploymentImage(t *testing.T, b *kubetest.Bed, ns, name string) string {
	t.Helper()
	dep, err := b.Client.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return dep.Spec.Template.Spec.Containers[0].Image
}

func statuses(revs []runtime.Revision) string {
	var s []string
	for _, r := range revs {
		s = append(s, fmt.Sprintf("%d:%s:%s", r.Number, r.Status, r.Digest[len(r.Digest)-2:]))
	}
	return strings.Join(s, " ")
}

func TestDeploymentDeployUpgradeRollback(t *testing.T) {
	b := kubetest.Start(t)
	ctx := context.Background()
	d := newDeployer(t, b.Kubeconfig, "web-ns", "web")
	for i, n := range []int{1, 2} {
		rev, err := d.Deploy(ctx, webRequest(webImage(n), map[string]any{"replicas": 2}))
		if err != nil {
			t.Fatalf("deploy %d: %v", n, err)
		}
		if rev.Number != i+1 || rev.Digest != digest(n) || rev.Status != "serving" || rev.Who != "tester" || rev.Run != 7 {
			t.Fatalf("deploy %d: got revision %+v, want number %d serving %s by tester in run 7", n, rev, i+1, digest(n))
		}
		if got := deploymentImage(t, b, "web-ns", "web-web"); got != webImage(n) {
			t.Errorf("deploy %d: pod template runs %s, want %s", n, got, webImage(n))
		}
	}
	st, err := d.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ready := 0
	for _, in := range st.Instances {
		if in.State == "ready" {
			ready++
		}
	}
	if st.Current == nil || st.Current.Number != 2 || ready < 2 {
		t.Errorf("status: got current %+v, %d ready of %+v; want revision 2 with 2 ready pods", st.Current, ready, st.Instances)
	}

	rev, err := d.Rollback(ctx, 0, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Number != 3 || rev.Digest != digest(1) || rev.Who != "alice" || rev.Reason != "rollback to 1" {
		t.Errorf("rollback: got %+v, want revision 3 running %s by alice, reason rollback to 1", rev, digest(1))
	}
	if got := deploymentImage(t, b, "web-ns", "web-web"); got != webImage(1) {
		t.Errorf("after rollback the pod template runs %s, want %s", got, webImage(1))
	}
	if _, err := d.Rollback(ctx, 2, "alice", "rollback to 2"); err != nil {
		t.Fatal(err)
	}
	if got := deploymentImage(t, b, "web-ns", "web-web"); got != webImage(2) {
		t.Errorf("after rollback to 2 the pod template runs %s, want %s", got, webImage(2))
	}
	hist, err := d.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := statuses(hist), "1:superseded:01 2:superseded:02 3:superseded:01 4:serving:02"; got != want {
		t.Errorf("history: got %s, want %s", got, want)
	}
	if _, err := d.Rollback(ctx, 9, "alice", ""); !errors.Is(err, ErrNoRevision) {
		t.Errorf("rollback to 9: got %v, want ErrNoRevision", err)
	}
}

func TestDeploymentNeverReady(t *testing.T) {
	b := kubetest.Start(t)
	ctx := context.Background()
	d := newDeployer(t, b.Kubeconfig, "hungry-ns", "hungry")
	if _, err := d.Deploy(ctx, webRequest(webImage(1), map[string]any{"replicas": 1})); err != nil {
		t.Fatal(err)
	}
	// 1000 CPUs fit on no node: the scheduler says so in the pod's events
	// and the deployment controller gives up after its progress deadline.
	_, err := d.Deploy(ctx, webRequest(webImage(2), map[string]any{"replicas": 1, "cpu": "1000", "progressDeadlineSeconds": 5}))
	if !errors.Is(err, runtime.ErrNotReady) {
		t.Fatalf("got %v, want runtime.ErrNotReady", err)
	}
	var nr *NotReadyError
	if !errors.As(err, &nr) {
		t.Fatalf("got %T %v, want a *NotReadyError", err, err)
	}
	if nr.Workload != "Deployment/hungry-web" || !strings.HasPrefix(nr.Pod, "hungry-web-") {
		t.Errorf("got workload %q pod %q, want Deployment/hungry-web and one of its pods", nr.Workload, nr.Pod)
	}
	if !strings.Contains(strings.Join(nr.Events, "\n"), "FailedScheduling") || !strings.Contains(err.Error(), "Insufficient cpu") {
		t.Errorf("error does not hold the scheduler's event:\n%v", err)
	}
	if !strings.Contains(err.Error(), "logs of web: none (the container never started)") {
		t.Errorf("error does not say why there are no logs:\n%v", err)
	}
	t.Logf("the error reads:\n%v", err)
	hist, herr := d.History(ctx)
	if herr != nil {
		t.Fatal(herr)
	}
	if got, want := statuses(hist), "1:superseded:01 2:failed:02"; got != want {
		t.Errorf("history: got %s, want %s", got, want)
	}
	if hist[1].Message == "" {
		t.Errorf("the failed revision records no reason: %+v", hist[1])
	}
	// on_failure: rollback goes back to what served.
	rev, err := d.Rollback(ctx, 0, "run 7", "on_failure of stage staging")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Number != 3 || rev.Digest != digest(1) || rev.Status != "serving" {
		t.Errorf("rollback: got %+v, want revision 3 serving %s", rev, digest(1))
	}
}

// TestExampleChart installs the example payment service's chart (an
// Argo blue-green Rollout with its Services, HPA, PDB, ConfigMap and
// AnalysisTemplate) and upgrades it. The first install is Healthy at
// once, as Argo does for a first rollout. The upgrade brings the new
// digest up as the preview and runs the chart's pre-promotion analysis,
// which queries a Prometheus the bed does not have: Argo aborts, the
// deploy fails with Argo's reason, the active Service never left the
// first revision, and a rollback (on_failure) makes it Healthy again.
func TestExampleChart(t *testing.T) {
	b := kubetest.Start(t)
	ctx := context.Background()
	d := newDeployer(t, b.Kubeconfig, "payments", "payment-service")
	chart := filepath.Join("..", "..", "examples", "payment-service", "deploy", "chart")
	repo := "registry.example/examplepay/payment-service"
	req := func(n int) Request {
		return Request{Chart: chart, Image: repo + "@" + digest(n), Who: "tester", Reason: "deploy"}
	}
	rev, err := d.Deploy(ctx, req(1))
	if err != nil {
		t.Fatal(err)
	}
	if rev.Number != 1 || rev.Message != "" {
		t.Errorf("install: got %+v, want revision 1, Healthy (no pause note)", rev)
	}
	ro := rollout(t, b, "payments", "payment-service")
	if ro.Status.Phase != "Healthy" {
		t.Fatalf("install: Rollout phase %s (%s), want Healthy", ro.Status.Phase, ro.Status.Message)
	}
	stable := ro.Status.CurrentPodHash

	_, err = d.Deploy(ctx, req(2))
	var nr *NotReadyError
	if !errors.As(err, &nr) || nr.Workload != "Rollout/payment-service" || !strings.Contains(nr.Status, `Metric "p99-latency" assessed Error`) {
		t.Fatalf("upgrade: got %v, want a NotReadyError of Rollout/payment-service naming the failed analysis", err)
	}
	ro = rollout(t, b, "payments", "payment-service")
	if ro.Status.CurrentPodHash == stable || ro.Status.BlueGreen.ActiveSelector != stable {
		t.Errorf("upgrade: current hash %s, active %s; want a new hash and the active Service still on %s", ro.Status.CurrentPodHash, ro.Status.BlueGreen.ActiveSelector, stable)
	}
	if got := activeSelector(t, b, "payments", "payment-service"); got != stable {
		t.Errorf("active Service selects %s, want %s", got, stable)
	}
	rev, err = d.Rollback(ctx, 0, "run 1", "on_failure of stage deploy")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Number != 3 || rev.Digest != digest(1) {
		t.Errorf("rollback: got %+v, want revision 3 running %s", rev, digest(1))
	}
	if ro := rollout(t, b, "payments", "payment-service"); ro.Status.Phase != "Healthy" || ro.Status.CurrentPodHash != stable {
		t.Errorf("after rollback: phase %s hash %s, want Healthy on %s", ro.Status.Phase, ro.Status.CurrentPodHash, stable)
	}
}

// TestBlueGreenUpgradePausesForPromotion: a plain deploy of a blue-green
// Rollout that waits for promotion returns once the preview runs the new
// digest, ready, and says the Rollout is paused; with auto-promotion it
// returns once the active Service switched.
func TestBlueGreenUpgradePausesForPromotion(t *testing.T) {
	b := kubetest.Start(t)
	ctx := context.Background()
	d := newDeployer(t, b.Kubeconfig, "bg-ns", "bg")
	req := func(n int, auto bool) Request {
		return Request{Chart: filepath.Join("testdata", "bluegreen"), Image: webImage(n), Set: map[string]any{"autoPromotionEnabled": auto}}
	}
	if _, err := d.Deploy(ctx, req(1, false)); err != nil {
		t.Fatal(err)
	}
	stable := rollout(t, b, "bg-ns", "bg").Status.CurrentPodHash
	if names, err := d.Rollouts(ctx); err != nil || len(names) != 1 || names[0] != "bg" {
		t.Errorf("Rollouts: got %v, %v; want [bg]", names, err)
	}
	rev, err := d.Deploy(ctx, req(2, false))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rev.Message, "Rollout bg is paused for promotion") {
		t.Errorf("upgrade: got message %q, want the pause note", rev.Message)
	}
	ro := rollout(t, b, "bg-ns", "bg")
	if ro.Status.Phase != "Paused" || ro.Status.BlueGreen.PreviewSelector != ro.Status.CurrentPodHash || ro.Status.CurrentPodHash == stable {
		t.Errorf("upgrade: phase %s, preview %s, current %s; want Paused with the preview on the new hash", ro.Status.Phase, ro.Status.BlueGreen.PreviewSelector, ro.Status.CurrentPodHash)
	}
	if got := activeSelector(t, b, "bg-ns", "bg"); got != stable {
		t.Errorf("active Service selects %s, want still %s", got, stable)
	}
	if n := readyPods(t, b, "bg-ns", ro.Status.CurrentPodHash, webImage(2)); n != 2 {
		t.Errorf("%d ready preview pods run %s, want 2", n, webImage(2))
	}
	// With auto-promotion the deploy returns once the switch is done.
	if _, err := d.Deploy(ctx, req(3, true)); err != nil {
		t.Fatal(err)
	}
	ro = rollout(t, b, "bg-ns", "bg")
	if got := activeSelector(t, b, "bg-ns", "bg"); ro.Status.Phase != "Healthy" || got != ro.Status.CurrentPodHash {
		t.Errorf("auto-promoted upgrade: phase %s, active Service on %s, current %s; want Healthy and switched", ro.Status.Phase, got, ro.Status.CurrentPodHash)
	}
}

func activeSelector(t *testing.T, b *kubetest.Bed, ns, name string) string {
	t.Helper()
	svc, err := b.Client.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc.Spec.Selector["rollouts-pod-template-hash"]
}

func readyPods(t *testing.T, b *kubetest.Bed, ns, hash, image string) int {
	t.Helper()
	pods, err := b.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "rollouts-pod-template-hash=" + hash})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := range pods.Items {
		if pods.Items[i].Spec.Containers[0].Image == image && podReady(&pods.Items[i]) {
			n++
		}
	}
	return n
}

func TestDigestIgnored(t *testing.T) {
	b := kubetest.Start(t)
	d := newDeployer(t, b.Kubeconfig, "ignored-ns", "ignored", func(tg *Target) {
		tg.RepositoryValue, tg.DigestValue = "app.repository", "app.digest"
	})
	_, err := d.Deploy(context.Background(), webRequest(webImage(1), map[string]any{"image.digest": digest(9)}))
	if !errors.Is(err, ErrDigestIgnored) || !strings.Contains(err.Error(), "web/templates/deployment.yaml: Deployment ignored-web: container web runs "+webImage(9)) {
		t.Fatalf("got %v, want ErrDigestIgnored naming the template and container", err)
	}
	if _, err := d.History(context.Background()); !errors.Is(err, ErrNoRelease) {
		t.Errorf("history after a refused deploy: got %v, want ErrNoRelease (nothing applied)", err)
	}
}

func TestAdmissionRefusesBeforeHelm(t *testing.T) {
	b := kubetest.Start(t)
	d := newDeployer(t, b.Kubeconfig, "refused-ns", "refused")
	d.spec = runtime.EnvironmentSpec{Require: []string{"tests"}, Key: filepath.Join(t.TempDir(), "missing.pub")}
	_, err := d.Deploy(context.Background(), webRequest("127.0.0.1:1/web@"+digest(1), nil))
	if !errors.Is(err, runtime.ErrAdmission) {
		t.Fatalf("got %v, want runtime.ErrAdmission", err)
	}
	if _, err := d.History(context.Background()); !errors.Is(err, ErrNoRelease) {
		t.Errorf("history after a refusal: got %v, want ErrNoRelease", err)
	}
}

// restrictedKubeconfig writes a kubeconfig for a user whose client
// certificate the bed's CA signed and who has no RoleBinding.
func restrictedKubeconfig(t *testing.T, b *kubetest.Bed, user string) string {
	t.Helper()
	cert, key, err := b.CA.Issue(user, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["bed"] = &clientcmdapi.Cluster{Server: b.Config.Host, CertificateAuthorityData: b.CA.PEM}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	kc.Contexts["restricted"] = &clientcmdapi.Context{Cluster: "bed", AuthInfo: user, Namespace: "default"}
	kc.CurrentContext = "restricted"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAPIServerErrors(t *testing.T) {
	b := kubetest.Start(t)
	ctx := context.Background()
	if _, err := b.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "locked"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	busy := newDeployer(t, b.Kubeconfig, "busy-ns", "busy")
	if _, err := busy.Deploy(ctx, webRequest(webImage(1), nil)); err != nil {
		t.Fatal(err)
	}
	// Another process's upgrade in progress: its pending revision.
	cfg, err := busy.helm()
	if err != nil {
		t.Fatal(err)
	}
	cur, err := cfg.Releases.Last("busy")
	if err != nil {
		t.Fatal(err)
	}
	pending := *cur
	info := *cur.Info
	pending.Info, pending.Version = &info, 2
	pending.Info.Status, pending.Info.Description = release.StatusPendingUpgrade, "Preparing upgrade"
	if err := cfg.Releases.Create(&pending); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		do   func() error
		is   error
		want string
	}{
		{"RBAC denied", func() error {
			d := newDeployer(t, restrictedKubeconfig(t, b, "intruder"), "locked", "locked")
			_, err := d.Deploy(ctx, webRequest(webImage(1), nil))
			return err
		}, ErrForbidden, `release locked in namespace locked: kubernetes denied the request (RBAC): secrets is forbidden: User "intruder" cannot list resource "secrets" in API group "" in the namespace "locked"; give the kubeconfig's user a RoleBinding`},
		{"CRD missing", func() error {
			d := newDeployer(t, b.Kubeconfig, "widget-ns", "widget")
			_, err := d.Deploy(ctx, Request{Chart: filepath.Join("testdata", "widget"), Image: webImage(1)})
			return err
		}, ErrCRDMissing, "widget/templates/widget.yaml: Widget widget: kind not served by the cluster: the cluster serves no Widget in widgets.example.com/v1; install its CustomResourceDefinition first"},
		{"conflict on deploy", func() error {
			_, err := busy.Deploy(ctx, webRequest(webImage(2), nil))
			return err
		}, ErrConflict, "upgrade release busy in namespace busy-ns: another operation on the release is in progress: revision 2 is pending-upgrade"},
		{"conflict on rollback", func() error {
			_, err := busy.Rollback(ctx, 0, "alice", "")
			return err
		}, ErrConflict, "roll back release busy in namespace busy-ns: another operation on the release is in progress: revision 2 is pending-upgrade"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v\nwant %v with %q", err, tc.is, tc.want)
			}
		})
	}
}

func TestExpandHome(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct{ in, want string }{
		{"~/.kube/prod", filepath.Join(home, ".kube/prod")},
		{"/etc/kube/config", "/etc/kube/config"},
		{"kube~/x", "kube~/x"},
	} {
		if got, err := expandHome(tc.in); err != nil || got != tc.want {
			t.Errorf("expandHome(%q): got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func rollout(t *testing.T, b *kubetest.Bed, ns, name string) *rollouts.Rollout {
	t.Helper()
	u, err := b.Dynamic.Resource(rolloutsResource).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ro rollouts.Rollout
	if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &ro); err != nil {
		t.Fatal(err)
	}
	return &ro
}

// TestLogs reads the logs of every serving pod, and with follow streams
// them until the context ends, which is not an error.
func TestLogs(t *testing.T) {
	b := kubetest.Start(t)
	ctx := context.Background()
	d := newDeployer(t, b.Kubeconfig, "logs-ns", "logs")
	if err := d.Logs(ctx, false, io.Discard); !errors.Is(err, ErrNoRelease) {
		t.Errorf("logs before a deploy: got %v, want ErrNoRelease", err)
	}
	if _, err := d.Deploy(ctx, webRequest(webImage(1), map[string]any{"replicas": 2})); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := d.Logs(ctx, false, &out); err != nil {
		t.Fatal(err)
	}
	pods := map[string]bool{}
	for l := range strings.Lines(out.String()) {
		pod, _, _ := strings.Cut(l, " | ")
		pods[pod] = true
	}
	if len(pods) != 2 || !kubetest.HasPodLogs(out.String(), "logs-web-") {
		t.Errorf("logs of two pods:\n%s\nwant the lines %q for each of two pods", out.String(), kubetest.PodLog)
	}
	// Following: once both pods' lines have come, the command is
	// interrupted, which ends it without an error.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var followed syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- d.Logs(fctx, true, &followed) }()
	deadline := time.Now().Add(time.Minute)
	for !(strings.Count(followed.String(), "\n") == 2*len(kubetest.PodLog) && kubetest.HasPodLogs(followed.String(), "logs-web-")) {
		if time.Now().After(deadline) {
			t.Fatalf("logs --follow after a minute:\n%s\nwant the lines %q for each of two pods", followed.String(), kubetest.PodLog)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("logs --follow ended by its context: %v, want nil", err)
	}
}

// TestDaemonSetWaited: a DaemonSet of the chart is waited for, one pod
// per node, and its pods are the environment's instances.
func TestDaemonSetWaited(t *testing.T) {
	b := kubetest.Start(t)
	ctx := context.Background()
	d := newDeployer(t, b.Kubeconfig, "agent-ns", "agent")
	if _, err := d.Deploy(ctx, webRequest(webImage(1), map[string]any{"replicas": 1, "agent": true})); err != nil {
		t.Fatal(err)
	}
	ds, err := b.Client.AppsV1().DaemonSets("agent-ns").Get(ctx, "agent-agent", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := int32(len(kubetest.Nodes)); ds.Status.NumberAvailable != n || ds.Status.UpdatedNumberScheduled != n {
		t.Errorf("deploy returned with %d of %d nodes' agent pods available (%d updated), want all", ds.Status.NumberAvailable, n, ds.Status.UpdatedNumberScheduled)
	}
	st, err := d.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	agents := 0
	for _, in := range st.Instances {
		if strings.HasPrefix(in.ID, "agent-agent-") && in.State == "ready" {
			agents++
		}
	}
	if agents != len(kubetest.Nodes) {
		t.Errorf("status: %d ready agent pods among %+v, want one per node (%d)", agents, st.Instances, len(kubetest.Nodes))
	}
}
