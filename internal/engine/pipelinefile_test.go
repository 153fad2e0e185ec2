package engine_test

import (
	"context"
	"testing"

	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/store"
)

// TestStepSeesPipelineFile: a step gets the path and bytes of the file
// the run runs (the deploy kind reads its environment from them).
func TestStepSeesPipelineFile(t *testing.T) {
	var file string
	var source []byte
	kind := step.Kind{Name: "file", New: func(step.Inputs) (step.Step, error) {
		return stepFunc(func(_ context.Context, env *step.Env) (*step.Result, error) {
			file, source = env.PipelineFile, env.PipelineSource
			return &step.Result{}, nil
		}), nil
	}}
	f := newFixture(t, engine.WithKinds([]step.Kind{kind}))
	src := "name: demo\nstages:\n  - name: s\n    steps: [{name: a, uses: file}]\n"
	res := f.run(context.Background(), f.pipeline(src), engine.Request{})
	if res.Status != store.StatusPassed {
		t.Fatalf("run: got %s, want passed", res.Status)
	}
	if file != "pipeline.yaml" || string(source) != src {
		t.Errorf("got %q with %q, want pipeline.yaml with the file's bytes", file, source)
	}
}
