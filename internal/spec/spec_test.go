package spec

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/yamlx"
	"github.com/gantry-ci/gantry/schema"
)

type echoConfig struct {
	Message string `yaml:"message"`
	Count   int    `yaml:"count"`
}

type echoStep struct{ cfg echoConfig }

func (e *echoStep) Run(context.Context, *step.Env) (*step.Result, error) {
	return &step.Result{Outputs: map[string]any{"value": e.cfg.Message}}, nil
}

func testRegistry() Registry {
	return NewRegistry([]step.Kind{{
		Name:    "echo",
		Outputs: []string{"value"},
		New: func(in step.Inputs) (step.Step, error) {
			var cfg echoConfig
			if err := in.Decode(&cfg); err != nil {
				return nil, err
			}
			if cfg.Count < 0 {
				return nil, in.Errorf("count", "count must not be negative")
			}
			return &echoStep{cfg: cfg}, nil
		},
	}}, []string{"postgres", "redis"})
}

const good = `name: demo
on:
  push: {branches: ["**"]}
  pull_request: {branches: [main]}
secrets:
  TOKEN: {env: DEMO_TOKEN}
notify:
  slack: {webhook: "${secrets.TOKEN}"}
stages:
  - name: first
    steps:
      - {name: a, uses: echo, with: {message: hi, count: 2}}
      - name: b
        run: echo "$VALUE" && echo "n=3" >> "$GANTRY_OUTPUT"
        env: {VALUE: "${steps.a.outputs.value}"}
        needs: [a]
        outputs: [n]
        secrets: [TOKEN]
        services: [postgres]
        timeout: 5m
        retries: 1
    gate: steps.b.outputs.n >= 3
    on_failure: [{notify: slack}]
  - name: second
    when: branch == "main" && stages.first.passed
    approval: {required: true, roles: [oncall-lead]}
    steps:
      - {name: c, uses: echo, with: {message: "${stages.first.steps.a.outputs.value}"}}
`

func TestParseGood(t *testing.T) {
	p, err := Parse("pipeline.yaml", []byte(good), testRegistry())
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := len(p.Stages), 2; got != want {
		t.Fatalf("stages: got %d, want %d", got, want)
	}
	b := p.Stages[0].Steps[1]
	if got, want := b.NeedNames(), []string{"a"}; !reflect.DeepEqual(got, want) {
		t.Errorf("needs: got %v, want %v", got, want)
	}
	if got, want := b.Timeout.String(), "5m0s"; got != want {
		t.Errorf("timeout: got %s, want %s", got, want)
	}
	if got, want := p.Stages[0].Gate.Exprs[0].Value, "steps.b.outputs.n >= 3"; got != want {
		t.Errorf("gate: got %q, want %q", got, want)
	}
	if got, want := p.Stages[1].Approval.Roles, []string{"oncall-lead"}; !reflect.DeepEqual(got, want) {
		t.Errorf("approval roles: got %v, want %v", got, want)
	}
}

// TestParseAfter checks that after: orders steps without requiring them to
// pass, and that a step may read the steps it runs after.
func TestParseAfter(t *testing.T) {
	y := `name: x
stages:
  - name: s
    steps:
      - {name: scan, uses: echo}
      - {name: lint, run: x}
      - {name: sign, run: 'echo "$STATUS"', env: {STATUS: '${steps.scan.status} ${steps.scan.outputs.value}'}, after: [scan, lint]}
`
	p, err := Parse("pipeline.yaml", []byte(y), testRegistry())
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	sign := p.Stages[0].Steps[2]
	var got []string
	for _, a := range sign.After {
		got = append(got, a.Value)
	}
	if want := []string{"scan", "lint"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after: got %v, want %v", got, want)
	}
	if got, want := sign.After[1].Pos.Line, 7; got != want {
		t.Errorf("after position line: got %d, want %d", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       string // must appear in the error, with its position
	}{
		{"unknown top-level field", "name: x\nstagez: []\n", "pipeline.yaml:2:1: unknown field \"stagez\""},
		{"unknown step field", "name: x\nstages:\n  - name: s\n    steps:\n      - name: a\n        uses: echo\n        wth: {}\n", "pipeline.yaml:7:9: unknown field \"wth\""},
		{"wrong type", "name: x\njobs: many\nstages: []\n", "pipeline.yaml:2:7: expected an integer, got \"many\""},
		{"wrong type in list", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, run: x, retries: [1]}\n", "pipeline.yaml:5:36: expected an integer, got a list"},
		{"bad duration", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, run: x, timeout: soon}\n", "pipeline.yaml:5:36: invalid duration \"soon\""},
		{"unknown kind", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, uses: nope}\n", "pipeline.yaml:5:25: unknown step kind \"nope\" (known: echo)"},
		{"unknown with field", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, uses: echo, with: {mesage: hi}}\n", "pipeline.yaml:5:38: unknown field \"mesage\""},
		{"with wrong type", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, uses: echo, with: {count: lots}}\n", "pipeline.yaml:5:45: expected an integer, got \"lots\""},
		{"kind validation", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, uses: echo, with: {count: -1}}\n", "pipeline.yaml:5:45: count must not be negative"},
		{"cycle", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, run: x, needs: [b]}\n      - {name: b, run: x, needs: [a]}\n", "pipeline.yaml:6:35: needs and after form a cycle in stage \"s\": a -> b -> a"},
		{"cycle through after", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, run: x, after: [c]}\n      - {name: b, run: x, needs: [a]}\n      - {name: c, run: x, after: [b]}\n", "needs and after form a cycle in stage \"s\": a -> c -> b -> a"},
		{"after itself", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, run: x, after: [a]}\n", "pipeline.yaml:5:35: step \"a\" runs after itself"},
		{"missing after", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, run: x, after: [zz]}\n", "pipeline.yaml:5:35: step \"a\" runs after \"zz\", which is not a step of stage \"s\""},
		{"after in another stage", "name: x\nstages:\n  - name: s\n    steps: [{name: a, run: x}]\n  - name: t\n    steps: [{name: b, run: x, after: [a]}]\n", "pipeline.yaml:6:39: step \"b\" runs after \"a\", which is not a step of stage \"t\""},
		{"needs and after", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, run: x}\n      - {name: b, run: x, needs: [a], after: [a]}\n", "pipeline.yaml:6:47: step \"b\" lists \"a\" in both needs and after"},
		{"missing need", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, run: x, needs: [zz]}\n", "pipeline.yaml:5:35: step \"a\" needs \"zz\", which is not a step of stage \"s\""},
		{"missing step in gate", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, uses: echo}\n    gate: steps.unit.outputs.coverage >= 80\n", "pipeline.yaml:6:11: stage \"s\" has no step \"unit\""},
		{"missing output", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: unit, uses: echo}\n    gate: steps.unit.outputs.coverage >= 80\n", "pipeline.yaml:6:11: step \"unit\" (echo) has no output \"coverage\" (it sets: value)"},
		{"undeclared run output", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, run: x}\n    gate: steps.a.outputs.n > 1\n", "step \"a\" declares no output \"n\""},
		{"later stage", "name: x\nstages:\n  - name: s\n    when: stages.t.passed\n    steps: [{name: a, run: x}]\n  - name: t\n    steps: [{name: a, run: x}]\n", "pipeline.yaml:4:11: stage \"t\" does not run before \"s\""},
		{"read without needs", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, uses: echo}\n      - {name: b, run: x, env: {V: '${steps.a.outputs.value}'}}\n", "step \"b\" reads step \"a\" but does not need it"},
		{"bad expression", "name: x\nstages:\n  - name: s\n    when: branch ==\n    steps: [{name: a, run: x}]\n", "pipeline.yaml:4:11: invalid expression"},
		{"unknown root", "name: x\nstages:\n  - name: s\n    when: brnch == \"main\"\n    steps: [{name: a, run: x}]\n", "unknown name \"brnch\""},
		{"undeclared secret", "name: x\nstages:\n  - name: s\n    steps: [{name: a, run: x, secrets: [NOPE]}]\n", "pipeline.yaml:4:41: secret \"NOPE\" is not declared"},
		{"unknown service", "name: x\nstages:\n  - name: s\n    steps: [{name: a, run: x, services: [mysql]}]\n", "unknown service \"mysql\" (known: postgres, redis)"},
		{"uses and run", "name: x\nstages:\n  - name: s\n    steps: [{name: a, uses: echo, run: x}]\n", "step \"a\" has both uses and run"},
		{"duplicate step", "name: x\nstages:\n  - name: s\n    steps: [{name: a, run: x}, {name: a, run: y}]\n", "step \"a\" is defined twice"},
		{"notify target", "name: x\nstages:\n  - name: s\n    steps: [{name: a, run: x}]\n    on_failure: [{notify: slack}]\n", "pipeline.yaml:5:18: notify target \"slack\" is not defined"},
		{"artifact escape", "name: x\nstages:\n  - name: s\n    steps: [{name: a, run: x, artifacts: [../etc/passwd]}]\n", "must stay inside the workspace"},
		{"syntax error", "name: x\nstages: [\n", "pipeline.yaml:2:9: did not find expected node content"},
		{"duplicate key", "name: x\nname: y\nstages: []\n", "pipeline.yaml:2:1:"},
		{"cancel_previous on pull requests", "name: x\non:\n  pull_request: {cancel_previous: false}\nstages: []\n", "pipeline.yaml:3:35: on.pull_request.cancel_previous: only push runs cancel"},
		{"cancel_previous not a bool", "name: x\non:\n  push: {cancel_previous: sometimes}\nstages: []\n", "pipeline.yaml:3:27: expected true or false"},
		{"concurrency zero", "name: x\non:\n  concurrency: 0\nstages: []\n", "pipeline.yaml:3:16: on.concurrency must be at least 1"},
		{"concurrency negative", "name: x\non:\n  concurrency: -2\nstages: []\n", "pipeline.yaml:3:16: on.concurrency must be at least 1"},
		{"concurrency not a number", "name: x\non:\n  concurrency: many\nstages: []\n", "pipeline.yaml:3:16:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("pipeline.yaml", []byte(tt.yaml), testRegistry())
			if err == nil {
				t.Fatalf("Parse succeeded, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n  got  %v\n  want it to contain %q", err, tt.want)
			}
			var ye *yamlx.Error
			if !errors.As(err, &ye) || ye.Line == 0 {
				t.Errorf("error %v carries no file:line:col", err)
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	y := "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, uses: nope}\n      - {name: b, run: x, needs: [zz]}\n"
	_, err := Parse("p.yaml", []byte(y), testRegistry())
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"p.yaml:5:25: unknown step kind", "p.yaml:6:35: step \"b\" needs \"zz\""} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestSchemaMatchesTypes keeps the published JSON Schema in step with the
// Go types: every field the decoder accepts is in the schema and back.
func TestSchemaMatchesTypes(t *testing.T) {
	var s map[string]any
	if err := json.Unmarshal(schema.Pipeline, &s); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	defs := s["$defs"].(map[string]any)
	props := func(m any) []string {
		var out []string
		for k := range m.(map[string]any)["properties"].(map[string]any) {
			out = append(out, k)
		}
		return sorted(out)
	}
	tests := []struct {
		name   string
		schema any
		typ    reflect.Type
	}{
		{"pipeline", s, reflect.TypeFor[Pipeline]()},
		{"stage", defs["stage"], reflect.TypeFor[Stage]()},
		{"step", defs["step"], reflect.TypeFor[Step]()},
		{"branchFilter", defs["branchFilter"], reflect.TypeFor[BranchFilter]()},
		{"on", s["properties"].(map[string]any)["on"], reflect.TypeFor[Triggers]()},
		{"approval", defs["stage"].(map[string]any)["properties"].(map[string]any)["approval"], reflect.TypeFor[Approval]()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := props(tt.schema), yamlFields(tt.typ); !reflect.DeepEqual(got, want) {
				t.Errorf("schema properties %v, Go fields %v", got, want)
			}
		})
	}
}

func yamlFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return sorted(out)
}

func sorted(xs []string) []string {
	out := append([]string(nil), xs...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("name: x\nstages: [{name: s, steps: [{name: a, run: x, needs: [a]}]}]\n"))
	f.Add([]byte("name: &a x\nstages: *a\n"))
	f.Add([]byte("stages:\n  - name: s\n    gate: [\"${\", 1]\n"))
	f.Add([]byte("name: p\nenvironments:\n  staging: {values: [a.yaml], set: {a.b: 1}, env: {X: \"${git.sha}\"}, prometheus: {url: \"http://p\"}}\n  prod:\nstages: [{name: s, steps: [{name: a, run: x}], on_failure: [{rollback: staging}]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data, testRegistry())
		if err == nil && p == nil {
			t.Fatal("nil pipeline without error")
		}
		if err != nil && err.Error() == "" {
			t.Fatal("empty error message")
		}
	})
}
