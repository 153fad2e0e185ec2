package engine_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/store"
)

const varsPipeline = `name: vars
vars: {profile: full, region: eu}
stages:
  - name: build
    when: vars.profile != 'skip'
    steps:
      - name: show
        env: {PROFILE: "${vars.profile}", REGION: "${vars.region}"}
        run: 'echo "build profile=$PROFILE region=$REGION"'
  - name: prod
    approval: {required: true}
    steps:
      - name: deploy
        if: vars.profile == 'short'
        env: {PROFILE: "${vars.profile}"}
        run: 'echo "deploy profile=$PROFILE"'
`

// TestVarsOverrideAndResume: --var values reach env:, if: and when:, are
// recorded with the run's request, and a resumption uses them again.
func TestVarsOverrideAndResume(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.pipeline(varsPipeline)
	res := f.run(ctx, p, engine.Request{Vars: map[string]string{"profile": "short"}})
	if res.Status != store.StatusWaiting {
		t.Fatalf("run: got %s (%s), want waiting", res.Status, res.Message)
	}
	if got, want := f.allLogs(res.RunID), "build profile=short region=eu"; !strings.Contains(got, want) {
		t.Errorf("logs: got %q, want them to contain %q", got, want)
	}
	run, err := f.store.GetRun(ctx, res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"profile": "short"}; !maps.Equal(run.Request.Vars, want) {
		t.Errorf("recorded request vars: got %v, want %v", run.Request.Vars, want)
	}
	if _, err := f.eng.Decide(ctx, engine.DecideRequest{RunID: res.RunID, Approve: true,
		Who: engine.Identity{Name: "bob", Via: "test"}}); err != nil {
		t.Fatal(err)
	}
	again, err := f.eng.Resume(ctx, res.RunID, engine.ResumeRequest{})
	if err != nil || again.Status != store.StatusPassed {
		t.Fatalf("resume: %+v, %v; want passed", again, err)
	}
	if got := f.steps(res.RunID)["prod/deploy"].Status; got != store.StatusPassed {
		t.Errorf("prod/deploy: got %s, want passed (if: vars.profile == 'short' after the resumption)", got)
	}
	if got, want := f.allLogs(res.RunID), "deploy profile=short"; !strings.Contains(got, want) {
		t.Errorf("logs after the resumption: got %q, want them to contain %q", got, want)
	}
}

func TestVarsDefaultsAndUnknown(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.pipeline(varsPipeline)
	res := f.run(ctx, p, engine.Request{})
	if got, want := f.allLogs(res.RunID), "build profile=full region=eu"; !strings.Contains(got, want) {
		t.Errorf("logs: got %q, want them to contain %q", got, want)
	}
	before, err := f.store.ListRuns(ctx, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.eng.Run(ctx, p, engine.Request{Dir: f.dir, Vars: map[string]string{"profil": "short"}})
	var uv *spec.UnknownVarError
	if !errors.Is(err, spec.ErrUnknownVar) || !errors.As(err, &uv) || uv.Name != "profil" {
		t.Fatalf("Run with an unknown variable: got %v, want a *spec.UnknownVarError naming profil", err)
	}
	after, err := f.store.ListRuns(ctx, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("runs: got %d after the refused run, want %d (nothing recorded)", len(after), len(before))
	}
}
