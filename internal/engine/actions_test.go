package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-ci/gantry/internal/artifact"
	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/store"
)

func TestStopEndsTheRun(t *testing.T) {
	f := newFixture(t)
	p := f.pipeline(`name: stops
stages:
  - name: a
    steps: [{name: fails, run: 'exit 3'}]
    on_failure: [{stop: true}]
  - name: b
    when: "true"
    steps: [{name: cleanup, run: 'touch ran-b'}]
  - name: c
    steps: [{name: never, run: 'touch ran-c'}]
`)
	res := f.run(context.Background(), p, engine.Request{})
	if res.Status != store.StatusFailed || !strings.Contains(res.Message, `stopped by stage "a"'s failure`) {
		t.Errorf("run: got %s %q, want failed, stopped by stage a", res.Status, res.Message)
	}
	for _, name := range []string{"ran-b", "ran-c"} {
		if _, err := os.Stat(filepath.Join(f.dir, name)); err == nil {
			t.Errorf("%s exists: a stage after the stop ran", name)
		}
	}
	stages, err := f.store.Stages(context.Background(), res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stages {
		if st.Name == "a" {
			continue
		}
		if st.Status != store.StatusSkipped || !strings.Contains(st.Message, "stopped by stage") {
			t.Errorf("stage %s: got %s %q, want skipped by the stop", st.Name, st.Status, st.Message)
		}
	}
}

// rollbacks records the environments rolled back.
type rollbacks struct {
	mu   sync.Mutex
	envs []string
}

func (r *rollbacks) Rollback(_ context.Context, env string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.envs = append(r.envs, env)
	return nil
}

func TestRollbackCallsTheRegisteredHandler(t *testing.T) {
	const yaml = `name: rb
stages:
  - name: deploy
    steps: [{name: smoke, run: 'exit 1'}]
    on_failure: [{rollback: staging}]
`
	plain := newFixture(t)
	if _, err := spec.Parse("pipeline.yaml", []byte(yaml), plain.eng.Registry()); err == nil ||
		!strings.Contains(err.Error(), `no rollback handler is registered for environment "staging"`) {
		t.Errorf("validation without a handler: error %v, want it to name the missing handler", err)
	}

	rb := &rollbacks{}
	f := newFixture(t, engine.WithRollbacker("staging", rb))
	res := f.run(context.Background(), f.pipeline(yaml), engine.Request{})
	if res.Status != store.StatusFailed {
		t.Errorf("run: got %s, want failed", res.Status)
	}
	if strings.Join(rb.envs, ",") != "staging" {
		t.Errorf("rollbacks: got %v, want [staging]", rb.envs)
	}
	arts, err := artifact.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.New(f.store, arts, "", engine.WithRollbacker("staging", rb), engine.WithRollbacker("staging", rb)); err == nil {
		t.Error("two handlers for one environment: no error")
	}
}
