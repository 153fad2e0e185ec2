package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/store"
)

// TestEnvValuesReadEachOther: env values that read other env values get
// them resolved, in dependency order, in the process environment and in
// with: blocks; a step's value overlays the pipeline's.
func TestEnvValuesReadEachOther(t *testing.T) {
	f := newFixture(t)
	p := f.pipeline(`name: demo
env:
  C: "${env.B}-c"
  B: "${env.A}-b"
  A: "a-${git.short_sha}"
  N: "7"
stages:
  - name: s
    steps:
      - name: a
        env: {D: "${env.C}-d", C: "${env.C}+", E: "${env.D}"}
        outputs: [seen]
        run: echo "seen=$A|$B|$C|$D|$E" >> "$GANTRY_OUTPUT"
      - {name: b, uses: count, env: {V: "${env.N}"}, with: {value: "${float(env.V)}"}}
`)
	res := f.run(context.Background(), p, engine.Request{})
	if res.Status != store.StatusPassed {
		t.Fatalf("status: got %s (%s), want passed; steps %v", res.Status, res.Message, f.steps(res.RunID))
	}
	steps := f.steps(res.RunID)
	want := "a-0123456789ab|a-0123456789ab-b|a-0123456789ab-b-c+|a-0123456789ab-b-c+-d|a-0123456789ab-b-c+-d"
	if got := steps["s/a"].Outputs["seen"]; got != want {
		t.Errorf("env seen by the script:\n  got  %q\n  want %q", got, want)
	}
	if got, want := steps["s/b"].Outputs["value"], float64(7); got != want {
		t.Errorf("with: value from a step env: got %v, want %v", got, want)
	}
}

// TestUnsetEnvFailsTheStep: an env name read with a computed key, which
// validation cannot check, fails the step when it is not set instead of
// becoming an empty string.
func TestUnsetEnvFailsTheStep(t *testing.T) {
	f := newFixture(t)
	p := f.pipeline(`name: demo
env: {WHICH: NOPE}
stages:
  - name: s
    steps:
      - {name: a, uses: count, with: {value: "${env[env.WHICH]}"}}
`)
	res := f.run(context.Background(), p, engine.Request{})
	if res.Status != store.StatusFailed {
		t.Fatalf("status: got %s, want failed", res.Status)
	}
	if got, want := f.steps(res.RunID)["s/a"].Message, "env.NOPE is not set"; !strings.Contains(got, want) {
		t.Errorf("message: got %q, want it to contain %q", got, want)
	}
}

// TestSecretsReachOnlyListingSteps: the engine itself hands a step's
// expressions only the secrets the step lists, even for a pipeline that
// skipped validation.
func TestSecretsReachOnlyListingSteps(t *testing.T) {
	const secret = "s3cret-value-42"
	t.Setenv("GANTRY_TEST_SCOPED", secret)
	f := newFixture(t)
	p := f.pipeline(`name: demo
secrets:
  TOKEN: {env: GANTRY_TEST_SCOPED}
stages:
  - name: s
    steps:
      - {name: lists, run: 'echo "len=$${#T}" >> "$GANTRY_OUTPUT"', secrets: [TOKEN], env: {T: "${secrets.TOKEN}"}, outputs: [len]}
      - {name: other, run: 'echo "len=$${#T}" >> "$GANTRY_OUTPUT"', env: {T: "placeholder"}, outputs: [len]}
`)
	p.Stages[0].Steps[1].Env["T"] = "${secrets.TOKEN}"
	res := f.run(context.Background(), p, engine.Request{})
	steps := f.steps(res.RunID)
	if got, want := steps["s/lists"].Outputs["len"], float64(len(secret)); got != want {
		t.Errorf("listing step: secret length got %v, want %v", got, want)
	}
	if got, want := steps["s/other"].Outputs["len"], float64(0); got != want {
		t.Errorf("unlisted step got a value of length %v, want %v", got, want)
	}
}
