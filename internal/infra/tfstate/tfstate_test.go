package tfstate

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const stateV1 = `{
  "version": 4,
  "terraform_version": "1.5.7",
  "serial": 3,
  "lineage": "4d1c8c5e-0000-1111-2222-333344445555",
  "outputs": {},
  "resources": [
    {
      "mode": "managed",
      "type": "terraform_data",
      "name": "a",
      "provider": "provider[\"terraform.io/builtin/terraform\"]",
      "instances": [
        {"schema_version": 0, "attributes": {"id": "1", "input": "v1", "output": "v1"}, "sensitive_attributes": []}
      ]
    },
    {
      "module": "module.net",
      "mode": "data",
      "type": "terraform_remote_state",
      "name": "r",
      "provider": "provider[\"terraform.io/builtin/terraform\"]",
      "instances": [
        {"index_key": "eu", "attributes": {"x": 1}},
        {"index_key": 2, "attributes": {"x": 2}}
      ]
    }
  ],
  "check_results": null
}
`

func TestParse(t *testing.T) {
	s, err := Parse([]byte(stateV1))
	if err != nil {
		t.Fatal(err)
	}
	if s.Serial != 3 || s.Lineage != "4d1c8c5e-0000-1111-2222-333344445555" || s.TerraformVersion != "1.5.7" {
		t.Errorf("header = %d %q %q", s.Serial, s.Lineage, s.TerraformVersion)
	}
	var got []string
	for a := range s.Instances {
		got = append(got, a)
	}
	want := map[string]bool{
		"terraform_data.a": true,
		`module.net.data.terraform_remote_state.r["eu"]`: true,
		`module.net.data.terraform_remote_state.r[2]`:    true,
	}
	if len(got) != len(want) {
		t.Fatalf("addresses = %q, want %v", got, want)
	}
	for _, a := range got {
		if !want[a] {
			t.Errorf("unexpected address %q (want %v)", a, want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"empty", ``, "EOF"},
		{"truncated", stateV1[:len(stateV1)/2], "unexpected EOF"},
		{"not an object", `[1,2]`, "cannot unmarshal"},
		{"trailing data", `{"version":4,"serial":1,"lineage":"l"} {}`, "data after"},
		{"no version", `{"serial":1,"lineage":"l"}`, `no "version"`},
		{"version 3", `{"version":3,"serial":1,"lineage":"l"}`, "format version 3"},
		{"no serial", `{"version":4,"lineage":"l"}`, `no "serial"`},
		{"negative serial", `{"version":4,"serial":-1,"lineage":"l"}`, "cannot unmarshal"},
		{"no lineage", `{"version":4,"serial":1}`, `no "lineage"`},
		{"resource without type", `{"version":4,"serial":1,"lineage":"l","resources":[{"name":"a"}]}`, "no type or name"},
		{"bad mode", `{"version":4,"serial":1,"lineage":"l","resources":[{"mode":"x","type":"t","name":"a"}]}`, `unknown mode "x"`},
		{"bad index key", `{"version":4,"serial":1,"lineage":"l","resources":[{"type":"t","name":"a","instances":[{"index_key":[1]}]}]}`, "neither a number nor a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data))
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Parse error = %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error = %q, want it to say %q", err, tt.want)
			}
		})
	}
}

func state(t *testing.T, instances map[string]string) *State {
	t.Helper()
	return &State{Version: 4, Serial: 1, Lineage: "l", Instances: instances}
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name     string
		from, to map[string]string
		want     Changes
	}{
		{"same", map[string]string{"a": "1"}, map[string]string{"a": "1"}, Changes{}},
		{"added", map[string]string{"a": "1"}, map[string]string{"a": "1", "c": "x", "b": "2"}, Changes{Added: []string{"b", "c"}}},
		{"removed", map[string]string{"a": "1", "b": "2"}, map[string]string{"b": "2"}, Changes{Removed: []string{"a"}}},
		{"changed", map[string]string{"a": "1", "b": "2"}, map[string]string{"a": "9", "b": "2"}, Changes{Changed: []string{"a"}}},
		{"from nothing", nil, map[string]string{"a": "1"}, Changes{Added: []string{"a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(state(t, tt.from), state(t, tt.to))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDiffIgnoresKeyOrder(t *testing.T) {
	a, err := Parse([]byte(`{"version":4,"serial":1,"lineage":"l","resources":[{"type":"t","name":"n","instances":[{"attributes":{"x":1,"y":"b"}}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse([]byte(`{"version":4,"serial":2,"lineage":"l","resources":[{"type":"t","name":"n","instances":[{"attributes":{"y":"b","x":1}}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if c := Diff(a, b); !c.Empty() {
		t.Errorf("Diff = %v, want no changes", c)
	}
}

func TestWithSerial(t *testing.T) {
	out, err := WithSerial([]byte(stateV1), 42)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(out)
	if err != nil {
		t.Fatalf("rewritten state does not parse: %v\n%s", err, out)
	}
	orig, _ := Parse([]byte(stateV1))
	if got.Serial != 42 {
		t.Errorf("serial = %d, want 42", got.Serial)
	}
	if got.Lineage != orig.Lineage || got.TerraformVersion != orig.TerraformVersion {
		t.Errorf("header changed: %+v", got)
	}
	if c := Diff(orig, got); !c.Empty() {
		t.Errorf("resources changed: %v", c)
	}
	// Field order is kept: serial stays third, check_results last.
	if i, j := strings.Index(string(out), `"serial"`), strings.Index(string(out), `"lineage"`); i < 0 || i > j {
		t.Errorf("field order changed:\n%s", out)
	}
	if !strings.Contains(string(out), `"check_results": null`) {
		t.Errorf("unknown field lost:\n%s", out)
	}
	if _, err := WithSerial([]byte(`{"version":4}`), 1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("WithSerial(corrupt) error = %v, want ErrCorrupt", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(stateV1))
	f.Add([]byte(`{"version":4,"serial":1,"lineage":"l"}`))
	f.Add([]byte(`{"version":4,"serial":1,"lineage":"l","resources":[{"type":"t","name":"a","instances":[{"index_key":"k","deposed":"d"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Parse error %v is not ErrCorrupt", err)
			}
			return
		}
		out, err := WithSerial(data, s.Serial+1)
		if err != nil {
			t.Fatalf("WithSerial of a parsed state: %v", err)
		}
		s2, err := Parse(out)
		if err != nil {
			t.Fatalf("rewritten state does not parse: %v", err)
		}
		if s2.Serial != s.Serial+1 || s2.Lineage != s.Lineage {
			t.Fatalf("rewritten header %d %q, want %d %q", s2.Serial, s2.Lineage, s.Serial+1, s.Lineage)
		}
		if c := Diff(s, s2); !c.Empty() {
			t.Fatalf("rewrite changed resources: %v", c)
		}
	})
}

func TestChangedAttributes(t *testing.T) {
	from, err := Parse([]byte(`{"version":4,"serial":1,"lineage":"l","resources":[{"type":"t","name":"n","instances":[{"attributes":{"id":"1","input":"a","gone":1}}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	to, err := Parse([]byte(`{"version":4,"serial":2,"lineage":"l","resources":[{"type":"t","name":"n","instances":[{"attributes":{"id":"1","input":"b","new":true}}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got := ChangedAttributes(from, to, "t.n")
	if want := []string{"gone", "input", "new"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ChangedAttributes = %q, want %q", got, want)
	}
	if got := ChangedAttributes(from, to, "t.missing"); got != nil {
		t.Errorf("ChangedAttributes(missing) = %q, want nil", got)
	}
}
