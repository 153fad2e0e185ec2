// Package deploy holds checks that keep the deployment files consistent.
package deploy

import (
	"bytes"
	"os"
	"testing"
)

// stripComments drops the leading comment block of a YAML file.
func stripComments(b []byte) []byte {
	for bytes.HasPrefix(b, []byte("#")) {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil
		}
		b = b[i+1:]
	}
	return b
}

// The kustomize base carries a copy of the chart's AnalysisTemplate
// (kustomize cannot load files outside its root); they must not drift.
func TestAnalysisTemplateCopiesMatch(t *testing.T) {
	chart, err := os.ReadFile("chart/templates/analysis-template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile("base/analysis-template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := stripComments(base), stripComments(chart); !bytes.Equal(got, want) {
		t.Fatalf("deploy/base/analysis-template.yaml differs from deploy/chart/templates/analysis-template.yaml:\n%s\nwant:\n%s", got, want)
	}
	// The chart copy must stay free of Helm directives so it can be read
	// as a plain AnalysisTemplate too.
	if bytes.Contains(chart, []byte("{{")) {
		t.Fatal("chart/templates/analysis-template.yaml contains template directives")
	}
}
