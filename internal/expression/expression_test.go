package expression

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var env = map[string]any{
	"branch": "main",
	"event":  "push",
	"steps": map[string]any{
		"unit": map[string]any{"status": "passed", "outputs": map[string]any{"coverage": 81.5}},
	},
	"stages": map[string]any{
		"build-test": map[string]any{"passed": true},
	},
	"git": map[string]any{"sha": "abc123"},
}

func TestEvalBool(t *testing.T) {
	tests := []struct {
		src  string
		want bool
	}{
		{`branch == "main"`, true},
		{`steps.unit.outputs.coverage >= 80`, true},
		{`steps.unit.outputs.coverage >= 81.6`, false},
		{`stages["build-test"].passed && event == "push"`, true},
		{`glob(branch, "ma*")`, true},
		{`glob("release/v1/x", "release/**")`, true},
		{`glob("release/v1/x", "release/*")`, false},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			p, err := Compile(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.EvalBool(env)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEvalBoolNotBool(t *testing.T) {
	p, err := Compile(`branch`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.EvalBool(env); err == nil {
		t.Error("a string result must be an error")
	}
}

func TestRefs(t *testing.T) {
	tests := []struct {
		src  string
		want []string
	}{
		{`steps.unit.outputs.coverage >= 80 && stages["build-test"].passed`, []string{"steps.unit.outputs.coverage", "stages.build-test.passed"}},
		{`steps.a.status == "passed" || steps.a.status == "failed"`, []string{"steps.a.status"}},
		{`glob(branch, "release/*")`, []string{"branch"}},
		{`secrets[env.NAME] != ""`, []string{"secrets", "env.NAME"}},
		{`len(keys(secrets)) > 0`, []string{"secrets"}},
		{`$env.secrets.X`, []string{"$env.secrets.X"}},
		{`steps.a.outputs[0]`, []string{"steps.a.outputs.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			refs, err := Refs(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range refs {
				got = append(got, r.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTemplate(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{"plain", "plain"},
		{"sha-${git.sha}", "sha-abc123"},
		{"${steps.unit.outputs.coverage}", 81.5},
		{"cov ${steps.unit.outputs.coverage}%", "cov 81.5%"},
		{"literal $${x}", "literal ${x}"},
		{`${ {"a": 1}["a"] }`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			tpl, err := ParseTemplate(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tpl.Eval(env)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
	if _, err := ParseTemplate("${unclosed"); err == nil {
		t.Error("unterminated ${ must be an error")
	}
}

func FuzzTemplate(f *testing.F) {
	f.Add("a ${b} c")
	f.Add("${ {\"x\": '}'} }")
	f.Fuzz(func(t *testing.T, s string) {
		tpl, err := ParseTemplate(s)
		if err != nil {
			return
		}
		_, _ = tpl.Eval(env)
	})
}

func TestArithmeticErrors(t *testing.T) {
	tests := []struct {
		src  string
		want string // "" means no error
		val  any
	}{
		{"10 / 0", "division by zero", nil},
		{"10.0 / 0", "division by zero", nil},
		{"10 % 0", "modulo by zero", nil},
		{"9223372036854775807 + 1", "overflows a 64-bit integer", nil},
		{"-9223372036854775807 - 2", "overflows a 64-bit integer", nil},
		{"4611686018427387904 * 2", "overflows a 64-bit integer", nil},
		{"2 ** 2000", "out of range", nil},
		{"9223372036854775806 + 1", "", 9223372036854775807},
		{"7 / 2", "", 3.5},
		{"7 % 3", "", 1},
		{`"a" + "b"`, "", "ab"},
		{"steps.unit.outputs.coverage * 2", "", 163.0},
		{"duration(\"1m\") + duration(\"30s\")", "", 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			p, err := Compile(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Eval(env)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Eval: %v", err)
				}
				if !reflect.DeepEqual(got, tt.val) {
					t.Errorf("got %#v, want %#v", got, tt.val)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, %v; want an error containing %q", got, err, tt.want)
			}
			if !errors.Is(err, ErrArithmetic) {
				t.Errorf("error %v does not wrap ErrArithmetic", err)
			}
		})
	}
}

func TestEnvReads(t *testing.T) {
	e := map[string]any{"env": map[string]any{"A": "x", "K": "A"}}
	tests := []struct {
		src, want, unset string
	}{
		{"${env.A}", "x", ""},
		{`${env["A"]}`, "x", ""},
		{"${env[env.K]}", "x", ""},
		{"${env?.NOPE}", "", ""},
		{"${env.NOPE}", "", "NOPE"},
		{"a-${env.NOPE}-b", "", "NOPE"},
		{`${env["NO" + "PE"]}`, "", "NOPE"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			tpl, err := ParseTemplate(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tpl.EvalString(e)
			var ue *UnsetError
			if tt.unset != "" {
				if !errors.As(err, &ue) || ue.Name != tt.unset {
					t.Fatalf("got %q, %v; want an UnsetError for %s", got, err, tt.unset)
				}
				if want := "env." + tt.unset + " is not set"; !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestGlobArguments(t *testing.T) {
	for _, src := range []string{`glob(branch)`, `glob(branch, "a", "b")`, `glob(1, "x")`} {
		if _, err := Compile(src); err == nil {
			t.Errorf("Compile(%q) succeeded, want an error", src)
		}
	}
	p, err := Compile(`glob(steps.unit.outputs.coverage, "8*")`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Eval(env); err == nil {
		t.Error("glob of a number must be an error when run")
	}
}

func TestOptionalRefs(t *testing.T) {
	tests := []struct {
		src  string
		want []string
	}{
		{`env?.NOPE == nil`, []string{"env.NOPE"}},
		{`env?.NOPE ?? "d"`, []string{"env.NOPE"}},
		{`env.A == env?.B`, []string{"env.B"}},
		{`env.A == "x"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			refs, err := OptionalRefs(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range refs {
				got = append(got, r.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	tpl, err := ParseTemplate(`${env?.NOPE}|${env?.NOPE ?? "d"}`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tpl.EvalString(map[string]any{"env": map[string]any{}})
	if err != nil || got != "|d" {
		t.Errorf("optional reads of an unset name: got %q, %v; want \"|d\"", got, err)
	}
	if _, err := mustTemplate(t, `${env.NOPE}`).EvalString(map[string]any{"env": map[string]any{}}); err == nil {
		t.Error("env.NOPE of an unset name gave no error")
	}
}

func mustTemplate(t *testing.T, s string) *Template {
	t.Helper()
	tpl, err := ParseTemplate(s)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}
