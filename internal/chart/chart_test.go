package chart

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/runtime"
)

const (
	digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	pushed = "127.0.0.1:5000/payment-service@sha256:feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface"
)

func ptr[T any](v T) *T { return &v }

// TestRenderExample renders the example's chart with its local values, as
// the example pipeline's staging environment does.
func TestRenderExample(t *testing.T) {
	res, err := Render(context.Background(), "../..", "examples/payment-service/deploy/chart", Options{
		ValuesFiles: []string{"examples/payment-service/deploy/chart/values-local.yaml"},
		Set:         map[string]any{"config.LOG_LEVEL": "debug"},
		Image:       pushed,
		ReleaseName: "staging",
		PortEnv:     "PORT",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Workloads) != 1 {
		t.Fatalf("got %d workloads, want 1: %+v", len(res.Workloads), res.Workloads)
	}
	w := res.Workloads[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"name", w.Name, "payment-service"},
		{"image", w.Image, pushed},
		{"replicas", w.Replicas, 2},
		{"ports", w.Ports, []runtime.Port{{Name: "http", ContainerPort: 8080}}},
		{"port env", w.PortEnv, "PORT"},
		{"readiness", w.Readiness, &runtime.Probe{HTTPGet: &runtime.HTTPGetAction{Path: "/readyz", Port: "http"}, Period: 5 * time.Second, Timeout: time.Second, SuccessThreshold: 1, FailureThreshold: 3}},
		{"liveness", w.Liveness, &runtime.Probe{HTTPGet: &runtime.HTTPGetAction{Path: "/healthz", Port: "http"}, Period: 10 * time.Second, Timeout: time.Second, SuccessThreshold: 1, FailureThreshold: 3}},
		{"memory", w.Resources.MemoryLimit, int64(256 << 20)},
		{"cpu", w.Resources.CPUMillis, int64(0)},
		{"security", w.Security, runtime.Security{RunAsUser: ptr(int64(65532)), RunAsGroup: ptr(int64(65532)), RunAsNonRoot: true, ReadOnlyRootFilesystem: true, AllowPrivilegeEscalation: ptr(false)}},
		{"grace", w.TerminationGrace, 10 * time.Second},
		{"env", w.Env, []string{
			"IDEMPOTENCY_TTL=24h", "LOG_LEVEL=debug", "QUEUE_POLL_WAIT=2s", "SHUTDOWN_TIMEOUT=8s", "STORAGE=external",
			"WEBHOOK_BACKOFF_BASE=1s", "WEBHOOK_BACKOFF_MAX=30s", "WEBHOOK_MAX_ATTEMPTS=8", "PORT=8080",
		}},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("got %#v, want %#v", c.got, c.want)
			}
		})
	}
	if !slices.ContainsFunc(res.Notes, func(n string) bool {
		return strings.Contains(n, "examples/payment-service/deploy/chart/templates/rollout.yaml") && strings.Contains(n, `Secret "payment-service-credentials" is not in the chart; skipped`)
	}) {
		t.Errorf("no note about the skipped Secret: %q", res.Notes)
	}
	if _, ok := res.Manifests["examples/payment-service/deploy/chart/templates/rollout.yaml"]; !ok {
		t.Errorf("manifests by repository path: got %v", slices.Sorted(mapKeys(res.Manifests)))
	}
}

// TestRenderExampleDefaults: with the chart's own values (autoscaling on),
// the replicas come from the HPA's minReplicas, and the image is pinned
// through image.repository/image.digest.
func TestRenderExampleDefaults(t *testing.T) {
	res, err := Render(context.Background(), "../..", "examples/payment-service/deploy/chart", Options{Image: pushed})
	if err != nil {
		t.Fatal(err)
	}
	w := res.Workloads[0]
	if w.Replicas != 3 {
		t.Errorf("replicas: got %d, want 3 (the HPA's minReplicas)", w.Replicas)
	}
	if w.Image != pushed {
		t.Errorf("image: got %s, want %s", w.Image, pushed)
	}
	if !strings.Contains(res.Manifests["examples/payment-service/deploy/chart/templates/rollout.yaml"], `image: "`+pushed+`"`) {
		t.Errorf("the chart's image values were not pinned:\n%s", res.Manifests["examples/payment-service/deploy/chart/templates/rollout.yaml"])
	}
}

func TestRenderCharts(t *testing.T) {
	tests := []struct {
		name  string
		chart string
		o     Options
		want  []runtime.Workload
		notes []string
	}{
		{
			name: "deployment with hpa and sidecar", chart: "hpa", o: Options{Image: pushed, PortEnv: "PORT"},
			want: []runtime.Workload{{
				Name: "web", Image: pushed, Command: []string{"/web"}, Args: []string{"--verbose"},
				Env: []string{
					"APP_LOG_LEVEL=info", "APP_MODE=local", "LOG_LEVEL=info", "POD_NAME=web", "POD_IP=127.0.0.1",
					"TIER=front", "MEM_MB=64", "URL=http://127.0.0.1:8080/$(literal)",
				},
				Ports:     []runtime.Port{{Name: "http", ContainerPort: 8080}, {Name: "admin", ContainerPort: 9090}},
				Readiness: &runtime.Probe{TCPPort: "http", Period: 10 * time.Second, Timeout: time.Second, SuccessThreshold: 1, FailureThreshold: 3},
				Liveness:  &runtime.Probe{Exec: []string{"/web", "check"}, InitialDelay: 5 * time.Second, Period: 20 * time.Second, Timeout: 2 * time.Second, SuccessThreshold: 1, FailureThreshold: 5},
				Replicas:  2,
				Resources: runtime.Resources{MemoryLimit: 64 << 20, CPUMillis: 500},
				Security:  runtime.Security{RunAsUser: ptr(int64(2000)), RunAsGroup: ptr(int64(1000)), RunAsNonRoot: true, ReadOnlyRootFilesystem: true, AllowPrivilegeEscalation: ptr(false)},
				PortEnv:   "PORT", TerminationGrace: 30 * time.Second,
			}, {
				Name: "metrics", Image: "registry.local/exporter@" + digest,
				Ports:    []runtime.Port{{ContainerPort: 9100}},
				Security: runtime.Security{RunAsUser: ptr(int64(1000)), RunAsGroup: ptr(int64(1000)), RunAsNonRoot: true},
				Replicas: 2, PortEnv: "PORT", TerminationGrace: 30 * time.Second,
			}},
			notes: []string{`Secret "db-credentials" is not in the chart; skipped`},
		},
		{
			name: "statefulset with native sidecar and secret", chart: "statefulset",
			o: Options{Image: "registry.local/queue@" + digest, Set: map[string]any{"replicas": 1}, Namespace: "staging"},
			want: []runtime.Workload{{
				Name: "queue", Image: "registry.local/queue@" + digest,
				Env:       []string{"TOKEN=s3cr3t", "NS=staging"},
				Ports:     []runtime.Port{{ContainerPort: 7000}},
				Readiness: &runtime.Probe{HTTPGet: &runtime.HTTPGetAction{Path: "/ready", Port: "7000", Scheme: "HTTP"}, Period: 10 * time.Second, Timeout: time.Second, SuccessThreshold: 1, FailureThreshold: 3},
				Replicas:  1, TerminationGrace: 5 * time.Second,
			}, {
				Name: "log-shipper", Image: "registry.local/shipper@" + digest, Replicas: 1, TerminationGrace: 5 * time.Second,
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Render(context.Background(), "testdata", tc.chart, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Workloads, tc.want) {
				t.Errorf("workloads:\ngot  %+v\nwant %+v", res.Workloads, tc.want)
			}
			for _, n := range tc.notes {
				if !slices.ContainsFunc(res.Notes, func(got string) bool { return strings.Contains(got, n) }) {
					t.Errorf("notes %q lack %q", res.Notes, n)
				}
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name  string
		chart string
		o     Options
		is    error
		want  string
	}{
		{"does not render", "renderbad", Options{}, ErrRender, "renderbad: chart does not render: execution error at (renderbad/templates/d.yaml:6:34): replicas is required"},
		{"no chart", "nowhere", Options{}, ErrRender, "nowhere: chart does not render: load:"},
		{"no workload", "noworkload", Options{}, ErrNoWorkload, "no workload in the chart: the local runtime runs the pod template of an apps/v1 Deployment or StatefulSet or an argoproj.io/v1alpha1 Rollout; it renders ConfigMap only-config"},
		{"no image", "noimage", Options{}, ErrNoImage, `noimage/templates/d.yaml: spec.template.spec.containers[0].image: container has no image: container "app"`},
		{"unknown port", "badport", Options{Image: pushed}, ErrUnknownPort, `badport/templates/d.yaml: spec.template.spec.containers[0].readinessProbe: httpGet.port: unknown named port "htp" (the container's ports are http)`},
		{"init container", "initcontainer", Options{Image: pushed}, ErrUnsupported, `initcontainer/templates/d.yaml: spec.template.spec.initContainers[0]: not supported on the local runtime yet: init container "migrate"`},
		{"sidecar by tag", "sidecartag", Options{Image: pushed}, ErrNotPinned, `sidecartag/templates/d.yaml: spec.template.spec.containers[1].image: image is not pinned by digest: "envoyproxy/envoy:v1.30"`},
		{"no pin, tag", "sidecartag", Options{}, ErrNotPinned, `containers[0].image: image is not pinned by digest: "app:1"`},
		{"pin not a digest", "hpa", Options{Image: "nginx:1.25"}, ErrNotPinned, `"nginx:1.25" is not REPO@sha256:...`},
		{"set into a string", "hpa", Options{Set: map[string]any{"image.tag": "x"}}, ErrSetPath, "set image.tag: image is a string, not a map"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(context.Background(), "testdata", tc.chart, tc.o)
			if !errors.Is(err, tc.is) {
				t.Fatalf("error: got %v, want errors.Is %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\ngot  %v\nwant %q", err, tc.want)
			}
		})
	}
}

// TestRenderErrorNamesRepositoryPath: Helm names templates by chart
// name; the error names them by their path in the repository.
func TestRenderErrorNamesRepositoryPath(t *testing.T) {
	_, err := Render(context.Background(), ".", "testdata/renderbad", Options{})
	if want := "testdata/renderbad: chart does not render: execution error at (testdata/renderbad/templates/d.yaml:6:34): replicas is required"; err == nil || err.Error() != want {
		t.Errorf("error:\ngot  %v\nwant %s", err, want)
	}
}

func TestParseSetPath(t *testing.T) {
	tests := []struct {
		path    string
		want    []string
		wantErr bool
	}{
		{"image", []string{"image"}, false},
		{"image.digest", []string{"image", "digest"}, false},
		{`podAnnotations.prometheus\.io/scrape`, []string{"podAnnotations", "prometheus.io/scrape"}, false},
		{`a\\.b`, []string{`a\`, "b"}, false},
		{"", nil, true},
		{"a..b", nil, true},
		{".a", nil, true},
		{"a.", nil, true},
		{`a\`, nil, true},
		{`a\b`, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			got, err := ParseSetPath(tc.path)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error: got %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrSetPath) {
				t.Errorf("error %v is not ErrSetPath", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSetValue(t *testing.T) {
	vals := map[string]any{"image": map[string]any{"repository": "x", "tag": "1"}, "n": 3}
	if err := SetValue(vals, "image.digest", "sha256:1"); err != nil {
		t.Fatal(err)
	}
	if err := SetValue(vals, "config.a.b", true); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"image": map[string]any{"repository": "x", "tag": "1", "digest": "sha256:1"}, "n": 3, "config": map[string]any{"a": map[string]any{"b": true}}}
	if !reflect.DeepEqual(vals, want) {
		t.Errorf("got %v, want %v", vals, want)
	}
	if err := SetValue(vals, "n.x", 1); !errors.Is(err, ErrSetPath) || !strings.Contains(err.Error(), "n is a number, not a map") {
		t.Errorf("set inside a number: got %v", err)
	}
}

// FuzzSetPath: a path either parses into non-empty keys that, escaped
// again, give the path back, or is refused with ErrSetPath; SetValue then
// finds the value where the keys say.
func FuzzSetPath(f *testing.F) {
	for _, s := range []string{"image.digest", `a\.b.c`, `a\\`, "..", `\`, "a.b.c.d.e", "ü.ß"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		keys, err := ParseSetPath(path)
		if err != nil {
			if !errors.Is(err, ErrSetPath) {
				t.Fatalf("error %v is not ErrSetPath", err)
			}
			return
		}
		var esc []string
		for _, k := range keys {
			if k == "" {
				t.Fatalf("empty key in %q", keys)
			}
			esc = append(esc, strings.NewReplacer(`\`, `\\`, ".", `\.`).Replace(k))
		}
		if got := strings.Join(esc, "."); got != path {
			t.Fatalf("round trip: %q -> %q -> %q", path, keys, got)
		}
		vals := map[string]any{}
		if err := SetValue(vals, path, 1); err != nil {
			t.Fatalf("SetValue(%q): %v", path, err)
		}
		if v, ok := Lookup(vals, keys...); !ok || v != 1 {
			t.Fatalf("lookup %q: got %v, %v", keys, v, ok)
		}
	})
}

// BenchmarkRenderExample is the render and resolution of the example's
// chart that every deploy of the example pays.
func BenchmarkRenderExample(b *testing.B) {
	o := Options{ValuesFiles: []string{"examples/payment-service/deploy/chart/values-local.yaml"}, Image: pushed, ReleaseName: "staging"}
	for b.Loop() {
		if _, err := Render(context.Background(), "../..", "examples/payment-service/deploy/chart", o); err != nil {
			b.Fatal(err)
		}
	}
}
