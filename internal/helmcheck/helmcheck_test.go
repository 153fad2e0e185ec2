package helmcheck

import (
	"context"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/manifests"
)

func lines(r *findings.Report) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.String())
	}
	return out
}

func TestLint(t *testing.T) {
	for _, tc := range []struct {
		chart string
		want  []string
	}{
		{"good", nil},
		{"lintbad", []string{
			"lintbad/Chart.yaml: error: version 'not-a-version' is not a valid SemVer [helm-lint]",
			"lintbad/templates: error: validation: chart.metadata.version \"not-a-version\" is invalid [helm-lint]",
			"lintbad: error: unable to load chart\n\tvalidation: chart.metadata.version \"not-a-version\" is invalid [helm-lint]",
		}},
		{"renderbad", []string{
			"renderbad/templates/unclosed.yaml:5: error: parse error at (payment/templates/unclosed.yaml:5): unclosed action started at payment/templates/unclosed.yaml:4 [helm-lint]",
		}},
	} {
		t.Run(tc.chart, func(t *testing.T) {
			r, err := Lint(context.Background(), "testdata", tc.chart, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range r.Findings {
				if f.Severity == findings.Error {
					got = append(got, f.String())
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(got), len(tc.want), strings.Join(lines(r), "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("got  %s\nwant %s", got[i], tc.want[i])
				}
			}
		})
	}
}

func TestTemplate(t *testing.T) {
	out, r, err := Template(context.Background(), "testdata", "good", Options{Set: []string{"replicaCount=3"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 0 {
		t.Fatalf("findings: %v", lines(r))
	}
	for _, want := range []string{"# Source: payment/templates/deployment.yaml", "replicas: 3", "image: \"registry.local/payment-service:1.0.0\"", "kind: Service"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rendered output lacks %q:\n%s", want, out)
		}
	}

	_, r, err = Template(context.Background(), "testdata", "renderbad", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := lines(r); len(got) != 1 || got[0] != "renderbad/templates/unclosed.yaml:5: error: parse error at (payment/templates/unclosed.yaml:5): unclosed action started at payment/templates/unclosed.yaml:4 [helm-template]" {
		t.Errorf("got %q", got)
	}
}

func TestTemplateThenValidate(t *testing.T) {
	out, r, err := Template(context.Background(), "testdata", "schemabad", Options{})
	if err != nil || len(r.Findings) != 0 {
		t.Fatalf("render: %v %v", err, lines(r))
	}
	reg, err := manifests.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	v := &manifests.Validator{Registry: reg}
	rep, _, err := v.Check(context.Background(), "testdata", manifests.Input{Rendered: []manifests.Rendered{{Name: "schemabad (helm template)", Data: out}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`schemabad (helm template):8:13: error: Deployment/payment: spec.replicas: expected integer, got string [wrong-type]`,
		`schemabad (helm template):18:11: error: Deployment/payment: spec.template.spec.containers[0].imagePolicy: unknown field "imagePolicy" [unknown-field]`,
	}
	got := lines(rep)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s\nrendered:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), out)
	}
}
