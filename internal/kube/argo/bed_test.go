package argo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rolloutsv1 "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/chart"
	"github.com/gantry-ci/gantry/internal/kubetest"
	"github.com/gantry-ci/gantry/internal/runtime"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// The example service's chart, rendered for the bed.
const (
	repoRoot  = "../../.."
	chartDir  = "examples/payment-service/deploy/chart"
	roName    = "payment-service"
	previewSv = "payment-service-preview"
	hashLabel = "rollouts-pod-template-hash"
)

// image returns a pinned reference whose digest is made of c.
func image(c byte) string {
	return "registry.test/examplepay/payment-service@sha256:" + strings.Repeat(string(c), 64)
}

// render renders the example chart for namespace ns with img, small
// replicas and scale-down delay, and no autoscaler or disruption budget
// (kwok nodes report no CPU use).
func render(t *testing.T, ns, img string) []*unstructured.Unstructured {
	t.Helper()
	res, err := chart.Render(t.Context(), repoRoot, chartDir, chart.Options{
		Image: img, ReleaseName: roName, Namespace: ns,
		Set: map[string]any{
			"autoscaling.enabled":             false,
			"podDisruptionBudget.enabled":     false,
			"replicaCount":                    2,
			"rollout.scaleDownDelaySeconds":   3,
			"rollout.autoPromotionEnabled":    false,
			"serviceAccount.create":           true,
			"terminationGracePeriodSeconds":   1,
			"config.LOG_LEVEL":                "debug",
			"podAnnotations.gantry\\.dev/bed": "argo",
		},
	})
	if err != nil {
		t.Fatalf("render %s: %v", chartDir, err)
	}
	var objs []*unstructured.Unstructured
	for _, file := range slices.Sorted(maps.Keys(res.Manifests)) {
		dec := yamlutil.NewYAMLOrJSONDecoder(strings.NewReader(res.Manifests[file]), 4096)
		for {
			var m map[string]any
			if err := dec.Decode(&m); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("decode %s: %v", file, err)
			}
			if len(m) == 0 {
				continue
			}
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
	return objs
}

var resources = map[string]schema.GroupVersionResource{
	"ConfigMap":        {Version: "v1", Resource: "configmaps"},
	"Service":          {Version: "v1", Resource: "services"},
	"ServiceAccount":   {Version: "v1", Resource: "serviceaccounts"},
	"Rollout":          {Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"},
	"AnalysisTemplate": {Group: "argoproj.io", Version: "v1alpha1", Resource: "analysistemplates"},
}

// apply creates or updates objs by server-side apply, as Helm 4 or
// kubectl apply --server-side would; kinds lists those to apply (all when
// empty).
func apply(t *testing.T, b *kubetest.Bed, ns string, objs []*unstructured.Unstructured, kinds ...string) {
	t.Helper()
	for _, o := range objs {
		if len(kinds) > 0 && !slices.Contains(kinds, o.GetKind()) {
			continue
		}
		gvr, ok := resources[o.GetKind()]
		if !ok {
			t.Fatalf("the chart renders a %s, which the test does not know", o.GetKind())
		}
		o.SetNamespace(ns)
		_, err := b.Dynamic.Resource(gvr).Namespace(ns).Apply(t.Context(), o.GetName(), o, metav1.ApplyOptions{FieldManager: "gantry-test", Force: true})
		if err != nil {
			t.Fatalf("apply %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

// webAnalysis replaces the metrics of the chart's AnalysisTemplate (an
// in-cluster Prometheus) with one web metric against url: the bed's Argo
// controller runs on this machine and measures it for real.
func webAnalysis(t *testing.T, objs []*unstructured.Unstructured, url string) {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != "AnalysisTemplate" {
			continue
		}
		metrics := []any{map[string]any{
			"name": "ok", "count": int64(2), "interval": "1s", "failureLimit": int64(0),
			"successCondition": "result == true",
			"provider":         map[string]any{"web": map[string]any{"url": url, "jsonPath": "{$.ok}"}},
		}}
		if err := unstructured.SetNestedSlice(o.Object, metrics, "spec", "metrics"); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("the chart renders no AnalysisTemplate")
}

// eventually polls check until it holds; at the deadline it fails the
// test with what was last observed.
func eventually(t *testing.T, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ok, state := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in 2m; observed: %s", what, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// selectors reads the pod template hash the active and preview Services
// select.
func selectors(t *testing.T, b *kubetest.Bed, ns string) (active, preview string) {
	t.Helper()
	for _, name := range []string{roName, previewSv} {
		svc, err := b.Client.CoreV1().Services(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get service %s: %v", name, err)
		}
		if name == roName {
			active = svc.Spec.Selector[hashLabel]
		} else {
			preview = svc.Spec.Selector[hashLabel]
		}
	}
	return active, preview
}

// hashOf is the pod template hash of the ReplicaSet of revision rev.
func hashOf(t *testing.T, c *Client, rev int) string {
	t.Helper()
	s, err := c.read(t.Context(), roName)
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range s.rss {
		if revisionOf(rs.Annotations) == rev {
			return rs.Labels[hashLabel]
		}
	}
	t.Fatalf("no ReplicaSet of revision %d", rev)
	return ""
}

func describe(st runtime.RolloutStatus) string {
	var as []string
	for _, a := range st.Analyses {
		as = append(as, fmt.Sprintf("%s/r%d:%s", a.Kind, a.Revision, a.Phase))
	}
	return fmt.Sprintf("phase %s step %s stable %d desired %d message %q analyses %v promotedBy %q abortedBy %q",
		st.Phase, st.Step, st.Stable, st.Desired, st.Message, as, st.PromotedBy, st.AbortedBy)
}

// waitStatus waits until the Rollout's status satisfies cond.
func waitStatus(t *testing.T, c *Client, what string, cond func(runtime.RolloutStatus) bool) runtime.RolloutStatus {
	t.Helper()
	var st runtime.RolloutStatus
	eventually(t, what, func() (bool, string) {
		var err error
		st, err = c.Status(t.Context(), roName)
		if err != nil {
			return false, err.Error()
		}
		return cond(st), describe(st)
	})
	return st
}

// waitSelectors waits until the Services select the given hashes ("-"
// for the preview: any).
func waitSelectors(t *testing.T, b *kubetest.Bed, ns, what, active, preview string) {
	t.Helper()
	eventually(t, what, func() (bool, string) {
		a, p := selectors(t, b, ns)
		return a == active && (preview == "-" || p == preview), fmt.Sprintf("active selects %q, preview %q (want %q, %q)", a, p, active, preview)
	})
}

// lastAnalysis is the latest prePromotion analysis of the status.
func lastAnalysis(st runtime.RolloutStatus) *runtime.AnalysisStatus {
	for i := len(st.Analyses) - 1; i >= 0; i-- {
		if st.Analyses[i].Kind == "prePromotion" {
			return &st.Analyses[i]
		}
	}
	return nil
}

// TestBlueGreenCycle runs blue/green cycles of the example chart's
// Rollout on the bed through the package's verbs, checking the Services'
// selectors, the Rollout and its ReplicaSets at each step.
func TestBlueGreenCycle(t *testing.T) {
	b := kubetest.Start(t)
	const ns = "argo-bg"
	if _, err := b.Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var (
		measured atomic.Int64
		failing  atomic.Bool // the analysis endpoint answers ok: false
	)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		measured.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"ok": %v}`, !failing.Load())
	}))
	defer web.Close()

	c, err := New(b.Config, ns, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	objs := render(t, ns, image('a'))
	webAnalysis(t, objs, web.URL+"/analysis")
	apply(t, b, ns, objs)

	var upgrades []string
	upgrade := func(ctx context.Context, req runtime.RolloutRequest) error {
		img := req.Deploy.Workloads[0].Image
		upgrades = append(upgrades, img)
		apply(t, b, ns, render(t, ns, img), "Rollout")
		return nil
	}
	resolve := func(_ context.Context, env string) (Target, error) {
		if env != "staging" {
			return Target{}, fmt.Errorf("no environment %q", env)
		}
		return Target{Client: c, Rollout: roName, ActiveURL: "http://payment-service." + ns}, nil
	}
	r := NewRoller(resolve, upgrade)
	rolloutTo := func(img string) runtime.RolloutStatus {
		t.Helper()
		st, err := r.Rollout(t.Context(), runtime.RolloutRequest{Deploy: runtime.DeployRequest{
			Environment: "staging", Who: "ci", Workloads: []runtime.Workload{{Name: roName, Image: img}},
		}})
		if err != nil {
			t.Fatalf("rollout %s: %v", img, err)
		}
		return st
	}

	// Watch records every step the Rollout goes through.
	var (
		mu   sync.Mutex
		seen []runtime.RolloutStep
	)
	wctx, stopWatch := context.WithCancel(context.Background())
	watchDone := make(chan error, 1)
	go func() {
		watchDone <- r.Watch(wctx, "staging", func(st runtime.RolloutStatus) bool {
			mu.Lock()
			defer mu.Unlock()
			if len(seen) == 0 || seen[len(seen)-1] != st.Step {
				seen = append(seen, st.Step)
			}
			return true
		})
	}()
	var (
		stopOnce sync.Once
		watchErr error
	)
	stop := func() error {
		stopOnce.Do(func() { stopWatch(); watchErr = <-watchDone })
		return watchErr
	}
	defer func() { _ = stop() }()

	// The first revision is Healthy at once, both Services on it.
	st := waitStatus(t, c, "first revision healthy", func(st runtime.RolloutStatus) bool {
		return st.Phase == runtime.RolloutHealthy && st.Step == runtime.StepCompleted && st.Desired == 1 && st.Stable == 1
	})
	if want := strings.Repeat("a", 64); st.Digest != "sha256:"+want {
		t.Errorf("digest %q, want sha256:%s", st.Digest, want)
	}
	blue := hashOf(t, c, 1)
	waitSelectors(t, b, ns, "both services on blue", blue, blue)

	t.Run("promote with nothing to promote", func(t *testing.T) {
		_, err := c.Promote(t.Context(), roName, false, "alice")
		if !errors.Is(err, runtime.ErrRolloutState) {
			t.Errorf("got %v, want ErrRolloutState", err)
		}
	})

	// A new image: green behind the preview Service, paused, analysed.
	st = rolloutTo(image('b'))
	if st.Environment != "staging" || st.Desired != 2 || st.ActiveURL == "" {
		t.Errorf("rollout returned %s env %q url %q, want staging, desired 2 and the URL", describe(st), st.Environment, st.ActiveURL)
	}
	st = waitStatus(t, c, "green paused after a successful analysis", func(st runtime.RolloutStatus) bool {
		a := lastAnalysis(st)
		return st.Phase == runtime.RolloutPaused && st.Step == runtime.StepPaused && a != nil && a.Phase == analysis.PhaseSuccessful
	})
	if st.Stable != 1 || st.Desired != 2 {
		t.Errorf("stable %d desired %d, want 1 and 2", st.Stable, st.Desired)
	}
	green := hashOf(t, c, 2)
	waitSelectors(t, b, ns, "preview on green, active on blue", blue, green)
	a := lastAnalysis(st)
	if a.Revision != 2 || len(a.Runs) != 1 || len(a.Runs[0].Metrics) != 1 {
		t.Fatalf("analysis %+v, want one run of one metric for revision 2", a)
	}
	m := a.Runs[0].Metrics[0]
	if m.Name != "ok" || m.Successful != 2 || len(m.Measurements) != 2 || m.Measurements[0].Value != "true" || m.SuccessCondition != "result == true" {
		t.Errorf("metric %+v, want 2 successful measurements of true", m)
	}
	if measured.Load() < 2 {
		t.Errorf("the web endpoint was measured %d times, want at least 2", measured.Load())
	}

	// Promote: active on green; blue scaled down after its 3s delay.
	st, err = r.Promote(t.Context(), "staging", false, "alice")
	if err != nil {
		t.Fatal(err)
	}
	waitSelectors(t, b, ns, "active on green after promote", green, green)
	st = waitStatus(t, c, "promoted rollout completed", func(st runtime.RolloutStatus) bool {
		return st.Phase == runtime.RolloutHealthy && st.Step == runtime.StepCompleted && st.Stable == 2
	})
	if st.PromotedBy != "alice" {
		t.Errorf("promoted by %q, want alice", st.PromotedBy)
	}
	eventually(t, "blue scaled down", func() (bool, string) {
		s, err := c.read(t.Context(), roName)
		if err != nil {
			return false, err.Error()
		}
		rs := s.rsByHash(blue)
		return rs != nil && rs.Spec.Replicas != nil && *rs.Spec.Replicas == 0 && rs.Status.Replicas == 0,
			fmt.Sprintf("blue ReplicaSet %+v", rs.Status)
	})

	// Another image, aborted: active stays on green (now blue's role).
	rolloutTo(image('c'))
	waitStatus(t, c, "third revision paused", func(st runtime.RolloutStatus) bool {
		a := lastAnalysis(st)
		return st.Step == runtime.StepPaused && st.Desired == 3 && a != nil && a.Phase == analysis.PhaseSuccessful
	})
	third := hashOf(t, c, 3)
	waitSelectors(t, b, ns, "preview on the third revision", green, third)
	if _, err := r.Abort(t.Context(), "staging", "bob", "p99 too high"); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, c, "aborted", func(st runtime.RolloutStatus) bool {
		return st.Phase == runtime.RolloutDegraded && st.Step == runtime.StepAborted
	})
	if st.AbortedBy != "bob" || st.Stable != 2 || st.Desired != 3 {
		t.Errorf("aborted: %s, want aborted by bob, stable 2, desired 3", describe(st))
	}
	waitSelectors(t, b, ns, "active back on the stable revision", green, "-")
	t.Run("promote an aborted rollout", func(t *testing.T) {
		_, err := r.Promote(t.Context(), "staging", false, "alice")
		if !errors.Is(err, runtime.ErrRolloutState) {
			t.Errorf("got %v, want ErrRolloutState", err)
		}
	})
	t.Run("abort twice", func(t *testing.T) {
		_, err := r.Abort(t.Context(), "staging", "bob", "")
		if !errors.Is(err, runtime.ErrRolloutState) {
			t.Errorf("got %v, want ErrRolloutState", err)
		}
	})
	hist, err := r.History(t.Context(), "staging")
	if err != nil {
		t.Fatal(err)
	}
	if got := historyLine(hist); got != "1:superseded 2:serving 3:failed" {
		t.Errorf("history %s, want 1:superseded 2:serving 3:failed", got)
	}

	// Retry: the third revision paused again after a fresh analysis.
	before := len(st.Analyses)
	if _, err := r.Retry(t.Context(), "staging", "carol"); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, c, "retried rollout paused after a fresh analysis", func(st runtime.RolloutStatus) bool {
		a := lastAnalysis(st)
		return st.Step == runtime.StepPaused && st.Phase == runtime.RolloutPaused && len(st.Analyses) > before && a.Phase == analysis.PhaseSuccessful
	})
	waitSelectors(t, b, ns, "preview on the third revision again", green, third)
	t.Run("retry a rollout that is not aborted", func(t *testing.T) {
		_, err := r.Retry(t.Context(), "staging", "carol")
		if !errors.Is(err, runtime.ErrRolloutState) {
			t.Errorf("got %v, want ErrRolloutState", err)
		}
	})

	// Undo: back to the revision before the latest (the stable one),
	// Healthy at once as revision 4.
	if _, err := r.Undo(t.Context(), "staging", 0, "dave"); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, c, "undone to the stable template", func(st runtime.RolloutStatus) bool {
		return st.Phase == runtime.RolloutHealthy && st.Step == runtime.StepCompleted && st.Desired == 4 && st.Stable == 4
	})
	if want := "sha256:" + strings.Repeat("b", 64); st.Digest != want {
		t.Errorf("digest after undo %q, want %q", st.Digest, want)
	}
	waitSelectors(t, b, ns, "active still on green after undo", green, green)

	t.Run("undo to a revision not in the history", func(t *testing.T) {
		_, err := r.Undo(t.Context(), "staging", 99, "dave")
		if !errors.Is(err, runtime.ErrRolloutState) {
			t.Errorf("got %v, want ErrRolloutState", err)
		}
	})

	// Undo to revision 1: blue rolled out again as revision 5, through
	// the preview and the pause, then promoted fully.
	if _, err := r.Undo(t.Context(), "staging", 1, "dave"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, "revision 1 paused as revision 5", func(st runtime.RolloutStatus) bool {
		return st.Step == runtime.StepPaused && st.Desired == 5 && st.Stable == 4
	})
	waitSelectors(t, b, ns, "preview on blue's template, active on green", green, blue)
	if _, err := r.Promote(t.Context(), "staging", true, "erin"); err != nil {
		t.Fatal(err)
	}
	waitSelectors(t, b, ns, "active on blue's template after the full promotion", blue, blue)
	st = waitStatus(t, c, "fully promoted", func(st runtime.RolloutStatus) bool {
		return st.Phase == runtime.RolloutHealthy && st.Step == runtime.StepCompleted && st.Stable == 5
	})
	if st.PromotedBy != "erin" || st.Digest != "sha256:"+strings.Repeat("a", 64) {
		t.Errorf("after full promotion: %s digest %s, want promoted by erin, digest of image a", describe(st), st.Digest)
	}
	hist, err = r.History(t.Context(), "staging")
	if err != nil {
		t.Fatal(err)
	}
	if got := historyLine(hist); got != "3:superseded 4:superseded 5:serving" {
		t.Errorf("history %s, want 3:superseded 4:superseded 5:serving", got)
	}

	// A failing analysis: the controller aborts by itself.
	failing.Store(true)
	rolloutTo(image('e'))
	st = waitStatus(t, c, "aborted by the failed analysis", func(st runtime.RolloutStatus) bool {
		return st.Phase == runtime.RolloutDegraded && st.Step == runtime.StepAborted && st.Desired == 6
	})
	if st.AbortedBy != AutoAborter {
		t.Errorf("aborted by %q, want %q", st.AbortedBy, AutoAborter)
	}
	if a := lastAnalysis(st); a == nil || a.Phase != analysis.PhaseFailed || a.Runs[0].Metrics[0].Measurements[0].Value != "false" {
		t.Errorf("analysis %+v, want Failed with a measurement of false", a)
	}
	waitSelectors(t, b, ns, "active stays on the stable revision after the failed analysis", blue, "-")

	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("watch ended with %v, want context.Canceled", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []runtime.RolloutStep{runtime.StepPaused, runtime.StepScaleDown, runtime.StepAborted, runtime.StepCompleted} {
		if !slices.Contains(seen, want) {
			t.Errorf("the watch saw the steps %v, none %s", seen, want)
		}
	}
	if len(upgrades) != 3 {
		t.Errorf("upgrades %v, want 3", upgrades)
	}
}

func historyLine(revs []runtime.Revision) string {
	var parts []string
	for _, r := range revs {
		parts = append(parts, fmt.Sprintf("%d:%s", r.Number, r.Status))
	}
	return strings.Join(parts, " ")
}

// TestErrors checks that the API server's refusals come back typed.
func TestErrors(t *testing.T) {
	b := kubetest.Start(t)
	c, err := New(b.Config, "default")
	if err != nil {
		t.Fatal(err)
	}
	canary := &rolloutsv1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Name: "canary"},
		Spec: rolloutsv1.RolloutSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "canary"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "canary"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image('d')}}}},
			Strategy: rolloutsv1.RolloutStrategy{Canary: &rolloutsv1.CanaryStrategy{}},
		},
	}
	if _, err := c.argo.ArgoprojV1alpha1().Rollouts("default").Create(t.Context(), canary, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	nobody := rest.CopyConfig(b.Config)
	nobody.Impersonate = rest.ImpersonationConfig{UserName: "gantry-test-nobody"}
	denied, err := New(nobody, "default")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		do   func(context.Context) error
		want error
		says string
	}{
		{"status of a missing rollout", func(ctx context.Context) error { _, err := c.Status(ctx, "missing"); return err }, runtime.ErrNoRollout, `"missing"`},
		{"promote a missing rollout", func(ctx context.Context) error { _, err := c.Promote(ctx, "missing", false, "a"); return err }, runtime.ErrNoRollout, `"missing"`},
		{"watch a missing rollout", func(ctx context.Context) error {
			return c.Watch(ctx, "missing", func(runtime.RolloutStatus) bool { return true })
		}, runtime.ErrNoRollout, `"missing"`},
		{"status of a canary rollout", func(ctx context.Context) error { _, err := c.Status(ctx, "canary"); return err }, ErrNotBlueGreen, "default/canary"},
		{"abort a canary rollout", func(ctx context.Context) error { _, err := c.Abort(ctx, "canary", "a", ""); return err }, ErrNotBlueGreen, "default/canary"},
		{"status denied by RBAC", func(ctx context.Context) error { _, err := denied.Status(ctx, "any"); return err }, ErrForbidden, "gantry-test-nobody"},
		{"abort denied by RBAC", func(ctx context.Context) error { _, err := denied.Abort(ctx, "any", "a", ""); return err }, ErrForbidden, "get rollout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do(t.Context())
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
		})
	}
}

// TestNoCRD reaches the bed's API server through a proxy that hides the
// argoproj.io API group, as a cluster without Argo Rollouts serves it.
func TestNoCRD(t *testing.T) {
	b := kubetest.Start(t)
	tr, err := rest.TransportFor(b.Config)
	if err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(b.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = tr
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/apis/argoproj.io") {
			http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"the server could not find the requested resource"}`, http.StatusNotFound)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c, err := New(&rest.Config{Host: srv.URL}, "default")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Status(t.Context(), roName)
	if !errors.Is(err, ErrNoCRD) {
		t.Fatalf("got %v, want ErrNoCRD", err)
	}
	if errors.Is(err, runtime.ErrNoRollout) {
		t.Errorf("%v: a missing CRD is not a missing Rollout", err)
	}
}
