package evidence

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/step"
)

func ptr[T any](v T) *T { return &v }

var view = step.RunView{
	Pipeline: "payment-service",
	Stages: []step.StageView{
		{Name: "commit", Status: "passed", Steps: []step.StepView{
			{Name: "go-lint", Kind: "golangci-lint", Gate: "lint", Status: "cached", Outputs: map[string]any{"findings": 0}},
			{Name: "tflint", Kind: "tflint", Gate: "lint", Status: "passed"},
			{Name: "commits", Kind: "commitlint", Gate: "commit-messages", Status: "passed", Outputs: map[string]any{"commits": 3}},
			{Name: "version", Kind: "next-version", Status: "passed"},
		}},
		{Name: "build-test", Status: "failed", Gate: "steps.integration.outputs.coverage >= 80", GatePassed: ptr(false), Steps: []step.StepView{
			{Name: "unit", Kind: "go-test", Gate: "tests", Status: "passed", Outputs: map[string]any{"coverage": 79.0}},
			{Name: "integration", Kind: "go-test", Gate: "tests", Status: "passed", Outputs: map[string]any{"coverage": 78.5}},
		}},
		{Name: "security", Status: "running", Steps: []step.StepView{
			{Name: "trivy", Kind: "vuln-scan", Gate: "vuln-scan", Status: "passed", Outputs: map[string]any{"high": 0, "exceptions": []any{"GO-2024-0001", "GO-2024-0001"}}},
			{Name: "sast", Kind: "sast", Gate: "sast", Status: "failed", Message: "2 findings"},
			{Name: "licenses", Kind: "license-check", Gate: "licenses", Status: "failed", AllowFailure: true},
			{Name: "notes", Kind: "run", Status: "passed"},
		}},
	},
}

func TestCollect(t *testing.T) {
	now := time.Date(2026, 11, 28, 18, 0, 0, 0, time.FixedZone("x", 3600))
	ps := Collect(view, Run{ID: "24", Commit: "abc"}, now)
	got := map[string]string{}
	var gates []string
	for _, p := range ps {
		got[p.Gate] = p.Verdict
		gates = append(gates, p.Gate)
		if p.Run.ID != "24" || p.Run.Pipeline != "payment-service" || p.Run.Time != "2026-11-28T17:00:00Z" {
			t.Errorf("%s: run %+v", p.Gate, p.Run)
		}
	}
	if want := "lint commit-messages tests vuln-scan sast licenses"; strings.Join(gates, " ") != want {
		t.Errorf("gates %v, want %s", gates, want)
	}
	want := map[string]string{
		"lint": Pass, "commit-messages": Pass,
		"tests":     Fail, // every test passed, but the coverage gate failed
		"vuln-scan": Pass, "sast": Fail,
		"licenses": AllowedFailure, // failed with allow_failure: not a pass
	}
	for g, v := range want {
		if got[g] != v {
			t.Errorf("%s verdict %q, want %q", g, got[g], v)
		}
	}
	for _, p := range ps {
		switch p.Gate {
		case "tests":
			if len(p.Steps) != 2 || len(p.Stages) != 1 || p.Stages[0].Gate == "" || p.Steps[1].Figures["coverage"] != 78.5 {
				t.Errorf("tests predicate %+v", p)
			}
		case "lint":
			if len(p.Steps) != 2 {
				t.Errorf("lint steps %+v", p.Steps)
			}
		case "licenses":
			if len(p.Steps) != 1 || p.Steps[0].Status != "failed" || !p.Steps[0].AllowFailure {
				t.Errorf("licenses steps %+v, want the failed step marked allow_failure", p.Steps)
			}
		case "vuln-scan":
			if strings.Join(p.Exceptions, ",") != "GO-2024-0001" {
				t.Errorf("exceptions %v", p.Exceptions)
			}
		}
	}
}

// TestCollectReadsTheGate checks that a step counts for the gate its
// kind attests, whatever the kind is called.
func TestCollectReadsTheGate(t *testing.T) {
	v := step.RunView{Stages: []step.StageView{{Name: "commit", Status: "passed", Steps: []step.StepView{
		{Name: "custom", Kind: "my-linter", Gate: "lint", Status: "failed"},
		{Name: "script", Kind: "run", Status: "passed"},
		{Name: "ungated", Kind: "golangci-lint", Status: "failed"},
	}}}}
	ps := Collect(v, Run{ID: "1"}, time.Now())
	if len(ps) != 1 {
		t.Fatalf("got %d predicates (%+v), want the lint gate only", len(ps), ps)
	}
	if got, want := ps[0].Gate, "lint"; got != want {
		t.Errorf("gate: got %q, want %q", got, want)
	}
	if len(ps[0].Steps) != 1 || ps[0].Steps[0].Name != "custom" || ps[0].Verdict != Fail {
		t.Errorf("lint predicate: got steps %+v verdict %s, want the custom step, failing", ps[0].Steps, ps[0].Verdict)
	}
}

func attestation(t *testing.T, p Predicate) signing.Attestation {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return signing.Attestation{PredicateType: PredicateType(p.Gate), Statement: &signing.Statement{PredicateType: PredicateType(p.Gate), Predicate: b}}
}

func TestCheck(t *testing.T) {
	atts := []signing.Attestation{
		attestation(t, Predicate{Gate: "tests", Verdict: Fail, Run: Run{ID: "1", Time: "2026-11-28T10:00:00Z"}}),
		attestation(t, Predicate{Gate: "tests", Verdict: Pass, Run: Run{ID: "2", Time: "2026-11-28T11:00:00Z"}}),
		attestation(t, Predicate{Gate: "sast", Verdict: Fail, Run: Run{ID: "2", Time: "2026-11-28T11:00:00Z"}}),
		{PredicateType: PredicateType("licenses"), Err: signing.ErrWrongKey},
		{PredicateType: signing.SLSAProvenanceV1, Statement: &signing.Statement{}},
	}
	vs, err := Check(atts, []string{"tests"}, CheckOptions{})
	if err != nil || len(vs) != 1 || vs[0].RunID != "2" {
		t.Errorf("tests: %+v %v (the latest verdict counts)", vs, err)
	}
	_, err = Check(atts, []string{"tests", "sast", "vuln-scan", "licenses"}, CheckOptions{})
	for _, want := range []error{ErrFailing, ErrMissing, signing.ErrWrongKey} {
		if !errors.Is(err, want) {
			t.Errorf("error %v does not wrap %v", err, want)
		}
	}
	for _, g := range []string{"sast:", "vuln-scan:", "licenses:"} {
		if err == nil || !strings.Contains(err.Error(), g) {
			t.Errorf("error %v does not name %s", err, g)
		}
	}
	if _, err := Check(atts, []string{"coverage"}, CheckOptions{}); err == nil || !strings.Contains(err.Error(), "unknown gate") {
		t.Errorf("unknown gate: %v", err)
	}
	bad := attestation(t, Predicate{Gate: "sbom", Verdict: "maybe"})
	if _, err := Check([]signing.Attestation{bad}, []string{"sbom"}, CheckOptions{}); !errors.Is(err, signing.ErrTampered) {
		t.Errorf("bad verdict: %v", err)
	}
}

// TestVerdictOfAllowedFailures: a gate with a step that failed under
// allow_failure is neither a pass nor hidden by a later failure.
func TestVerdictOfAllowedFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step.StepView
		want  string
	}{
		{"all passed", []step.StepView{{Status: "passed"}, {Status: "cached"}}, Pass},
		{"allowed failure", []step.StepView{{Status: "passed"}, {Status: "failed", AllowFailure: true}}, AllowedFailure},
		{"allowed and plain failure", []step.StepView{{Status: "failed", AllowFailure: true}, {Status: "failed"}}, Fail},
		{"plain failure then allowed", []step.StepView{{Status: "failed"}, {Status: "failed", AllowFailure: true}}, Fail},
		{"skipped", []step.StepView{{Status: "skipped", AllowFailure: true}}, Fail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range tc.steps {
				tc.steps[i].Name, tc.steps[i].Kind, tc.steps[i].Gate = "s"+string(rune('a'+i)), "license-check", "licenses"
			}
			ps := Collect(step.RunView{Stages: []step.StageView{{Name: "security", Status: "passed", Steps: tc.steps}}}, Run{ID: "1"}, time.Now())
			if len(ps) != 1 {
				t.Fatalf("got %d predicates, want 1", len(ps))
			}
			if got := ps[0].Verdict; got != tc.want {
				t.Errorf("verdict %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCheckAllowedFailure(t *testing.T) {
	atts := []signing.Attestation{
		attestation(t, Predicate{Gate: "licenses", Verdict: AllowedFailure, Run: Run{ID: "3", Time: "2026-11-28T12:00:00Z"}}),
		attestation(t, Predicate{Gate: "sast", Verdict: Fail, Run: Run{ID: "3", Time: "2026-11-28T12:00:00Z"}}),
	}
	for _, tc := range []struct {
		name    string
		require []string
		opts    CheckOptions
		wantErr []error
	}{
		{"refused by default", []string{"licenses"}, CheckOptions{}, []error{ErrAllowedFailure, ErrFailing}},
		{"accepted when asked", []string{"licenses"}, CheckOptions{AcceptAllowedFailures: true}, nil},
		{"a plain failure stays refused", []string{"sast"}, CheckOptions{AcceptAllowedFailures: true}, []error{ErrFailing}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs, err := Check(atts, tc.require, tc.opts)
			if tc.wantErr == nil && err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			for _, want := range tc.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("got %v, want an error wrapping %v", err, want)
				}
			}
			if len(vs) != 1 || vs[0].Gate != tc.require[0] {
				t.Errorf("verdicts %+v", vs)
			}
		})
	}
}
