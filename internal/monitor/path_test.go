package monitor

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/runtime"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		path string
		want []string
		err  string
	}{
		{"status", []string{"status"}, ""},
		{"items.0.status", []string{"items", "0", "status"}, ""},
		{`labels.app\.kubernetes\.io/name`, []string{"labels", "app.kubernetes.io/name"}, ""},
		{`a\\.b`, []string{`a\`, "b"}, ""},
		{"", nil, "empty path"},
		{".a", nil, "empty key at offset 0"},
		{"a..b", nil, "empty key at offset 2"},
		{"a.", nil, "the path ends with an empty key"},
		{`a\b`, nil, "the backslash at offset 1 escapes neither a dot nor a backslash"},
		{`a\`, nil, "the backslash at offset 1 escapes neither"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := ParsePath(tt.path)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
			if back := JoinPath(got); back != tt.path {
				t.Errorf("JoinPath: got %q, want %q", back, tt.path)
			}
		})
	}
}

func TestLookupIndex(t *testing.T) {
	doc, err := decodeJSON([]byte(`{"a": [10, 20, 30], "0": "key zero"}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, want, err string
	}{
		{"a.2", "30", ""},
		{"0", `"key zero"`, ""},
		{"a.01", "", `a is an array; "01" is not an index`},
		{"a.-1", "", `a is an array; "-1" is not an index`},
		{"a.+1", "", `a is an array; "+1" is not an index`},
		{"a.99999999999999999999", "", `a is an array; "99999999999999999999" is not an index`},
		{"a.3", "", "a has 3 items, no index 3"},
		{"b", "", `the body has no key "b"`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			keys, err := ParsePath(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := lookup(doc, keys)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || show(got) != tt.want {
				t.Fatalf("got %s, %v; want %s", show(got), err, tt.want)
			}
		})
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{`1`, `1.0`, true},
		{`1e2`, `100`, true},
		{`1`, `"1"`, false},
		{`null`, `null`, true},
		{`null`, `false`, false},
		{`{"a": [1, {"b": null}]}`, `{"a": [1.0, {"b": null}]}`, true},
		{`{"a": 1}`, `{"a": 1, "b": 2}`, false},
		{`{"a": 1}`, `{"b": 1}`, false},
		{`[1, 2]`, `[2, 1]`, false},
		{`1e400`, `1e400`, true},
		{`1e400`, `2e400`, false},
	}
	for _, tt := range tests {
		t.Run(tt.a+" "+tt.b, func(t *testing.T) {
			a, err := decodeJSON([]byte(tt.a))
			if err != nil {
				t.Fatal(err)
			}
			b, err := decodeJSON([]byte(tt.b))
			if err != nil {
				t.Fatal(err)
			}
			if got := equal(a, b); got != tt.want {
				t.Errorf("equal: got %v, want %v", got, tt.want)
			}
			if got := equal(b, a); got != tt.want {
				t.Errorf("equal reversed: got %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzPath feeds the evaluator paths and bodies from outside: no panic;
// a path that parses joins back to itself; a value found at a path is
// what an assertion on it compares equal to; a lookup that fails makes
// the assertion fail with a message naming the path.
func FuzzPath(f *testing.F) {
	f.Add("items.0.status", []byte(`{"items": [{"status": "ok"}]}`))
	f.Add(`labels.app\.kubernetes\.io/name`, []byte(`{"labels": {"app.kubernetes.io/name": "pay"}}`))
	f.Add("a.1", []byte(`{"a": [1, 2.50, null, true, "x", {"b": []}]}`))
	f.Add(`a\\.b`, []byte(`{"a\\": {"b": 1e400}}`))
	f.Add("0", []byte(`[0]`))
	f.Add("a..b", []byte(`not json`))
	f.Add("x", []byte(`{"x": 1} {"x": 2}`))
	f.Fuzz(func(t *testing.T, path string, body []byte) {
		keys, err := ParsePath(path)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if back := JoinPath(keys); back != path {
			t.Fatalf("JoinPath(ParsePath(%q)) = %q", path, back)
		}
		doc, err := decodeJSON(body)
		if err != nil {
			if msg := assertJSON(body, []runtime.JSONAssertion{{Path: path, Equals: json.RawMessage(`1`)}}); !strings.Contains(msg, "the body is not JSON") {
				t.Fatalf("undecodable body: message %q", msg)
			}
			return
		}
		got, err := lookup(doc, keys)
		if err != nil {
			msg := assertJSON(body, []runtime.JSONAssertion{{Path: path, Equals: json.RawMessage(`1`)}})
			if !strings.Contains(msg, "json "+path+": want 1, got nothing: ") {
				t.Fatalf("lookup failed (%v) but the assertion says %q", err, msg)
			}
			return
		}
		want, err := json.Marshal(got)
		if err != nil {
			t.Fatalf("found value has no JSON form: %v", err)
		}
		if msg := assertJSON(body, []runtime.JSONAssertion{{Path: path, Equals: want}}); msg != "" {
			t.Fatalf("assertion on the value found (%s) failed: %s", want, msg)
		}
	})
}
