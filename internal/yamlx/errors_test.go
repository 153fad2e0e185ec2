package yamlx

import (
	"errors"
	"strings"
	"testing"
)

// errorList returns the messages of every *Error in err.
func errorList(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if err != nil {
			out = append(out, err.Error())
		}
	}
	walk(err)
	return out
}

func TestSyntaxErrorColumns(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"second mapping value on a line", "name: x\nlabel: a: b\n", "f.yaml:2:9: mapping values are not allowed in this context"},
		{"tab in indentation", "name: x\ninner:\n\tcount: 1\n", "f.yaml:3:1: found character that cannot start any token"},
		{"reserved character", "name: x\nlabel: @x\n", "f.yaml:2:8: found character that cannot start any token"},
		{"backtick", "name: `x`\n", "f.yaml:1:7: found character that cannot start any token"},
		{"bad escape", "name: x\nlabel: \"ab\\qc\"\n", "f.yaml:2:11: found unknown escape character"},
		{"unclosed flow list", "name: x\ntags: [a, b\nlabel: c\n", "f.yaml:2:7: did not find expected ',' or ']'"},
		{"unknown anchor", "name: x\nlabel: *nope\n", "f.yaml:2:8: unknown anchor 'nope' referenced"},
		{"indented key", "name: x\ninner:\n  count: 1\n    tags: [a]\n", "f.yaml:4:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o outer
			err := Decode("f.yaml", []byte(tt.src), &o)
			got := errorList(err)
			if len(got) != 1 || len(got[0]) < len(tt.want) || got[0][:len(tt.want)] != tt.want {
				t.Errorf("got %q, want one error starting with %q", got, tt.want)
			}
		})
	}
}

func TestSecondDocument(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"second document", "name: x\n---\nname: y\n", "f.yaml:2:1: a second YAML document starts here"},
		{"third document", "name: x\n---\n---\nlabel: z\n", "f.yaml:3:1: a second YAML document starts here"},
		{"syntax error in the second", "name: x\n---\nname: [\n", "f.yaml:3:7: did not find expected node content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o outer
			got := errorList(Decode("f.yaml", []byte(tt.src), &o))
			if len(got) != 1 || len(got[0]) < len(tt.want) || got[0][:len(tt.want)] != tt.want {
				t.Errorf("got %q, want one error starting with %q", got, tt.want)
			}
		})
	}
	for _, ok := range []string{"---\nname: x\n", "name: x\n...\n", "name: x\n---\n", "name: x\n---\n# the end\n"} {
		var o outer
		if err := Decode("f.yaml", []byte(ok), &o); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

func TestEveryDecodeError(t *testing.T) {
	src := "name: [a]\nratio: high\nnope: 1\ninner: {count: x, tags: {}}\nitems:\n  - {count: 1}\n  - ~\n  -\n"
	var o outer
	err := Decode("f.yaml", []byte(src), &o)
	want := []string{
		`f.yaml:1:7: expected a string, got a list`,
		`f.yaml:2:8: expected a number, got "high"`,
		`f.yaml:3:1: unknown field "nope"`,
		`f.yaml:4:16: expected an integer, got "x"`,
		`f.yaml:4:25: expected a list, got a mapping`,
		`f.yaml:7:5: expected a mapping, got null`,
		`f.yaml:8:4: expected a mapping, got null`,
	}
	got := errorList(err)
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n  got  %q\n  want %q", len(got), len(want), got, want)
	}
	for i := range want {
		if len(got[i]) < len(want[i]) || got[i][:len(want[i])] != want[i] {
			t.Errorf("error %d: got %q, want it to start with %q", i, got[i], want[i])
		}
	}
	var ye *Error
	if !errors.As(err, &ye) {
		t.Errorf("errors are not *Error: %v", err)
	}
}

func TestUnclosedQuote(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"double quote in a list item", "name: x\nitems:\n  - count: 2\n    tags: \"a\n  - count: 3\n    tags: [b]\n", "f.yaml:4:11: quoted string starting here is not closed"},
		{"single quote", "name: x\ninner:\n  count: 1\nlabel: 'abc\nratio: 2\n", "f.yaml:4:8: quoted string starting here is not closed"},
		{"closed later by another quote", "name: x\nitems:\n  - count: 2\n    tags: \"a\n    env: {k: \"v\"}\n", "f.yaml:4:11: quoted string starting here is not closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o outer
			got := errorList(Decode("f.yaml", []byte(tt.src), &o))
			if len(got) != 1 || !strings.HasPrefix(got[0], tt.want) {
				t.Errorf("got %q, want one error starting with %q", got, tt.want)
			}
		})
	}
}

func TestAliasErrorsOnce(t *testing.T) {
	src := "any: &a [1]\nitems: [*a, *a, *a]\n"
	var o outer
	got := errorList(Decode("f.yaml", []byte(src), &o))
	want := "f.yaml:1:6: expected a mapping, got a list"
	if len(got) != 1 || got[0] != want {
		t.Errorf("got %q, want exactly [%q]", got, want)
	}
}

func TestNullStructHasPosition(t *testing.T) {
	var v struct {
		M map[string]inner `yaml:"m"`
	}
	if err := Decode("f.yaml", []byte("m:\n  a: {count: 1}\n  b: ~\n"), &v); err != nil {
		t.Fatal(err)
	}
	if got, want := v.M["b"].Pos, (Pos{Line: 3, Column: 6}); got != want {
		t.Errorf("position of a null mapping: got %+v, want %+v", got, want)
	}
}

// TestAliasExpansionBounded: aliases that multiply into more values than
// any pipeline file holds are an error, not minutes of decoding.
func TestAliasExpansionBounded(t *testing.T) {
	src := "any: &i {tags: [" + strings.Repeat("a, ", 2000) + "a]}\nitems: [" + strings.Repeat("*i, ", 1000) + "*i]\n"
	var o outer
	got := errorList(Decode("f.yaml", []byte(src), &o))
	want := "f.yaml:2:"
	if len(got) != 1 || !strings.HasPrefix(got[0], want) || !strings.Contains(got[0], "aliases") {
		t.Errorf("got %d errors %.300q, want one at %s... about aliases", len(got), got, want)
	}
}
