package chart

import (
	"fmt"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestPosition(t *testing.T) {
	const src = `spec:
  strategy:
    blueGreen: &bg
      activeService: web
      prePromotionAnalysis:
        templates:
        - templateName: a
        - {templateName: b}
        args: []
  other: *bg
  empty:
`
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		field string
		want  string // line:col, "" for none
	}{
		{"spec.strategy.blueGreen.activeService", "4:22"},                                  // a scalar: its value
		{"spec.strategy.blueGreen", "3:5"},                                                 // a mapping: its key
		{"spec.strategy.blueGreen.prePromotionAnalysis.templates[1].templateName", "8:26"}, // through a list
		{"spec.strategy.blueGreen.prePromotionAnalysis.templates[0]", "7:11"},              // a list item
		{"spec.strategy.blueGreen.prePromotionAnalysis.templates[5].templateName", "6:9"},  // past the end: the list
		{"spec.strategy.blueGreen.previewService", "3:5"},                                  // missing: the nearest parent
		{"spec.strategy.blueGreen.prePromotionAnalysis.args", "9:9"},                       // an empty list: its key
		{"spec.other.activeService", "4:22"},                                               // through an alias
		{"spec.empty", "11:3"},                                                             // a null: its key
		{"Rollout app", ""},                                                                // not a path of the document
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			got := ""
			if n := position(&doc, tt.field); n != nil {
				got = fmt.Sprintf("%d:%d", n.Line, n.Column)
			}
			if got != tt.want {
				t.Errorf("position = %q, want %q", got, tt.want)
			}
		})
	}
	if n := position(nil, "spec"); n != nil {
		t.Errorf("position of no document = %v, want nil", n)
	}
}
