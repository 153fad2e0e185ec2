package deploy

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// chartDir is the chart under test, relative to this package.
const chartDir = "gantry"

const (
	testRelease   = "ci"
	testNamespace = "gantry"
)

// values parses a YAML values document.
func values(t *testing.T, doc string) map[string]any {
	t.Helper()
	v := map[string]any{}
	if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("values %q: %v", doc, err)
	}
	return v
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load the chart %s: %v", chartDir, err)
	}
	return c
}

// render is helm template: an install without a cluster (lookup finds
// nothing, as in helm template). The chart is loaded afresh: an install
// drops the disabled subcharts from the chart it is given.
func render(ctx context.Context, t *testing.T, vals map[string]any) (string, error) {
	c := loadChart(t)
	cfg := &action.Configuration{
		KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
		Releases:     storage.Init(driver.NewMemory()),
		Capabilities: chartutil.DefaultCapabilities,
		Log:          func(string, ...any) {},
	}
	inst := action.NewInstall(cfg)
	inst.ClientOnly = true
	inst.DryRun = true
	inst.ReleaseName = testRelease
	inst.Namespace = testNamespace
	rel, err := inst.RunWithContext(ctx, c, vals)
	if err != nil {
		return "", err
	}
	return rel.Manifest, nil
}

// objects is a rendering decoded into typed Kubernetes objects.
type objects struct {
	docs []string
	objs []runtime.Object
}

func decode(t *testing.T, manifest string) objects {
	t.Helper()
	var o objects
	for _, doc := range strings.Split(manifest, "\n---") {
		doc = strings.TrimSpace(strings.TrimPrefix(doc, "---"))
		if doc == "" || strings.Trim(doc, "\n") == "" || onlyComments(doc) {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("decode a rendered object: %v\n%s", err, doc)
		}
		o.docs = append(o.docs, doc)
		o.objs = append(o.objs, obj)
	}
	return o
}

func onlyComments(doc string) bool {
	for _, l := range strings.Split(doc, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// find returns the object of type T named name, or nil.
func find[T runtime.Object](o objects, name string) T {
	var zero T
	for _, obj := range o.objs {
		if x, ok := obj.(T); ok {
			if m, ok := any(x).(interface{ GetName() string }); ok && m.GetName() == name {
				return x
			}
		}
	}
	return zero
}

// all returns the objects of type T.
func all[T runtime.Object](o objects) []T {
	var out []T
	for _, obj := range o.objs {
		if x, ok := obj.(T); ok {
			out = append(out, x)
		}
	}
	return out
}

func kinds(o objects) []string {
	var out []string
	for _, obj := range o.objs {
		out = append(out, fmt.Sprintf("%T", obj))
	}
	return out
}

func env(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

// flag returns the value after --name in args, and whether it is there.
func flag(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

func flagValues(args []string, name string) []string {
	var out []string
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			out = append(out, args[i+1])
		}
	}
	return out
}

func secretRef(e *corev1.EnvVar) (name, key string) {
	if e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		return "", ""
	}
	return e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key
}
