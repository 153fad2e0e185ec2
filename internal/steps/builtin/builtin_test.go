package builtin_test

import (
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/steps/builtin"
)

// TestScriptIsNotAUsesKind keeps the script kind out of `uses:`: there its
// script would come from a with: block, where ${...} is expanded into the
// script's text instead of being refused.
func TestScriptIsNotAUsesKind(t *testing.T) {
	script := builtin.Script()
	if script.New == nil || script.Name == "" {
		t.Fatalf("Script(): got %+v, want a named kind with a constructor", script)
	}
	for _, k := range builtin.Kinds() {
		if k.Name == script.Name {
			t.Errorf("Kinds() lists the script kind %q", k.Name)
		}
	}
	_, err := spec.Parse("pipeline.yaml", []byte(`name: demo
stages:
  - name: build
    steps:
      - name: hello
        uses: `+script.Name+`
        with: {run: 'echo ${ branch }'}
`), spec.NewRegistry(builtin.Kinds(), nil))
	if err == nil || !strings.Contains(err.Error(), script.Name) {
		t.Errorf("a step with uses: %s: got error %v, want one naming the kind", script.Name, err)
	}
}
