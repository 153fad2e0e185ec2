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
