package engine_test

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/store"
)

// viewKind is a test kind whose steps record what Env.Run returned.
type viewKind struct {
	mu   sync.Mutex
	seen []step.RunView
}

func (k *viewKind) kind() step.Kind {
	return step.Kind{
		Name: "view",
		New: func(step.Inputs) (step.Step, error) {
			return stepFunc(func(_ context.Context, env *step.Env) (*step.Result, error) {
				v := env.Run()
				k.mu.Lock()
				k.seen = append(k.seen, v)
				k.mu.Unlock()
				return &step.Result{Summary: "viewed"}, nil
			}), nil
		},
	}
}

type stepFunc func(ctx context.Context, env *step.Env) (*step.Result, error)

func (f stepFunc) Run(ctx context.Context, env *step.Env) (*step.Result, error) { return f(ctx, env) }

// testsKind is a kind that attests the tests gate.
var testsKind = step.Kind{
	Name: "tests-kind",
	Gate: "tests",
	New: func(step.Inputs) (step.Step, error) {
		return stepFunc(func(context.Context, *step.Env) (*step.Result, error) { return &step.Result{}, nil }), nil
	},
}

func TestEnvRunView(t *testing.T) {
	views := &viewKind{}
	f := newFixture(t, engine.WithKinds([]step.Kind{views.kind(), testsKind}))
	p := f.pipeline(`name: demo
stages:
  - name: build
    steps:
      - {name: unit, run: 'echo "coverage=85" >> "$GANTRY_OUTPUT"', outputs: [coverage]}
      - {name: lint, run: 'echo lint broke; exit 2', allow_failure: true}
      - {name: c, uses: count, with: {value: 3}}
      - {name: off, run: 'echo never', if: 'branch == "nope"'}
      - {name: t, uses: tests-kind}
    gate: steps.unit.outputs.coverage >= 80
  - name: evidence
    steps:
      - {name: first, run: 'echo first'}
      - {name: report, uses: view, needs: [first]}
      - {name: last, run: 'echo last', needs: [report]}
`)
	res := f.run(context.Background(), p, engine.Request{})
	if res.Status != store.StatusPassed {
		t.Fatalf("status: got %s (%s), want passed", res.Status, res.Message)
	}
	if len(views.seen) != 1 {
		t.Fatalf("view steps ran %d times, want 1", len(views.seen))
	}
	got := views.seen[0]
	gatePassed := true
	want := step.RunView{
		Pipeline: "demo",
		Stages: []step.StageView{
			{
				Name: "build", Status: "passed",
				Gate: "steps.unit.outputs.coverage >= 80", GatePassed: &gatePassed,
				Steps: []step.StepView{
					{Name: "unit", Kind: "run", Status: "passed", Outputs: map[string]any{"coverage": float64(85)}},
					{Name: "lint", Kind: "run", Status: "failed", Message: "script exited with status 2", AllowFailure: true},
					{Name: "c", Kind: "count", Status: "passed", Summary: "counted", Outputs: map[string]any{"value": float64(3)}},
					{Name: "off", Kind: "run", Status: "skipped", Summary: `if: branch == "nope" is false`, Message: `if: branch == "nope" is false`},
					{Name: "t", Kind: "tests-kind", Gate: "tests", Status: "passed"},
				},
			},
			{
				Name: "evidence", Status: "running",
				Steps: []step.StepView{
					{Name: "first", Kind: "run", Status: "passed", Outputs: map[string]any{}},
				},
			},
		},
	}
	if got, want := len(got.Stages), len(want.Stages); got != want {
		t.Fatalf("stages: got %d, want %d", got, want)
	}
	for i, w := range want.Stages {
		g := got.Stages[i]
		if !reflect.DeepEqual(g, w) {
			t.Errorf("stage %d:\n got  %s\n want %s", i, fmtStage(g), fmtStage(w))
		}
	}
	if got.Pipeline != want.Pipeline {
		t.Errorf("pipeline: got %q, want %q", got.Pipeline, want.Pipeline)
	}
}

func fmtStage(s step.StageView) string {
	return fmt.Sprintf("%s %s gate %q verdict %v steps %#v", s.Name, s.Status, s.Gate, fmtBool(s.GatePassed), s.Steps)
}

// TestEnvRunViewFailedGate checks the verdict of a gate that failed and
// that a stage without a gate expression reports none.
func TestEnvRunViewFailedGate(t *testing.T) {
	views := &viewKind{}
	f := newFixture(t, engine.WithKinds([]step.Kind{views.kind()}))
	p := f.pipeline(`name: demo
stages:
  - name: commit
    steps:
      - {name: a, run: 'true'}
  - name: build
    steps:
      - {name: unit, run: 'echo "coverage=79.9" >> "$GANTRY_OUTPUT"', outputs: [coverage]}
    gate: steps.unit.outputs.coverage >= 80
  - name: evidence
    when: 'stages.build.status == "failed"'
    steps:
      - {name: report, uses: view}
`)
	f.run(context.Background(), p, engine.Request{})
	if len(views.seen) != 1 {
		t.Fatalf("view steps ran %d times, want 1", len(views.seen))
	}
	stages := views.seen[0].Stages
	if got, want := len(stages), 3; got != want {
		t.Fatalf("stages: got %d, want %d", got, want)
	}
	tests := []struct {
		stage      step.StageView
		name       string
		status     string
		gate       string
		gatePassed *bool
	}{
		{stages[0], "commit", "passed", "", nil},
		{stages[1], "build", "failed", "steps.unit.outputs.coverage >= 80", new(false)},
		{stages[2], "evidence", "running", "", nil},
	}
	for _, tt := range tests {
		s := tt.stage
		if s.Name != tt.name || s.Status != tt.status || s.Gate != tt.gate || !reflect.DeepEqual(s.GatePassed, tt.gatePassed) {
			t.Errorf("stage: got %s %s gate %q verdict %v, want %s %s gate %q verdict %v",
				s.Name, s.Status, s.Gate, fmtBool(s.GatePassed), tt.name, tt.status, tt.gate, fmtBool(tt.gatePassed))
		}
	}
}

func fmtBool(b *bool) any {
	if b == nil {
		return "<nil>"
	}
	return *b
}
