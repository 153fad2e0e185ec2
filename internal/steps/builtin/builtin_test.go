package builtin_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/evidence"
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

// TestKindGates checks the gate each built-in kind attests: only gates
// that evidence knows, and the kinds that attest one.
func TestKindGates(t *testing.T) {
	want := map[string]string{
		"golangci-lint": "lint", "terraform-fmt": "lint", "tflint": "lint", "kubeconform": "lint",
		"helm-lint": "lint", "helm-template": "lint",
		"commitlint":    "commit-messages",
		"go-test":       "tests",
		"vuln-scan":     "vuln-scan",
		"sast":          "sast",
		"license-check": "licenses",
		"sbom":          "sbom",
	}
	known := evidence.Gates()
	for _, k := range append(builtin.Kinds(), builtin.Script()) {
		t.Run(k.Name, func(t *testing.T) {
			if got, want := k.Gate, want[k.Name]; got != want {
				t.Errorf("gate: got %q, want %q", got, want)
			}
			if k.Gate != "" && (!slices.Contains(known, k.Gate) || k.Gate == evidence.GateApproval) {
				t.Errorf("gate %q is not a step gate of evidence (%v)", k.Gate, known)
			}
		})
	}
}
