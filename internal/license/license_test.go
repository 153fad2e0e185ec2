package license

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/yamlx"
)

func policyIn(t *testing.T, yaml string) *Policy {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, ".gantry"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, PolicyFile), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPolicy(dir, PolicyFile)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func rules(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Module+":"+v.Rule)
	}
	return out
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, policy string
		violations   []string
		unknown      []string
		allowed      []string
	}{
		{"default policy", "", []string{"example.com/gpllib:copyleft", "example.com/mystery:unknown"}, []string{"example.com/mystery"}, nil},
		{"override and allow", `
overrides:
  - {module: example.com/mystery, license: BSD-3-Clause}
allow:
  - {module: example.com/gpllib, reason: "used only by the offline test tool, not shipped"}
`, nil, nil, []string{"example.com/gpllib:copyleft"}},
		{"own rules", `
threshold: 99
rules:
  - name: no-gpl3
    deny: 'licenses.exists(l, l.startsWith("GPL-3.0"))'
`, []string{"example.com/gpllib:no-gpl3"}, []string{"example.com/gpllib", "example.com/mystery"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := policyIn(t, tc.policy)
			r, err := Check(context.Background(), "testdata/app", nil, p)
			if err != nil {
				t.Fatal(err)
			}
			if got := rules(r.Violations); !slices.Equal(got, tc.violations) {
				t.Errorf("violations = %v, want %v", got, tc.violations)
			}
			if !slices.Equal(r.Unknown, tc.unknown) && !(len(r.Unknown) == 0 && tc.unknown == nil) {
				t.Errorf("unknown = %v, want %v", r.Unknown, tc.unknown)
			}
			if got := rules(r.Allowed); !slices.Equal(got, tc.allowed) {
				t.Errorf("allowed = %v, want %v", got, tc.allowed)
			}
			if !slices.Equal(r.Project, []string{"MIT"}) {
				t.Errorf("project = %v, want [MIT]", r.Project)
			}
			gpl := r.Modules[1]
			if gpl.Path != "example.com/gpllib" || !slices.Equal(gpl.Licenses, []string{"GPL-3.0-or-later"}) || gpl.Coverage < 90 {
				t.Errorf("gpllib = %+v, want GPL-3.0-or-later at >= 90%%", gpl)
			}
		})
	}
}

func TestPaymentService(t *testing.T) {
	p, err := LoadPolicy("../../examples/payment-service", PolicyFile)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Check(context.Background(), "../../examples/payment-service", nil, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Violations) != 0 || len(r.Modules) < 5 {
		t.Errorf("violations = %+v over %d modules, want none", r.Violations, len(r.Modules))
	}
	for _, m := range r.Modules[1:] {
		if len(m.Licenses) == 0 {
			t.Errorf("%s: no licence detected", m.Path)
		}
	}
}

func TestBadPolicy(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown field", "threshhold: 80\n", ".gantry/licenses.yaml:1:1"},
		{"bad CEL", "rules:\n  - name: x\n    deny: 'licenses.exists(l, '\n", ".gantry/licenses.yaml:3:11: rule x"},
		{"not bool", "rules:\n  - name: y\n    deny: 'module'\n", ".gantry/licenses.yaml:3:11: rule y: deny must be a bool"},
		{"allow without reason", "allow:\n  - module: a\n", ".gantry/licenses.yaml:2:5: allow entry \"a\" needs a module and a reason"},
		{"rule without deny", "rules:\n  - name: z\n", ".gantry/licenses.yaml:2:5: a rule needs a name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, ".gantry"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, PolicyFile), []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadPolicy(dir, PolicyFile)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzPolicy(f *testing.F) {
	f.Add("threshold: 80\nrules:\n  - name: x\n    deny: 'coverage < threshold'\n")
	f.Add("rules:\n  - name: y\n    deny: 'licenses.exists(l, '\n")
	f.Add("allow:\n  - {module: a, reason: b}\noverrides:\n  - {module: c, license: MIT}\n")
	f.Fuzz(func(t *testing.T, data string) {
		var c Config
		if err := yamlx.Decode(PolicyFile, []byte(data), &c); err != nil {
			return
		}
		p, err := Compile(PolicyFile, c)
		if err != nil {
			return
		}
		if _, err := p.Evaluate(Module{Path: "m", Licenses: []string{"MIT"}, Coverage: 90}, nil); err != nil {
			t.Logf("evaluate: %v", err)
		}
	})
}

func TestAllowExpires(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, expires string
		want          bool
	}{
		{"no expiry", "", true},
		{"valid through the day", "2026-11-30", true},
		{"later", "2027-01-01", true},
		{"expired", "2026-11-29", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(PolicyFile, Config{Allow: []Allow{{Module: "example.com/gpl", Reason: "accepted", Expires: tc.expires}}})
			if err != nil {
				t.Fatal(err)
			}
			p.Now = func() time.Time { return now }
			if _, got := p.Allowed("example.com/gpl"); got != tc.want {
				t.Errorf("Allowed with expires %q at %s: got %v, want %v", tc.expires, now, got, tc.want)
			}
		})
	}
	if _, err := Compile(PolicyFile, Config{Allow: []Allow{{Module: "m", Reason: "r", Expires: "soon"}}}); err == nil || !strings.Contains(err.Error(), `expires "soon" is not a date`) {
		t.Errorf("bad expires: err = %v, want a date error", err)
	}
}
