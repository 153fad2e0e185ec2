package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-ci/gantry/internal/artifact"
	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/store"
)

// scriptProbe is a script kind that keeps the step.Script each run: step
// was built from, and sets it as outputs.
type scriptProbe struct {
	mu  sync.Mutex
	got map[string]step.Script // by step name
}

func (p *scriptProbe) kind() step.Kind {
	return step.Kind{
		Name:       "script-probe",
		AnyOutputs: true,
		New: func(in step.Inputs) (step.Step, error) {
			var sc step.Script
			if err := in.Decode(&sc); err != nil {
				return nil, err
			}
			return probeStep{p: p, sc: sc}, nil
		},
	}
}

type probeStep struct {
	p  *scriptProbe
	sc step.Script
}

func (s probeStep) Run(_ context.Context, env *step.Env) (*step.Result, error) {
	s.p.mu.Lock()
	s.p.got[env.Step] = s.sc
	s.p.mu.Unlock()
	return &step.Result{Outputs: map[string]any{"shell": s.sc.Shell}}, nil
}

// TestScriptKindSeam checks that run: steps are built by the script kind
// the engine was given, from the step's run:, shell: and inputs:.
func TestScriptKindSeam(t *testing.T) {
	probe := &scriptProbe{got: map[string]step.Script{}}
	f := newFixture(t, engine.WithScriptKind(probe.kind()))
	p := f.pipeline(`name: demo
stages:
  - name: build
    steps:
      - name: plain
        run: echo plain
      - {name: bool, run: 'true'}
      - name: full
        shell: bash
        inputs: ['**/*.go', go.sum]
        run: |
          echo "$${HOME}" true
          echo 12
`)
	res := f.run(context.Background(), p, engine.Request{})
	if res.Status != store.StatusPassed {
		t.Fatalf("run: got %s (%s), want passed", res.Status, res.Message)
	}
	want := map[string]step.Script{
		"plain": {Run: "echo plain"},
		"bool":  {Run: "true"},
		"full":  {Run: "echo \"${HOME}\" true\necho 12\n", Shell: "bash", Inputs: []string{"**/*.go", "go.sum"}},
	}
	if !reflect.DeepEqual(probe.got, want) {
		t.Errorf("script kind got\n%#v\nwant\n%#v", probe.got, want)
	}
	for id, s := range f.steps(res.RunID) {
		if got, want := s.Kind, "script-probe"; got != want {
			t.Errorf("step %s: recorded kind %q, want %q", id, got, want)
		}
	}
}

// TestNoScriptKind checks that an engine without a script kind refuses a
// pipeline with run: steps before recording a run, saying where.
func TestNoScriptKind(t *testing.T) {
	state := t.TempDir()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(state, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	arts, err := artifact.New(filepath.Join(state, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(st, arts, state)
	if err != nil {
		t.Fatal(err)
	}
	p, err := spec.Parse("pipeline.yaml", []byte(`name: demo
stages:
  - name: build
    steps:
      - name: hello
        run: echo hello
`), eng.Registry())
	if err != nil {
		t.Fatal(err)
	}
	_, err = eng.Run(ctx, p, engine.Request{Dir: t.TempDir(), Git: step.Git{Event: "push", Branch: "main"}})
	if !errors.Is(err, engine.ErrNoScriptKind) {
		t.Fatalf("Run: got error %v, want one wrapping ErrNoScriptKind", err)
	}
	if want := "pipeline.yaml:6:14"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say where (%s)", err, want)
	}
	runs, err := st.ListRuns(ctx, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 0 {
		t.Errorf("recorded %d runs, want none", len(runs))
	}
}

func TestWithScriptKindNeedsAConstructor(t *testing.T) {
	arts, err := artifact.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, k := range []step.Kind{{Name: "run"}, {New: (&scriptProbe{}).kind().New}} {
		if _, err := engine.New(st, arts, "", engine.WithScriptKind(k)); err == nil {
			t.Errorf("New with script kind %q (constructor %t): got no error", k.Name, k.New != nil)
		}
	}
}
