package expression

import (
	"reflect"
	"testing"
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
	refs, err := Refs(`steps.unit.outputs.coverage >= 80 && stages["build-test"].passed`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range refs {
		got = append(got, r.String())
	}
	for _, want := range []string{"steps.unit.outputs.coverage", "stages.build-test.passed", "steps", "stages"} {
		found := false
		for _, g := range got {
			if g == want {
				found = true
			}
		}
		if !found {
			t.Errorf("refs %v lack %q", got, want)
		}
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
