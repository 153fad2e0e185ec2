package yamlx

import (
	"strings"
	"testing"
	"time"
)

type inner struct {
	Pos   Pos
	At    Positions
	Count int               `yaml:"count"`
	Tags  []string          `yaml:"tags"`
	Env   map[string]string `yaml:"env"`
}

type outer struct {
	Name    string        `yaml:"name"`
	Ratio   float64       `yaml:"ratio"`
	Wait    time.Duration `yaml:"wait"`
	On      bool          `yaml:"on"`
	Inner   *inner        `yaml:"inner"`
	Items   []inner       `yaml:"items"`
	Any     any           `yaml:"any"`
	Label   String        `yaml:"label"`
	Skipped string        `yaml:"-"`
}

func TestDecode(t *testing.T) {
	src := "name: x\nratio: 2\nwait: 30d\non: true\ninner:\n  count: 3\n  tags: [a, b]\nitems:\n  - {count: 1}\nany: {k: [1, 2]}\nlabel: hi\n"
	var o outer
	if err := Decode("f.yaml", []byte(src), &o); err != nil {
		t.Fatal(err)
	}
	if o.Name != "x" || o.Ratio != 2 || o.Wait != 30*24*time.Hour || !o.On {
		t.Errorf("scalars: got %+v", o)
	}
	if o.Inner == nil || o.Inner.Count != 3 || len(o.Inner.Tags) != 2 {
		t.Fatalf("inner: got %+v", o.Inner)
	}
	if got, want := o.Inner.Pos, (Pos{Line: 6, Column: 3}); got != want {
		t.Errorf("inner pos: got %v, want %v", got, want)
	}
	if got, want := o.Inner.At["tags"], (Pos{Line: 7, Column: 9}); got != want {
		t.Errorf("tags pos: got %v, want %v", got, want)
	}
	if got, want := o.Label, (String{Value: "hi", Pos: Pos{Line: 11, Column: 8}}); got != want {
		t.Errorf("label: got %+v, want %+v", got, want)
	}
	if m, ok := o.Any.(map[string]any); !ok || len(m["k"].([]any)) != 2 {
		t.Errorf("any: got %#v", o.Any)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"nme: x\n", "f.yaml:1:1: unknown field \"nme\""},
		{"ratio: high\n", "f.yaml:1:8: expected a number, got \"high\""},
		{"on: yes please\n", "f.yaml:1:5: expected true or false"},
		{"inner: [1]\n", "f.yaml:1:8: expected a mapping, got a list"},
		{"inner: {count: 1.5}\n", "f.yaml:1:16: expected an integer, got \"1.5\""},
		{"inner: {tags: {a: 1}}\n", "f.yaml:1:15: expected a list, got a mapping"},
		{"name: [a]\n", "f.yaml:1:7: expected a string, got a list"},
		{"wait: -5s\n", "f.yaml:1:7: duration \"-5s\" must not be negative"},
		{"name: a\nname: b\n", "f.yaml:2:1:"},
		{"inner: {env: {A: 1, A: 2}}\n", "f.yaml:1:"},
		{"", "f.yaml:1:1: empty document"},
		{"name: [\n", "f.yaml:"},
		{"a: &x {b: *x}\n", "f.yaml:"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			var o outer
			err := Decode("f.yaml", []byte(tt.src), &o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("name: x\ninner: {count: 1, tags: [a]}\nitems: [{count: 2}]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var o outer
		_ = Decode("f.yaml", data, &o)
	})
}
