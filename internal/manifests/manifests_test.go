package manifests

import (
	"context"
	"github.com/gantry-ci/gantry/internal/findings"
	"strings"
	"testing"
)

func check(t *testing.T, unknown UnknownKinds, in Input) ([]string, Stats) {
	t.Helper()
	reg, err := NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	v := &Validator{Registry: reg, Unknown: unknown}
	r, st, err := v.Check(context.Background(), "testdata", in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range r.Findings {
		got = append(got, f.String())
	}
	return got, st
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		unknown UnknownKinds
		in      Input
		want    []string
		stats   Stats
	}{
		{name: "good", in: Input{Paths: []string{"good"}}, stats: Stats{Documents: 5, Valid: 5}},
		{name: "bad deployment", in: Input{Paths: []string{"bad/deployment.yaml"}}, stats: Stats{Documents: 1}, want: []string{
			`bad/deployment.yaml:6:3: error: Deployment/broken: spec.replica: unknown field "replica" [unknown-field]`,
			`bad/deployment.yaml:14:11: error: Deployment/broken: spec.template.spec.containers[0]: missing required field "name" [missing-required]`,
			`bad/deployment.yaml:15:28: error: Deployment/broken: spec.template.spec.containers[0].imagePullPolicy: "Sometimes" is not one of [Always, IfNotPresent, Never] [enum]`,
			`bad/deployment.yaml:17:30: error: Deployment/broken: spec.template.spec.containers[0].ports[0].containerPort: expected integer, got string [wrong-type]`,
		}},
		{name: "bad others", in: Input{Paths: []string{"bad/others.yaml"}}, stats: Stats{Documents: 4}, want: []string{
			`bad/others.yaml:1:1: error: Widget/w: no schema for kind Widget in example.com/v1 (Kubernetes v1.31.4 and known CRDs) [unknown-kind]`,
			`bad/others.yaml:13:7: error: Rollout/r: spec.strategy.blueGreen: missing required field "activeService" [missing-required]`,
			`bad/others.yaml:14:29: error: Rollout/r: spec.strategy.blueGreen.autoPromotionEnabled: expected boolean, got string [wrong-type]`,
			`bad/others.yaml:21:28: error: ClusterPolicy/p: spec.validationFailureAction: "Block" is not one of [audit, enforce, Audit, Enforce] [enum]`,
			`bad/others.yaml:23:7: error: ClusterPolicy/p: spec.rules[0]: missing required field "name" [missing-required]`,
			`bad/others.yaml:24:28: error: ClusterPolicy/p: spec.rules[0].verifyImages[0].imageReferences: expected array, got string [wrong-type]`,
			`bad/others.yaml:26:1: error: document has no apiVersion [missing-kind]`,
		}},
		{name: "skip unknown kinds", unknown: SkipUnknown, in: Input{Paths: []string{"bad/others.yaml"}}, stats: Stats{Documents: 4, Skipped: 1}, want: []string{
			`bad/others.yaml:13:7: error: Rollout/r: spec.strategy.blueGreen: missing required field "activeService" [missing-required]`,
			`bad/others.yaml:14:29: error: Rollout/r: spec.strategy.blueGreen.autoPromotionEnabled: expected boolean, got string [wrong-type]`,
			`bad/others.yaml:21:28: error: ClusterPolicy/p: spec.validationFailureAction: "Block" is not one of [audit, enforce, Audit, Enforce] [enum]`,
			`bad/others.yaml:23:7: error: ClusterPolicy/p: spec.rules[0]: missing required field "name" [missing-required]`,
			`bad/others.yaml:24:28: error: ClusterPolicy/p: spec.rules[0].verifyImages[0].imageReferences: expected array, got string [wrong-type]`,
			`bad/others.yaml:26:1: error: document has no apiVersion [missing-kind]`,
		}},
		{name: "broken yaml", in: Input{Paths: []string{"broken"}}, stats: Stats{Documents: 1, Valid: 1}, want: []string{
			`broken/bad.yaml:8:1: error: did not find expected ',' or ']' [yaml-syntax]`,
		}},
		{name: "crd from inputs", in: Input{Paths: []string{"crd"}}, stats: Stats{Documents: 3, Valid: 2}, want: []string{
			`crd/widgets.yaml:13:3: error: Widget/bad: spec: missing required field "size" [missing-required]`,
			`crd/widgets.yaml:13:3: error: Widget/bad: spec.colour: unknown field "colour" [unknown-field]`,
		}},
		{name: "kustomize", in: Input{Kustomize: []string{"kustomize/overlays/staging", "kustomize/overlays/broken"}}, stats: Stats{Documents: 1}, want: []string{
			`kustomize/overlays/broken: error: kustomize build: accumulating resources: accumulation err='accumulating resources from '../../missing': `,
			`kustomize/overlays/staging (kustomize build):6:13: error: Deployment/staging-api: spec.replicas: expected integer, got string [wrong-type]`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, st := check(t, tc.unknown, tc.in)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d findings, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("finding %d:\ngot  %s\nwant %s", i, got[i], tc.want[i])
				}
			}
			if st != tc.stats {
				t.Errorf("stats = %+v, want %+v", st, tc.stats)
			}
		})
	}
}

func TestRegistryKinds(t *testing.T) {
	reg, err := NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []GVK{
		{"apps", "v1", "Deployment"}, {"", "v1", "Service"}, {"networking.k8s.io", "v1", "Ingress"},
		{"argoproj.io", "v1alpha1", "Rollout"}, {"argoproj.io", "v1alpha1", "AnalysisTemplate"}, {"kyverno.io", "v1", "ClusterPolicy"},
		{"kyverno.io", "v1", "Policy"}, {"argoproj.io", "v1alpha1", "ClusterAnalysisTemplate"},
	} {
		if _, ok := reg.Lookup(g); !ok {
			t.Errorf("no schema for %v", g)
		}
	}
	if _, ok := reg.Lookup(GVK{"extensions", "v1beta1", "Deployment"}); ok {
		t.Error("removed API extensions/v1beta1 Deployment has a schema")
	}
}

func FuzzValidate(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: Pod\nspec: {containers: [{name: a}]}\n"))
	f.Add([]byte("a: [\n"))
	reg, err := NewRegistry()
	if err != nil {
		f.Fatal(err)
	}
	v := &Validator{Registry: reg}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newReport()
		for _, d := range SplitDocuments("f.yaml", data, r) {
			v.Validate(d, r)
		}
	})
}

func newReport() *findings.Report { return &findings.Report{Tool: Tool} }
