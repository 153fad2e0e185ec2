package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/store"
)

// restoreKind is a failure-action kind that reads an earlier step's
// output, as infra-rollback reads infra-snapshot's.
var restoreKind = step.Kind{
	Name:    "restore",
	Outputs: []string{"restored"},
	New: func(in step.Inputs) (step.Step, error) {
		var c struct {
			From string `yaml:"from"`
			Fail bool   `yaml:"fail"`
		}
		if err := in.Decode(&c); err != nil {
			return nil, err
		}
		if c.From == "" {
			return nil, in.Errorf("from", "from is required")
		}
		return stepFunc(func(ctx context.Context, env *step.Env) (*step.Result, error) {
			out, where, ok := env.OutputsOf(c.From)
			if !ok {
				return nil, fmt.Errorf("%s has no outputs", where)
			}
			fmt.Fprintf(env.Stdout, "restoring %v in %s/%s with TOKEN=%s\n", out["v"], env.Stage, env.Step, lookup(env.Vars, "TOKEN"))
			if c.Fail {
				return &step.Result{Summary: "half done"}, errors.New("restore failed")
			}
			return &step.Result{Outputs: map[string]any{"restored": out["v"]}, Summary: fmt.Sprintf("restored %v", out["v"])}, nil
		}), nil
	},
}

func lookup(vars []string, key string) string {
	for _, kv := range vars {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func TestFailureActionUsesAKind(t *testing.T) {
	tests := []struct {
		name     string
		with     string
		wantOK   bool
		wantLogs []string
		wantData map[string]any
	}{
		{"passes", "{from: snap}", true,
			[]string{"on_failure: uses restore", "restoring v1 in deploy/on_failure-1-restore with TOKEN=t0k", "restored v1"},
			map[string]any{"summary": "restored v1", "outputs": map[string]any{"restored": "v1"}}},
		{"fails", "{from: snap, fail: true}", false,
			[]string{"on_failure: uses restore", "restoring v1 in deploy/on_failure-1-restore with TOKEN=t0k", "error: restore failed"},
			map[string]any{"summary": "half done", "error": "restore failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, engine.WithKinds([]step.Kind{restoreKind}))
			p := f.pipeline(`name: fa
env: {TOKEN: t0k}
stages:
  - name: deploy
    steps:
      - {name: snap, run: 'echo v=v1 >> "$GANTRY_OUTPUT"', outputs: [v]}
      - {name: apply, run: 'exit 1', needs: [snap]}
    on_failure:
      - uses: restore
        with: ` + tt.with + `
      - {stop: true}
`)
			ctx := context.Background()
			res := f.run(ctx, p, engine.Request{})
			if res.Status != store.StatusFailed {
				t.Fatalf("run: got %s, want failed", res.Status)
			}
			lines, err := f.store.Logs(ctx, res.RunID, "deploy", "on_failure-1-restore", 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range lines {
				got = append(got, l.Text)
			}
			if strings.Join(got, "\n") != strings.Join(tt.wantLogs, "\n") {
				t.Errorf("logs:\ngot  %q\nwant %q", got, tt.wantLogs)
			}
			events, err := f.store.Events(ctx, res.RunID)
			if err != nil {
				t.Fatal(err)
			}
			var actions []map[string]any
			for _, e := range events {
				if e.Type == "failure_action" {
					actions = append(actions, e.Data)
				}
			}
			if len(actions) != 2 || actions[0]["action"] != "uses restore" || actions[1]["action"] != "stop" {
				t.Fatalf("failure_action events = %v, want uses restore then stop", actions)
			}
			d := actions[0]
			if d["ok"] != tt.wantOK || d["step"] != "on_failure-1-restore" {
				t.Errorf("event = %v, want ok %v, step on_failure-1-restore", d, tt.wantOK)
			}
			for k, want := range tt.wantData {
				if fmt.Sprint(d[k]) != fmt.Sprint(want) {
					t.Errorf("event %s = %v, want %v", k, d[k], want)
				}
			}
		})
	}
}

func TestFailureActionUsesValidation(t *testing.T) {
	f := newFixture(t, engine.WithKinds([]step.Kind{restoreKind}))
	base := "name: v\nstages:\n  - name: s\n    steps: [{name: a, run: 'true'}]\n    on_failure:\n"
	tests := []struct{ name, action, want string }{
		{"unknown kind", "      - {uses: nope}\n", `pipeline.yaml:6:9: unknown step kind "nope" in on_failure`},
		{"kind refuses with", "      - {uses: restore, with: {}}\n", "from is required"},
		{"unknown input", "      - {uses: restore, with: {from: a, nope: 1}}\n", "nope"},
		{"template", "      - uses: restore\n        with: {from: '${git.branch}'}\n", "pipeline.yaml:7:22: ${...} is not expanded"},
		{"with without uses", "      - {with: {from: a}}\n", "needs uses:"},
		{"two actions in one", "      - {uses: restore, with: {from: a}, stop: true}\n", "exactly one of notify, rollback, stop or uses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := spec.Parse("pipeline.yaml", []byte(base+tt.action), f.eng.Registry())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error = %v, want it to say %q", err, tt.want)
			}
		})
	}
	if _, err := spec.Parse("pipeline.yaml", []byte(base+"      - {uses: restore, with: {from: a}}\n"), f.eng.Registry()); err != nil {
		t.Errorf("valid uses action: %v", err)
	}
}
