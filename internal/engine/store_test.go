package engine_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/gantry-ci/gantry/internal/artifact"
	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/shell"
	"github.com/gantry-ci/gantry/internal/store"
)

// plainStore is a store.Store seen only through engine.Store: it lacks
// the optional ability to track process groups.
type plainStore struct{ engine.Store }

// TestStoreWithoutProcessTracking runs a pipeline on a Store that does
// not track process groups: the engine records the run all the same.
func TestStoreWithoutProcessTracking(t *testing.T) {
	ctx := context.Background()
	state := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(state, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	arts, err := artifact.New(filepath.Join(state, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(plainStore{st}, arts, state, engine.WithScriptKind(shell.Kind))
	if err != nil {
		t.Fatal(err)
	}
	p, err := spec.Parse("pipeline.yaml", []byte(`name: demo
stages:
  - name: build
    steps:
      - {name: hello, run: 'echo hello; echo greeting=hi >> "$GANTRY_OUTPUT"'}
`), eng.Registry())
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.Run(ctx, p, engine.Request{Dir: t.TempDir(), Git: step.Git{Event: "push", Branch: "main"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != store.StatusPassed {
		t.Fatalf("run: got %s (%s), want passed", res.Status, res.Message)
	}
	steps, err := st.Steps(ctx, res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 1 || steps[0].Outputs["greeting"] != "hi" {
		t.Errorf("recorded steps: got %+v, want hello with output greeting=hi", steps)
	}
	lines, err := st.Logs(ctx, res.RunID, "build", "hello", 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range lines {
		found = found || l.Text == "hello"
	}
	if !found {
		t.Errorf("stored log %+v lacks the line hello", lines)
	}
}
