package chart

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/runtime"
)

// readObjects resolves rendered YAML without Helm: docs maps a file name
// (shown as testdata/argo/NAME) to its text, as if the chart had rendered
// it. The pinned image stands for the pipeline's.
func readObjects(docs map[string]string) (*Result, error) {
	out := map[string]string{}
	for f, text := range docs {
		out["argo/"+f] = text
	}
	objs, _, err := decodeManifests(out, "argo", "testdata/argo")
	if err != nil {
		return nil, err
	}
	pin, err := name.NewDigest(pushed)
	if err != nil {
		return nil, err
	}
	return resolve(&extractor{objs: objs, pin: &pin, ns: "default"})
}

// argoFiles reads Argo Rollouts' files from testdata/argo, unchanged.
func argoFiles(t testing.TB, files ...string) map[string]string {
	t.Helper()
	docs := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join("testdata/argo", f))
		if err != nil {
			t.Fatal(err)
		}
		docs[f] = string(data)
	}
	return docs
}

// argoServices are the Services Argo's TestBlueGreenAnalysis creates in
// Go (newService) for rollout-bluegreen-analysis.yaml.
const argoServices = `apiVersion: v1
kind: Service
metadata: {name: bluegreen-analysis-active}
spec: {selector: {app: bluegreen-analysis}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: bluegreen-analysis-preview}
spec: {selector: {app: bluegreen-analysis}, ports: [{port: 80, targetPort: 8080}]}
`

// templateNames gives the names of a RolloutAnalysis' templates (nil for
// none), so that a whole BlueGreen can be compared with its templates
// checked apart.
func templateNames(a *runtime.RolloutAnalysis) []string {
	if a == nil {
		return nil
	}
	var names []string
	for _, t := range a.Templates {
		names = append(names, t.Kind+"/"+t.Metadata.Name)
	}
	return names
}

// withoutTemplates copies bg with the analyses' templates left out.
func withoutTemplates(bg *runtime.BlueGreen) runtime.BlueGreen {
	c := *bg
	for _, a := range []**runtime.RolloutAnalysis{&c.PrePromotionAnalysis, &c.PostPromotionAnalysis} {
		if *a != nil {
			cp := **a
			cp.Templates = nil
			*a = &cp
		}
	}
	return c
}

func TestArgoExampleRollouts(t *testing.T) {
	tests := []struct {
		name          string
		docs          map[string]string
		want          runtime.BlueGreen
		pre, post     []string
		wantWorkloads int
	}{
		{
			// examples/rollout-bluegreen.yaml: the manual gate.
			name: "rollout-bluegreen", docs: argoFiles(t, "rollout-bluegreen.yaml"),
			want: runtime.BlueGreen{ActiveService: "rollout-bluegreen-active", PreviewService: "rollout-bluegreen-preview", AutoPromotionEnabled: false},
		},
		{
			// Argo's e2e blue-green analysis: the same sleep-job
			// template before and after promotion, with an argument.
			name: "bluegreen analysis",
			docs: func() map[string]string {
				d := argoFiles(t, "rollout-bluegreen-analysis.yaml", "analysistemplate-sleep-job.yaml")
				d["services.yaml"] = argoServices
				return d
			}(),
			want: runtime.BlueGreen{
				ActiveService: "bluegreen-analysis-active", PreviewService: "bluegreen-analysis-preview",
				PrePromotionAnalysis:  &runtime.RolloutAnalysis{Args: []runtime.AnalysisArg{{Name: "duration", Value: "5"}}},
				PostPromotionAnalysis: &runtime.RolloutAnalysis{Args: []runtime.AnalysisArg{{Name: "duration", Value: "5"}}},
			},
			pre: []string{"AnalysisTemplate/sleep-job"}, post: []string{"AnalysisTemplate/sleep-job"},
		},
		{
			// Argo's example templates, namespaced and cluster-wide,
			// named by a Rollout of ours.
			name: "example templates",
			docs: func() map[string]string {
				d := argoFiles(t, "analysis-templates.yaml", "cluster-analysis-templates.yaml")
				d["rollout.yaml"] = rollout("    blueGreen:\n      activeService: active\n      prePromotionAnalysis: {templates: [{templateName: random-fail}, {templateName: always-pass, clusterScope: true}]}\n      postPromotionAnalysis: {templates: [{templateName: pass}]}")
				return d
			}(),
			want: runtime.BlueGreen{
				ActiveService: "active", AutoPromotionEnabled: true,
				PrePromotionAnalysis: &runtime.RolloutAnalysis{}, PostPromotionAnalysis: &runtime.RolloutAnalysis{},
			},
			pre: []string{"AnalysisTemplate/random-fail", "ClusterAnalysisTemplate/always-pass"}, post: []string{"AnalysisTemplate/pass"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := readObjects(tt.docs)
			if err != nil {
				t.Fatal(err)
			}
			if res.BlueGreen == nil {
				t.Fatal("BlueGreen = nil, want the Rollout's strategy")
			}
			if got := withoutTemplates(res.BlueGreen); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("BlueGreen:\ngot  %+v\nwant %+v", got, tt.want)
			}
			if got := templateNames(res.BlueGreen.PrePromotionAnalysis); !slices.Equal(got, tt.pre) {
				t.Errorf("prePromotionAnalysis templates = %v, want %v", got, tt.pre)
			}
			if got := templateNames(res.BlueGreen.PostPromotionAnalysis); !slices.Equal(got, tt.post) {
				t.Errorf("postPromotionAnalysis templates = %v, want %v", got, tt.post)
			}
			if len(res.Workloads) != 1 || res.Workloads[0].Image != pushed {
				t.Errorf("workloads = %+v, want the Rollout's one container, pinned", res.Workloads)
			}
		})
	}
}

// TestArgoBlueGreenAnalysisTemplates: the templates of Argo's e2e Rollout
// are parsed as the analysis package reads them, one copy per analysis,
// and run with the Rollout's arguments.
func TestArgoBlueGreenAnalysisTemplates(t *testing.T) {
	docs := argoFiles(t, "rollout-bluegreen-analysis.yaml", "analysistemplate-sleep-job.yaml")
	docs["services.yaml"] = argoServices
	res, err := readObjects(docs)
	if err != nil {
		t.Fatal(err)
	}
	pre, post := res.BlueGreen.PrePromotionAnalysis, res.BlueGreen.PostPromotionAnalysis
	if pre.Templates[0] == post.Templates[0] {
		t.Error("pre- and post-promotion analyses share one *analysis.Template; want a copy each")
	}
	data, err := os.ReadFile("testdata/argo/analysistemplate-sleep-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want, err := analysis.ParseTemplate("testdata/argo/analysistemplate-sleep-job.yaml", data, "sleep-job")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pre.Templates[0], want) {
		t.Errorf("template:\ngot  %+v\nwant %+v", pre.Templates[0], want)
	}
	args := map[string]string{}
	for _, a := range pre.Args {
		args[a.Name] = a.Value
	}
	if err := analysis.Check(pre.Templates[0], analysis.Options{Args: args, SharedArgs: true}); err != nil {
		t.Errorf("Check with the Rollout's args: %v", err)
	}
}

// TestArgoHelmBlueGreenChart renders Argo's examples/helm-blue-green chart
// unchanged: no autoPromotionEnabled, so Argo's default (true).
func TestArgoHelmBlueGreenChart(t *testing.T) {
	res, err := Render(context.Background(), "testdata/argo", "helm-blue-green", Options{Image: pushed, ReleaseName: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	want := &runtime.BlueGreen{ActiveService: "prod-helm-guestbook", PreviewService: "prod-helm-guestbook-preview", AutoPromotionEnabled: true}
	if !reflect.DeepEqual(res.BlueGreen, want) {
		t.Errorf("BlueGreen:\ngot  %+v\nwant %+v", res.BlueGreen, want)
	}
}

// TestArgoCanaryRolloutRefused: Argo's e2e canary Rollout with analysis
// args is refused, naming the file and the field.
func TestArgoCanaryRolloutRefused(t *testing.T) {
	_, err := readObjects(argoFiles(t, "rollout-bg-analysis-withArgs.yaml"))
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("error = %v, want ErrUnsupported", err)
	}
	if want := "testdata/argo/rollout-bg-analysis-withArgs.yaml:23:5: spec.strategy.canary: not supported on the local runtime yet"; err.Error() != want {
		t.Errorf("error:\ngot  %v\nwant %s", err, want)
	}
}

// TestExampleChartRollout: the example's chart renders its Rollout and
// AnalysisTemplate unchanged; every blueGreen field maps as Argo defines
// it (autoPromotionEnabled and scaleDownDelaySeconds from values, the
// others unset: Argo's defaults).
func TestExampleChartRollout(t *testing.T) {
	for _, values := range [][]string{nil, {"examples/payment-service/deploy/chart/values-local.yaml"}} {
		t.Run(strings.Join(append([]string{"values.yaml"}, values...), "+"), func(t *testing.T) {
			res, err := Render(context.Background(), "../..", "examples/payment-service/deploy/chart", Options{ValuesFiles: values, Image: pushed, ReleaseName: "prod"})
			if err != nil {
				t.Fatal(err)
			}
			bg := res.BlueGreen
			if bg == nil {
				t.Fatal("BlueGreen = nil")
			}
			want := runtime.BlueGreen{
				ActiveService: "payment-service", PreviewService: "payment-service-preview",
				AutoPromotionEnabled:  false,
				ScaleDownDelaySeconds: ptr(300),
				PrePromotionAnalysis:  &runtime.RolloutAnalysis{},
			}
			if got := withoutTemplates(bg); !reflect.DeepEqual(got, want) {
				t.Errorf("BlueGreen:\ngot  %+v\nwant %+v", got, want)
			}
			const file = "examples/payment-service/deploy/chart/templates/analysis-template.yaml"
			data, err := os.ReadFile(filepath.Join("../..", file))
			if err != nil {
				t.Fatal(err)
			}
			tmpl, err := analysis.ParseTemplate(file, data, "payment-service-analysis")
			if err != nil {
				t.Fatal(err)
			}
			if got := bg.PrePromotionAnalysis.Templates; len(got) != 1 || !reflect.DeepEqual(got[0], tmpl) {
				t.Errorf("prePromotionAnalysis templates:\ngot  %+v\nwant [%+v]", got, tmpl)
			}
		})
	}
}

// allFields is a Rollout that sets every blueGreen field, as Argo's
// specification documents them.
const allFields = `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: app}
spec:
  replicas: 3
  revisionHistoryLimit: 3
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers: [{name: app, image: app:1}]
  strategy:
    blueGreen:
      activeService: active
      previewService: preview
      previewReplicaCount: 1
      autoPromotionEnabled: true
      autoPromotionSeconds: 30
      maxUnavailable: 1
      scaleDownDelaySeconds: 120
      scaleDownDelayRevisionLimit: 2
      abortScaleDownDelaySeconds: 0
      antiAffinity:
        preferredDuringSchedulingIgnoredDuringExecution: {weight: 1}
      activeMetadata: {labels: {role: active}}
      previewMetadata: {labels: {role: preview}}
      prePromotionAnalysis:
        templates:
        - templateName: smoke
        - templateName: latency
          clusterScope: true
        args:
        - {name: service, value: preview}
        - {name: unused, value: x}
        dryRun: [{metricName: shadow}]
        measurementRetention: [{metricName: p99, limit: 5}]
        analysisRunMetadata: {labels: {team: pay}}
      postPromotionAnalysis:
        templates: [{templateName: smoke}]
        args: [{name: service, value: active}]
---
apiVersion: v1
kind: Service
metadata: {name: active}
---
apiVersion: v1
kind: Service
metadata: {name: preview}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: smoke}
spec:
  args: [{name: service}]
  metrics:
  - {name: up, provider: {web: {url: "http://{{args.service}}/healthz"}}}
---
apiVersion: argoproj.io/v1alpha1
kind: ClusterAnalysisTemplate
metadata: {name: latency}
spec:
  metrics:
  - {name: p99, provider: {prometheus: {address: http://prometheus:9090, query: up}}}
`

func TestEveryBlueGreenFieldMaps(t *testing.T) {
	res, err := readObjects(map[string]string{"rollout.yaml": allFields})
	if err != nil {
		t.Fatal(err)
	}
	bg := res.BlueGreen
	want := runtime.BlueGreen{
		ActiveService: "active", PreviewService: "preview",
		PreviewReplicaCount:  ptr(1),
		AutoPromotionEnabled: true, AutoPromotionSeconds: 30,
		ScaleDownDelaySeconds: ptr(120), ScaleDownDelayRevisionLimit: ptr(2), AbortScaleDownDelaySeconds: ptr(0),
		PrePromotionAnalysis:  &runtime.RolloutAnalysis{Args: []runtime.AnalysisArg{{Name: "service", Value: "preview"}, {Name: "unused", Value: "x"}}},
		PostPromotionAnalysis: &runtime.RolloutAnalysis{Args: []runtime.AnalysisArg{{Name: "service", Value: "active"}}},
		Notes: []string{
			"testdata/argo/rollout.yaml: spec.strategy.blueGreen.antiAffinity: ignored on one machine (every instance runs on this host)",
			"testdata/argo/rollout.yaml: spec.strategy.blueGreen.maxUnavailable: ignored: green starts beside blue, and blue keeps serving until the switch",
			"testdata/argo/rollout.yaml: spec.strategy.blueGreen.previewMetadata: ignored: the local runtime's instances carry no labels or annotations",
			"testdata/argo/rollout.yaml: spec.strategy.blueGreen.activeMetadata: ignored: the local runtime's instances carry no labels or annotations",
			`testdata/argo/rollout.yaml: spec.strategy.blueGreen.prePromotionAnalysis.args[1]: no template declares argument "unused"; ignored, as Argo does`,
			"testdata/argo/rollout.yaml: spec.strategy.blueGreen.prePromotionAnalysis.measurementRetention: ignored: gantry keeps every measurement of a run",
			"testdata/argo/rollout.yaml: spec.strategy.blueGreen.prePromotionAnalysis.analysisRunMetadata: ignored: the local runtime records analysis runs without labels or annotations",
		},
	}
	if got := withoutTemplates(bg); !reflect.DeepEqual(got, want) {
		t.Errorf("BlueGreen:\ngot  %+v\nwant %+v", got, want)
	}
	if got, want := templateNames(bg.PrePromotionAnalysis), []string{"AnalysisTemplate/smoke", "ClusterAnalysisTemplate/latency"}; !slices.Equal(got, want) {
		t.Errorf("pre templates = %v, want %v", got, want)
	}
	if got, want := templateNames(bg.PostPromotionAnalysis), []string{"AnalysisTemplate/smoke"}; !slices.Equal(got, want) {
		t.Errorf("post templates = %v, want %v", got, want)
	}
	// The Rollout's dryRun reaches every template of its analysis, and
	// only those.
	for _, tm := range bg.PrePromotionAnalysis.Templates {
		if !slices.Equal(tm.Spec.DryRun, []analysis.MetricRef{{MetricName: "shadow"}}) {
			t.Errorf("pre %s dryRun = %v, want [shadow]", tm.Metadata.Name, tm.Spec.DryRun)
		}
	}
	if d := bg.PostPromotionAnalysis.Templates[0].Spec.DryRun; len(d) != 0 {
		t.Errorf("post dryRun = %v, want none", d)
	}
}

// rollout builds a Rollout with the given blueGreen (indented under
// blueGreen:) plus Services active and preview and an AnalysisTemplate
// "check" declaring argument "service".
func rollout(strategy string) string {
	return `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: app}
spec:
  template:
    spec:
      containers: [{name: app, image: app:1}]
  strategy:
` + strategy + `
---
apiVersion: v1
kind: Service
metadata: {name: active}
---
apiVersion: v1
kind: Service
metadata: {name: preview}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: check}
spec:
  args: [{name: service}, {name: bound, value: "1"}]
  metrics:
  - {name: up, provider: {web: {url: "http://{{args.service}}/"}}}
`
}

func TestRolloutErrors(t *testing.T) {
	at := func(pos string) string { return "testdata/argo/rollout.yaml:" + pos + ": " }
	tests := []struct {
		name string
		docs map[string]string
		is   error
		want string
	}{
		{"canary", map[string]string{"rollout.yaml": rollout("    canary: {steps: [{setWeight: 20}]}")}, ErrUnsupported,
			at("9:5") + "spec.strategy.canary: not supported on the local runtime yet"},
		{"both strategies", map[string]string{"rollout.yaml": rollout("    canary: {}\n    blueGreen: {activeService: active}")}, ErrInvalidRollout,
			at("8:3") + "spec.strategy: invalid Rollout: blueGreen and canary are both set"},
		{"no strategy", map[string]string{"rollout.yaml": rollout("    {}")}, ErrInvalidRollout,
			at("8:3") + "spec.strategy: invalid Rollout: a Rollout needs spec.strategy.blueGreen or spec.strategy.canary"},
		{"unknown field", map[string]string{"rollout.yaml": rollout("    blueGreen: {activeService: active, autoPromotionEnable: false}")}, ErrInvalidRollout,
			at("9:40") + `spec.strategy.blueGreen.autoPromotionEnable: invalid Rollout: unknown field (Argo Rollouts defines no "autoPromotionEnable" here)`},
		{"unknown field in a list", map[string]string{"rollout.yaml": rollout("    blueGreen:\n      activeService: active\n      prePromotionAnalysis:\n        templates:\n        - templateName: check\n          clusterscope: true\n        - templateNam: other")}, ErrInvalidRollout,
			at("14:11") + `spec.strategy.blueGreen.prePromotionAnalysis.templates[0].clusterscope: invalid Rollout: unknown field (Argo Rollouts defines no "clusterscope" here)`},
		{"wrong type", map[string]string{"rollout.yaml": rollout("    blueGreen: {activeService: active, scaleDownDelaySeconds: 300s}")}, ErrInvalidRollout,
			at("9:63") + "spec.strategy.blueGreen.scaleDownDelaySeconds: invalid Rollout: got a string, want int32"},
		{"no activeService", map[string]string{"rollout.yaml": rollout("    blueGreen: {previewService: preview}")}, ErrInvalidRollout,
			at("9:5") + "spec.strategy.blueGreen.activeService: invalid Rollout: required"},
		{"same services", map[string]string{"rollout.yaml": rollout("    blueGreen: {activeService: active, previewService: active}")}, ErrInvalidRollout,
			at("9:56") + `spec.strategy.blueGreen.previewService: invalid Rollout: "active" is also the activeService`},
		{"active Service not rendered", map[string]string{"rollout.yaml": rollout("    blueGreen: {activeService: web}")}, ErrReference,
			at("9:32") + `spec.strategy.blueGreen.activeService: reference to something the chart does not render: Service "web" (the chart renders active, preview)`},
		{"preview Service not rendered", map[string]string{"rollout.yaml": rollout("    blueGreen: {activeService: active, previewService: web-preview}")}, ErrReference,
			at("9:56") + `spec.strategy.blueGreen.previewService: reference to something the chart does not render: Service "web-preview"`},
		{"negative delay", map[string]string{"rollout.yaml": rollout("    blueGreen: {activeService: active, scaleDownDelaySeconds: -1}")}, ErrInvalidRollout,
			at("9:63") + "spec.strategy.blueGreen.scaleDownDelaySeconds: invalid Rollout: -1 is negative"},
		{"revision limit above history", map[string]string{"rollout.yaml": rollout("    blueGreen: {activeService: active, scaleDownDelayRevisionLimit: 11}")}, ErrInvalidRollout,
			at("9:69") + "spec.strategy.blueGreen.scaleDownDelayRevisionLimit: invalid Rollout: 11 is above spec.revisionHistoryLimit 10"},
		{"no templates", map[string]string{"rollout.yaml": rollout("    blueGreen: {activeService: active, prePromotionAnalysis: {templates: []}}")}, ErrInvalidRollout,
			at("9:63") + "spec.strategy.blueGreen.prePromotionAnalysis.templates: invalid Rollout: names no AnalysisTemplate"},
		{"template not rendered", map[string]string{"rollout.yaml": rollout("    blueGreen: {activeService: active, prePromotionAnalysis: {templates: [{templateName: check}, {templateName: success-rate}], args: [{name: service, value: x}]}}")}, ErrReference,
			at("9:113") + `spec.strategy.blueGreen.prePromotionAnalysis.templates[1].templateName: reference to something the chart does not render: AnalysisTemplate "success-rate" (the chart renders check)`},
		{"cluster template not rendered", map[string]string{"rollout.yaml": rollout("    blueGreen: {activeService: active, postPromotionAnalysis: {templates: [{templateName: check, clusterScope: true}]}}")}, ErrReference,
			at("9:91") + `spec.strategy.blueGreen.postPromotionAnalysis.templates[0].templateName: reference to something the chart does not render: ClusterAnalysisTemplate "check" (the chart renders none); clusterScope: true names a template installed in the cluster`},
		{"template does not parse", map[string]string{
			"rollout.yaml":  rollout("    blueGreen: {activeService: active, prePromotionAnalysis: {templates: [{templateName: bad}]}}"),
			"analysis.yaml": "# a comment\n---\napiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: bad}\nspec:\n  metrics:\n  - name: m\n    intervall: 5s\n    provider: {web: {url: http://x}}\n",
		}, ErrAnalysisTemplate, at("9:90") + `spec.strategy.blueGreen.prePromotionAnalysis.templates[0].templateName: AnalysisTemplate does not parse: AnalysisTemplate "bad": testdata/argo/analysis.yaml:9:5`},
		{"argument without value", map[string]string{"rollout.yaml": rollout("    blueGreen: {activeService: active, prePromotionAnalysis: {templates: [{templateName: check}]}}")}, analysis.ErrArgNoValue,
			at("9:40") + `spec.strategy.blueGreen.prePromotionAnalysis.args: argument "service" of AnalysisTemplate "check" has no value: the template gives none, and neither does the Rollout`},
		{"argument twice", map[string]string{"rollout.yaml": rollout("    blueGreen: {activeService: active, prePromotionAnalysis: {templates: [{templateName: check}], args: [{name: service, value: a}, {name: service, value: b}]}}")}, ErrInvalidRollout,
			at("9:140") + `spec.strategy.blueGreen.prePromotionAnalysis.args[1].name: invalid Rollout: argument "service" is given twice`},
		{"podTemplateHashValue", map[string]string{"rollout.yaml": rollout("    blueGreen: {activeService: active, prePromotionAnalysis: {templates: [{templateName: check}], args: [{name: service, valueFrom: {podTemplateHashValue: Latest}}]}}")}, ErrUnsupported,
			at("9:156") + "spec.strategy.blueGreen.prePromotionAnalysis.args[0].valueFrom.podTemplateHashValue: not supported on the local runtime yet: the local runtime has no ReplicaSets, so no Latest pod-template-hash; give a value"},
		{"fieldRef", map[string]string{"rollout.yaml": rollout("    blueGreen: {activeService: active, postPromotionAnalysis: {templates: [{templateName: check}], args: [{name: service, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]}}")}, ErrUnsupported,
			at("9:135") + `spec.strategy.blueGreen.postPromotionAnalysis.args[0].valueFrom.fieldRef: not supported on the local runtime yet: fieldRef "metadata.name"; give a value`},
		{"two Rollouts", map[string]string{
			"rollout.yaml": rollout("    blueGreen: {activeService: active}"),
			"second.yaml":  "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: other}\nspec:\n  template: {spec: {containers: [{name: other, image: other:1}]}}\n  strategy: {blueGreen: {activeService: active}}\n",
		}, ErrUnsupported, "testdata/argo/second.yaml: Rollout other: not supported on the local runtime yet: a second Rollout (after app in testdata/argo/rollout.yaml); an environment rolls out one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := readObjects(tt.docs)
			if !errors.Is(err, tt.is) {
				t.Fatalf("error = %v (BlueGreen %+v), want errors.Is %v", err, res, tt.is)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *chart.Error", err)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error:\ngot  %v\nwant %s...", err, tt.want)
			}
		})
	}
}

// TestNoRolloutNoBlueGreen: a chart of Deployments has no strategy to
// read.
func TestNoRolloutNoBlueGreen(t *testing.T) {
	res, err := Render(context.Background(), "testdata", "hpa", Options{Image: pushed})
	if err != nil {
		t.Fatal(err)
	}
	if res.BlueGreen != nil {
		t.Errorf("BlueGreen = %+v, want nil", res.BlueGreen)
	}
}

func FuzzReadRollout(f *testing.F) {
	files, _ := filepath.Glob("testdata/argo/*.yaml")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(string(data))
		}
	}
	f.Add(allFields)
	f.Add(rollout("    blueGreen: &bg\n      activeService: active\n      prePromotionAnalysis: {templates: [{templateName: check, clusterScope: true}]}\n    canary: *bg"))
	f.Add(rollout("    blueGreen: {activeService: active, unknown: {a: [1, {b: 2}]}}"))
	f.Add(rollout("    blueGreen: {activeService: active, prePromotionAnalysis: {templates: [{templateName: check}], args: [{name: service, valueFrom: {}}]}}"))
	f.Fuzz(func(t *testing.T, text string) {
		res, err := readObjects(map[string]string{"rollout.yaml": text})
		if err != nil {
			if err.Error() == "" {
				t.Error("empty error message")
			}
			return
		}
		if bg := res.BlueGreen; bg != nil && bg.ActiveService == "" {
			t.Errorf("a BlueGreen without an activeService: %+v", bg)
		}
	})
}
