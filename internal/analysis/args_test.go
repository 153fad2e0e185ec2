package analysis

import (
	"errors"
	"strings"
	"testing"
)

func TestArgumentsResolvedBeforeRun(t *testing.T) {
	// Argo refuses an AnalysisRun with an argument that has no value
	// ("args.X was not resolved"), whether or not a metric uses it.
	src := "kind: AnalysisTemplate\nmetadata: {name: t}\nspec:\n" +
		"  args:\n  - name: used\n  - name: unused\n  - name: given\n    value: g\n" +
		"  metrics:\n  - {name: m, provider: {web: {url: 'http://127.0.0.1:1/{{args.used}}'}}}\n"
	tmpl, err := ParseTemplate("t.yaml", []byte(src), "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    Options
		wantErr error
		wantArg string
	}{
		{"all supplied", Options{Args: map[string]string{"used": "a", "unused": "b"}}, nil, ""},
		{"an empty value is a value", Options{Args: map[string]string{"used": "", "unused": ""}}, nil, ""},
		{"unused argument not supplied", Options{Args: map[string]string{"used": "a"}}, ErrArgNoValue, "unused"},
		{"nothing supplied", Options{}, ErrArgNoValue, "used"},
		{"undeclared argument", Options{Args: map[string]string{"used": "a", "unused": "b", "other": "c"}}, ErrArgUndeclared, "other"},
		{"undeclared argument shared by templates", Options{Args: map[string]string{"used": "a", "unused": "b", "other": "c"}, SharedArgs: true}, nil, ""},
		{"shared arguments still need every value", Options{Args: map[string]string{"used": "a", "other": "c"}, SharedArgs: true}, ErrArgNoValue, "unused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tmpl, tt.opts)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Check = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "argument "+tt.wantArg+" ") {
				t.Errorf("Check = %v, want it to name argument %s", err, tt.wantArg)
			}
		})
	}
}
