package spec

import (
	"errors"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/yamlx"
)

// parseErrors parses y and returns every error message, one per problem.
func parseErrors(t *testing.T, y string) []string {
	t.Helper()
	_, err := Parse("p.yaml", []byte(y), testRegistry())
	if err == nil {
		return nil
	}
	var out []string
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			out = append(out, e.Error())
		}
	} else {
		out = append(out, err.Error())
	}
	for _, e := range out {
		if !strings.HasPrefix(e, "p.yaml:") || strings.HasPrefix(e, "p.yaml:0:0") {
			t.Errorf("error without a position: %s", e)
		}
	}
	return out
}

// wantErrors checks that y fails with exactly len(want) errors, each
// containing its want string, in order.
func wantErrors(t *testing.T, y string, want ...string) {
	t.Helper()
	got := parseErrors(t, y)
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n  got  %q\n  want %q", len(got), len(want), got, want)
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("error %d:\n  got  %s\n  want it to contain %q", i, got[i], want[i])
		}
	}
}

func wantNoErrors(t *testing.T, y string) {
	t.Helper()
	if got := parseErrors(t, y); len(got) > 0 {
		t.Errorf("Parse failed, want success:\n%s", strings.Join(got, "\n"))
	}
}

func TestRunRefusesExpressions(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{
			"branch in a flow script",
			"name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, run: 'echo ${git.branch}'}\n",
			[]string{`p.yaml:5:30: ${git.branch} in run: would paste a pipeline value into shell code; pass it through env: instead: env: {BRANCH: "${git.branch}"} and write "$BRANCH" in the script`},
		},
		{
			"every expression of a block script at its own line",
			"name: x\nstages:\n  - name: s\n    steps:\n      - name: a\n        run: |\n          echo start\n          echo ${branch} $${HOME}\n            git log ${base}..HEAD\n",
			[]string{
				`p.yaml:8:16: ${branch} in run:`,
				`p.yaml:9:21: ${base} in run:`,
			},
		},
		{
			"a step output",
			"name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, uses: echo}\n      - {name: b, needs: [a], run: \"deploy ${steps.a.outputs.value}\"}\n",
			[]string{`p.yaml:6:44: ${steps.a.outputs.value} in run: would paste a pipeline value into shell code; pass it through env: instead: env: {VALUE: "${steps.a.outputs.value}"}`},
		},
		{
			"shell parameter expansion is refused too",
			"name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, run: 'echo ${#HOME}'}\n",
			[]string{`p.yaml:5:30: ${#HOME} in run:`},
		},
		{
			"shell is not a template",
			"name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, run: x, shell: '${branch}'}\n",
			[]string{`p.yaml:5:34: shell: is a program name, not a template`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantErrors(t, tt.yaml, tt.want...) })
	}
}

func TestRunAcceptsEnvForm(t *testing.T) {
	wantNoErrors(t, `name: x
stages:
  - name: s
    steps:
      - name: a
        env: {BRANCH: "${git.branch}"}
        run: |
          echo "$BRANCH" "$${HOME}" "$$"
`)
}

// TestErrorsCarryPositions guards the helper above: every error it returns
// is a *yamlx.Error.
func TestErrorsCarryPositions(t *testing.T) {
	_, err := Parse("p.yaml", []byte("name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, run: 'echo ${git.branch}'}\n"), testRegistry())
	var ye *yamlx.Error
	if !errors.As(err, &ye) || ye.Line != 5 {
		t.Errorf("got %v, want a *yamlx.Error at line 5", err)
	}
}

const secretsHead = `name: x
secrets:
  TOKEN: {env: T}
  OTHER: {env: O}
notify:
  slack: {webhook: "${secrets.TOKEN}"}
`

func TestSecretScope(t *testing.T) {
	refused := []struct {
		name, yaml, want string
	}{
		{"with of a step that does not list it",
			"stages:\n  - name: s\n    steps:\n      - {name: a, uses: echo, with: {message: '${secrets.TOKEN}'}}\n",
			`p.yaml:10:47: step "a" reads secrets.TOKEN but does not list it; add secrets: [TOKEN] to the step`},
		{"with of a step that lists another secret",
			"stages:\n  - name: s\n    steps:\n      - {name: a, uses: echo, secrets: [OTHER], with: {message: '${secrets.TOKEN}'}}\n",
			`step "a" reads secrets.TOKEN but does not list it`},
		{"env of a step that does not list it",
			"stages:\n  - name: s\n    steps:\n      - {name: a, run: x, env: {T: '${secrets.TOKEN}'}}\n",
			`p.yaml:10:36: step "a" reads secrets.TOKEN but does not list it`},
		{"pipeline env",
			"env: {T: '${secrets.TOKEN}'}\nstages:\n  - name: s\n    steps: [{name: a, run: x, secrets: [TOKEN]}]\n",
			`p.yaml:7:10: the pipeline's env reaches every step and may not read secrets.TOKEN`},
		{"if",
			"stages:\n  - name: s\n    steps:\n      - {name: a, run: x, secrets: [TOKEN], if: 'secrets.TOKEN != \"\"'}\n",
			`p.yaml:10:49: if: may not read secrets.TOKEN`},
		{"when",
			"stages:\n  - name: s\n    when: secrets.TOKEN startsWith \"x\"\n    steps: [{name: a, run: x}]\n",
			`p.yaml:9:11: when: may not read secrets.TOKEN`},
		{"gate",
			"stages:\n  - name: s\n    steps: [{name: a, run: x, secrets: [TOKEN]}]\n    gate: len(secrets.TOKEN) > 3\n",
			`p.yaml:10:11: gate: may not read secrets.TOKEN`},
		{"computed name",
			"stages:\n  - name: s\n    steps:\n      - {name: a, uses: echo, secrets: [TOKEN], with: {message: '${secrets[\"TO\" + \"KEN\"]}'}}\n",
			`read a secret by its name (secrets.NAME)`},
		{"the whole map",
			"stages:\n  - name: s\n    steps:\n      - {name: a, uses: echo, secrets: [TOKEN], with: {message: '${toJSON(secrets)}'}}\n",
			`read a secret by its name (secrets.NAME)`},
		{"through $env",
			"stages:\n  - name: s\n    steps:\n      - {name: a, uses: echo, with: {message: '${$env.secrets.TOKEN}'}}\n",
			`unknown name "$env"`},
		{"commit status link",
			"commit_status: {repository: o/r, token: TOKEN, target_url: 'https://ci/${secrets.OTHER}'}\nstages:\n  - name: s\n    steps: [{name: a, run: x}]\n",
			`commit_status.target_url is posted to the forge in clear and may not read secrets.OTHER`},
	}
	for _, tt := range refused {
		t.Run("refused/"+tt.name, func(t *testing.T) { wantErrors(t, secretsHead+tt.yaml, tt.want) })
	}
	allowed := []struct{ name, yaml string }{
		{"notify webhook", "stages:\n  - name: s\n    steps: [{name: a, run: x}]\n    on_failure: [{notify: slack}]\n"},
		{"with of a step that lists it", "stages:\n  - name: s\n    steps:\n      - {name: a, uses: echo, secrets: [TOKEN], with: {message: '${secrets.TOKEN}'}}\n"},
		{"env of a step that lists it", "stages:\n  - name: s\n    steps:\n      - {name: a, run: 'echo \"$T\"', secrets: [TOKEN], env: {T: 'Bearer ${secrets.TOKEN}'}}\n"},
		{"commit status token and run id", "commit_status: {repository: o/r, token: TOKEN, target_url: 'https://ci/runs/${run.id}'}\nstages:\n  - name: s\n    steps: [{name: a, run: x}]\n"},
	}
	for _, tt := range allowed {
		t.Run("allowed/"+tt.name, func(t *testing.T) { wantNoErrors(t, secretsHead+tt.yaml) })
	}
}

func TestGlobFunction(t *testing.T) {
	wantNoErrors(t, `name: x
stages:
  - name: s
    when: glob(branch, "release/**") || glob(git.branch, "main")
    steps:
      - {name: a, run: x, if: 'glob(base, "feature/*")'}
`)
	wantErrors(t, "name: x\nstages:\n  - name: s\n    when: glob(brnch, \"main\")\n    steps: [{name: a, run: x}]\n",
		`p.yaml:4:11: unknown name "brnch"`)
}

// TestReferenceErrorsOnce: a bad reference is one error, not one per
// prefix of its path.
func TestReferenceErrorsOnce(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"missing step in a gate", "name: x\nstages:\n  - name: s\n    steps: [{name: a, run: x}]\n    gate: steps.nope.outputs.coverage >= 80\n",
			`p.yaml:5:11: stage "s" has no step "nope"`},
		{"missing stage", "name: x\nstages:\n  - name: s\n    when: stages.nope.passed\n    steps: [{name: a, run: x}]\n",
			`p.yaml:4:11: there is no stage "nope"`},
		{"missing output in with", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, uses: echo}\n      - {name: b, uses: echo, needs: [a], with: {message: '${steps.a.outputs.nope}'}}\n",
			`step "a" (echo) has no output "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantErrors(t, tt.yaml, tt.want) })
	}
}

func TestEnvReferences(t *testing.T) {
	refused := []struct{ name, yaml, want string }{
		{"unset name in a with", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, uses: echo, with: {message: '${env.NOPE}'}}\n",
			`p.yaml:5:47: env.NOPE is not set (neither the pipeline's env nor step "a"'s has NOPE)`},
		{"unset name in a when", "name: x\nenv: {A: x}\nstages:\n  - name: s\n    when: env.NOPE == \"x\"\n    steps: [{name: a, run: x}]\n",
			`p.yaml:5:11: env.NOPE is not set (the pipeline's env has no NOPE)`},
		{"a step's env is not the pipeline's", "name: x\nstages:\n  - name: s\n    when: env.A == \"x\"\n    steps: [{name: a, run: x, env: {A: x}}]\n",
			`env.A is not set (the pipeline's env has no A)`},
		{"pipeline value reading itself", "name: x\nenv:\n  A: \"${env.A}-x\"\nstages:\n  - name: s\n    steps: [{name: a, run: x}]\n",
			`p.yaml:3:6: env.A reads itself`},
		{"cycle in the pipeline env", "name: x\nenv:\n  A: \"${env.B}\"\n  B: \"${env.C}\"\n  C: \"${env.A}\"\nstages:\n  - name: s\n    steps: [{name: a, run: x}]\n",
			`p.yaml:3:6: env values read each other in a cycle: A -> B -> C -> A (A at 3:6, B at 4:6, C at 5:6)`},
		{"cycle in a step env", "name: x\nstages:\n  - name: s\n    steps:\n      - name: a\n        run: x\n        env: {A: \"${env.B}\", B: \"${env.A}\"}\n",
			`p.yaml:7:18: env values read each other in a cycle: A -> B -> A (A at 7:18, B at 7:33)`},
		{"step value reading itself without a pipeline value", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, run: x, env: {P: '${env.P}:/bin'}}\n",
			`env.P reads itself, and the pipeline's env has no P`},
	}
	for _, tt := range refused {
		t.Run("refused/"+tt.name, func(t *testing.T) { wantErrors(t, tt.yaml, tt.want) })
	}
	allowed := []struct{ name, yaml string }{
		{"pipeline values in order", "name: x\nenv: {A: x, B: \"${env.A}-y\", C: \"${env.B}-z\"}\nstages:\n  - name: s\n    when: env.C == \"x-y-z\"\n    steps: [{name: a, run: x}]\n"},
		{"step values over the pipeline's", "name: x\nenv: {P: /bin}\nstages:\n  - name: s\n    steps:\n      - {name: a, uses: echo, env: {P: '/opt:${env.P}', Q: '${env.P}'}, with: {message: '${env.Q}'}}\n"},
		{"optional read of an unset name in an if", "name: x\nstages:\n  - name: s\n    steps: [{name: a, run: x, if: 'env?.NOPE == nil'}]\n"},
		{"optional read with a default in an env value", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, run: x, env: {X: '${env?.NOPE ?? \"d\"}', Y: '${env?.NOPE}'}}\n"},
		{"computed names are checked when run", "name: x\nenv: {K: A, A: x}\nstages:\n  - name: s\n    steps:\n      - {name: a, uses: echo, with: {message: '${env[env.K]}'}}\n"},
	}
	for _, tt := range allowed {
		t.Run("allowed/"+tt.name, func(t *testing.T) { wantNoErrors(t, tt.yaml) })
	}
}

func TestFileLevelErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"jobs zero", "name: x\njobs: 0\nstages:\n  - name: s\n    steps: [{name: a, run: x}]\n",
			[]string{`p.yaml:2:7: jobs must be at least 1`}},
		{"jobs negative", "name: x\njobs: -2\nstages:\n  - name: s\n    steps: [{name: a, run: x}]\n",
			[]string{`p.yaml:2:7: jobs must be at least 1`}},
		{"null step", "name: x\nstages:\n  - name: s\n    steps: [~]\n",
			[]string{`p.yaml:4:13: expected a mapping, got null`}},
		{"empty step", "name: x\nstages:\n  - name: s\n    steps:\n      -\n      - {name: a, run: x}\n",
			[]string{`p.yaml:5:8: expected a mapping, got null`}},
		{"null stage", "name: x\nstages:\n  - ~\n",
			[]string{`p.yaml:3:5: expected a mapping, got null`}},
		{"second document", "name: x\nstages:\n  - name: s\n    steps: [{name: a, run: x}]\n---\nname: y\n",
			[]string{`p.yaml:5:1: a second YAML document starts here`}},
		{"every type error", "name: x\njobs: many\nstages:\n  - name: s\n    steps:\n      - {name: a, run: x, retries: lots, timeout: soon}\n      - {name: b, run: x, needs: a}\n",
			[]string{
				`p.yaml:2:7: expected an integer, got "many"`,
				`p.yaml:6:36: expected an integer, got "lots"`,
				`p.yaml:6:51: invalid duration "soon"`,
				`p.yaml:7:34: expected a list, got the string "a"`,
			}},
		{"syntax error column", "name: x\nstages:\n  - name: s\n    steps: [{name: a, run: echo: x}]\n",
			[]string{`p.yaml:4:32: did not find expected ',' or '}'`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantErrors(t, tt.yaml, tt.want...) })
	}
	wantNoErrors(t, "name: x\njobs: 1\nstages:\n  - name: s\n    steps: [{name: a, run: x}]\n")
}

func TestEveryInputError(t *testing.T) {
	wantErrors(t, "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, uses: echo, with: {mesage: hi, count: lots}}\n",
		`p.yaml:5:38: unknown field "mesage"`,
		`p.yaml:5:57: expected an integer, got "lots"`)
}

func TestConstantExpressionErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"division by zero in with", "name: x\nstages:\n  - name: s\n    steps:\n      - {name: a, uses: echo, with: {count: '${10 / 0}'}}\n",
			`p.yaml:5:45: evaluate "10 / 0": arithmetic error: 10 / 0: division by zero`},
		{"overflow in a gate", "name: x\nstages:\n  - name: s\n    steps: [{name: a, run: x}]\n    gate: 9223372036854775807 + 1 > 0\n",
			`p.yaml:5:11: evaluate "9223372036854775807 + 1 > 0": arithmetic error: 9223372036854775807 + 1 overflows a 64-bit integer`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantErrors(t, tt.yaml, tt.want) })
	}
}

// TestPlacesOfFileProblems: problems found in mappings written as null or
// through aliases are reported at their place, once.
func TestPlacesOfFileProblems(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"null secret source", "name: x\nsecrets:\n  A: {env: A}\n  OTHER: ~\nstages:\n  - name: s\n    steps: [{name: a, run: x}]\n",
			`p.yaml:4:10: secret "OTHER" needs exactly one of env or file`},
		{"bad stage used through an alias three times", "name: x\nbad: &b [1]\nstages: [*b, *b, *b]\n",
			`p.yaml:2:6: expected a mapping, got a list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseErrors(t, tt.yaml)
			n := 0
			for _, g := range got {
				if strings.Contains(g, tt.want) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("got %q, want exactly one error containing %q", got, tt.want)
			}
		})
	}
}
