package mask

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

// forms are the ways a secret is written that must all be hidden.
var forms = map[string]string{
	"plain":       secret,
	"base64":      base64.StdEncoding.EncodeToString([]byte(secret)),
	"url-encoded": url.QueryEscape(secret),
}

// leaks reports which form of the secret s still holds.
func leaks(s string) []string {
	var out []string
	for name, f := range forms {
		if strings.Contains(s, f) {
			out = append(out, name)
		}
	}
	return out
}

type report struct {
	Name    string
	Token   string
	Tags    []string
	private string // printed by text handlers, never masked in place
}

type label string

func TestValue(t *testing.T) {
	m := New(secret)
	for form, s := range forms {
		tests := []struct {
			name string
			in   any
		}{
			{"string", s},
			{"[]string", []string{"a", s}},
			{"[]any", []any{1, s, []any{s}}},
			{"map[string]any", map[string]any{"k": s, "n": map[string]any{"deep": []any{map[string]string{"x": s}}}}},
			{"map[string]string", map[string]string{"k": s}},
			{"map key", map[string]int{s: 1}},
			{"map[string][]string", map[string][]string{"k": {s}}},
			{"[]byte", []byte("x " + s)},
			{"named string", label(s)},
			{"[]map[string]any", []map[string]any{{"k": s}}},
			{"struct", report{Name: "r", Token: s, Tags: []string{s}}},
			{"pointer to struct", &report{Token: s}},
			{"error", fmt.Errorf("wrapped: %w", errors.New(s))},
			{"array", [2]string{s, "b"}},
		}
		for _, tt := range tests {
			t.Run(form+"/"+tt.name, func(t *testing.T) {
				got := m.Value(tt.in)
				js, err := json.Marshal(got)
				if err != nil {
					t.Fatalf("marshal masked value: %v", err)
				}
				if l := leaks(string(js)); len(l) > 0 {
					t.Errorf("Value(%T) = %s, leaks the %v form", tt.in, js, l)
				}
				if l := leaks(fmt.Sprint(got)); len(l) > 0 {
					t.Errorf("Value(%T) prints %v, leaks the %v form", tt.in, got, l)
				}
				if _, isErr := tt.in.(error); !isErr {
					if gotT, wantT := fmt.Sprintf("%T", got), fmt.Sprintf("%T", tt.in); gotT != wantT {
						t.Errorf("type: got %s, want %s", gotT, wantT)
					}
				}
			})
		}
	}
}

func TestValueKeepsOtherData(t *testing.T) {
	m := New(secret)
	in := map[string]any{"coverage": 81.5, "count": 3, "ok": true, "name": "web", "list": []any{"a", 2}}
	got := m.Outputs(in)
	want := fmt.Sprint(in)
	if fmt.Sprint(got) != want {
		t.Errorf("got %v, want %v", got, want)
	}
	in["name"] = "changed"
	if got["name"] != "web" {
		t.Error("Outputs returned the input map, not a copy")
	}
	if New().Outputs(nil) != nil {
		t.Error("Outputs(nil) is not nil")
	}
}

func TestHandler(t *testing.T) {
	for form, s := range forms {
		for _, format := range []string{"text", "json"} {
			t.Run(form+"/"+format, func(t *testing.T) {
				var buf bytes.Buffer
				var next slog.Handler = slog.NewTextHandler(&buf, nil)
				if format == "json" {
					next = slog.NewJSONHandler(&buf, nil)
				}
				log := Logger(New(secret), slog.New(next)).With("preset", s).WithGroup("g")
				log.Info("message "+s,
					"str", s,
					"err", errors.New("failed with "+s),
					"any", map[string]any{"k": []any{s}},
					"strings", map[string]string{"k": s},
					"struct", report{Token: s, private: s},
					slog.Group("grp", "inner", s),
					"stringer", url.URL{Scheme: "https", Host: "x.example", Path: "/" + s},
				)
				if l := leaks(buf.String()); len(l) > 0 {
					t.Errorf("log %s leaks the %v form", buf.String(), l)
				}
				if !strings.Contains(buf.String(), Redacted) {
					t.Errorf("log %s: want %s in it", buf.String(), Redacted)
				}
			})
		}
	}
}

func FuzzValueNeverLeaks(f *testing.F) {
	f.Add("prefix ", " suffix", "key")
	f.Fuzz(func(t *testing.T, pre, post, key string) {
		m := New(secret)
		s := pre + secret + post
		in := map[string]any{key: s, "list": []any{s, map[string]string{"k": s}}, "bytes": []byte(s), "strs": []string{s}}
		js, err := json.Marshal(m.Value(in))
		if err != nil {
			t.Fatal(err)
		}
		var back any
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(fmt.Sprint(back), secret) {
			t.Fatalf("secret leaked: %s", js)
		}
	})
}
