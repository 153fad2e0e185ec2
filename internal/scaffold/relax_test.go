package scaffold_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gantry-ci/gantry/internal/license"
	"github.com/gantry-ci/gantry/internal/policy"
	"github.com/gantry-ci/gantry/internal/scaffold"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/vuln"
	"go.yaml.in/yaml/v3"
)

func containsLine(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// TestRelaxations checks what init writes from a measurement: each
// relaxation is in the pipeline (with a comment) and in the report, the
// companions parse with the security stage's own parsers, and nothing is
// relaxed that the repository passes.
func TestRelaxations(t *testing.T) {
	const head = "0123456789abcdef0123456789abcdef01234567"
	today := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	cov := func(f float64) *float64 { return &f }
	for _, tc := range []struct {
		name    string
		opts    scaffold.Options
		want    []string // substrings of the pipeline
		wantNot []string
		relaxed []string // substrings of report lines
		files   []string // companions
	}{
		{
			name:    "low coverage rounds down",
			opts:    scaffold.Options{Measured: &scaffold.Measurement{Coverage: cov(52.7)}},
			want:    []string{"gate: steps.unit.outputs.coverage >= 52\n", "# Coverage measured by `gantry init`: 52.7%"},
			relaxed: []string{"coverage gate at 52%"},
		},
		{
			name:    "high coverage keeps the seed's gate",
			opts:    scaffold.Options{Measured: &scaffold.Measurement{Coverage: cov(91.2)}},
			want:    []string{"gate: steps.unit.outputs.coverage >= 80\n"},
			wantNot: []string{"new_from_rev", "from:", "exclude_rules"},
		},
		{
			name:    "no measure: no coverage gate",
			opts:    scaffold.Options{},
			want:    []string{"# No coverage gate: `gantry init --no-measure` did not run the tests."},
			wantNot: []string{"\n    gate: steps.unit"},
			relaxed: []string{"no coverage gate: init ran nothing (--no-measure)"},
		},
		{
			name:    "coverage not measurable",
			opts:    scaffold.Options{Measured: &scaffold.Measurement{CoverageNote: "go test did not run: boom"}},
			wantNot: []string{"\n    gate: steps.unit"},
			relaxed: []string{"no coverage gate: go test did not run: boom"},
		},
		{
			name:    "head: lint and commits after it",
			opts:    scaffold.Options{Head: head, Measured: &scaffold.Measurement{Coverage: cov(80)}},
			want:    []string{"uses: golangci-lint, with: {new_from_rev: " + head + "}}", "uses: commitlint, with: {from: " + head + "}}"},
			relaxed: []string{"go-lint judges only code changed after 0123456789ab", "commits checks the messages of commits after 0123456789ab"},
		},
		{
			name:    "gosec rules found are excluded",
			opts:    scaffold.Options{Measured: &scaffold.Measurement{Coverage: cov(80), Gosec: map[string]int{"G401": 2, "G115": 13}}},
			want:    []string{"uses: sast, with: {exclude_rules: [G115, G401]}}", "# gosec found in the code `gantry init` saw: G115 (13), G401 (2)."},
			relaxed: []string{"sast excludes the gosec rules G115 (13), G401 (2)"},
		},
		{
			name: "vulnerabilities and licences become expiring exceptions",
			opts: scaffold.Options{Today: today, Owner: "dev@example.com", Measured: &scaffold.Measurement{Coverage: cov(80),
				Vulns:    []vuln.Finding{{ID: "GO-2024-0001", Package: "golang.org/x/net", Version: "v0.1.0", Fixed: "v0.2.0"}},
				Licenses: []license.Violation{{Module: "example.com/gpl", Rule: "copyleft"}}}},
			relaxed: []string{"1 known vulnerabilities recorded as exceptions expiring on 2026-12-30", "licences: example.com/gpl (copyleft) allowed until 2026-12-30"},
			files:   []string{".gantry/exceptions.yaml", ".gantry/licenses.yaml"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := scaffold.Detect(context.Background(), "testdata/repos/measured")
			if err != nil {
				t.Fatal(err)
			}
			p := scaffold.Generate(r, tc.opts)
			got := string(p.Pipeline)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("pipeline lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(got, w) {
					t.Errorf("pipeline has %q:\n%s", w, got)
				}
			}
			for _, w := range tc.relaxed {
				if !containsLine(p.Relaxed, w) {
					t.Errorf("report lacks %q: %q", w, p.Relaxed)
				}
			}
			if len(tc.relaxed) == 0 && len(p.Relaxed) != 0 {
				t.Errorf("relaxed %q, want nothing", p.Relaxed)
			}
			if _, err := spec.Parse(scaffold.PipelinePath, p.Pipeline, registry(), spec.WithRepository("testdata/repos/measured")); err != nil {
				t.Errorf("generated pipeline does not validate: %v", err)
			}
			var names []string
			for _, f := range p.Companions {
				names = append(names, f.Path)
				switch f.Path {
				case policy.DefaultExceptionsFile:
					x, err := policy.ParseExceptions(f.Path, f.Content)
					if err != nil {
						t.Fatalf("exceptions: %v\n%s", err, f.Content)
					}
					m := x.Lookup([]string{"GO-2024-0001"}, "golang.org/x/net", today)
					if m == nil || m.Expired || m.Exception.Owner != "dev@example.com" || !strings.Contains(m.Exception.Justification, "fixed in v0.2.0") {
						t.Errorf("exception for GO-2024-0001: got %+v\n%s", m, f.Content)
					}
					if m := x.Lookup([]string{"GO-2024-0001"}, "golang.org/x/net", today.AddDate(0, 0, 31)); m == nil || !m.Expired {
						t.Errorf("exception 31 days on: got %+v, want expired", m)
					}
				case license.PolicyFile:
					var c license.Config
					if err := yaml.Unmarshal(f.Content, &c); err != nil {
						t.Fatal(err)
					}
					pol, err := license.Compile(f.Path, c)
					if err != nil {
						t.Fatalf("licence policy: %v\n%s", err, f.Content)
					}
					pol.Now = func() time.Time { return today }
					if _, ok := pol.Allowed("example.com/gpl"); !ok {
						t.Errorf("example.com/gpl not allowed today:\n%s", f.Content)
					}
					pol.Now = func() time.Time { return today.AddDate(0, 0, 31) }
					if _, ok := pol.Allowed("example.com/gpl"); ok {
						t.Errorf("example.com/gpl still allowed after 31 days")
					}
				}
			}
			if strings.Join(names, ",") != strings.Join(tc.files, ",") {
				t.Errorf("companions: got %v, want %v", names, tc.files)
			}
		})
	}
}

// FuzzRecordedExceptions: whatever a vulnerability database or a go.mod
// names (ids, packages, modules are outside input), the files init
// records parse back to the same entries, and the pipeline still parses.
func FuzzRecordedExceptions(f *testing.F) {
	f.Add("GO-2024-0001", "golang.org/x/net", "v0.1.0", "example.com/gpl")
	f.Add("x\n  - id: evil", "p: q", "#", "m\"\n- module: other")
	f.Fuzz(func(t *testing.T, id, pkg, version, module string) {
		if strings.TrimSpace(id) == "" || strings.TrimSpace(module) == "" || !utf8.ValidString(id+pkg+version+module) {
			return
		}
		today := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
		cov := 80.0
		r := &scaffold.Repo{Module: &scaffold.GoModule{Path: "example.com/m", HasTests: true, TagFiles: map[string]string{}}}
		p := scaffold.Generate(r, scaffold.Options{Today: today, Measured: &scaffold.Measurement{Coverage: &cov,
			Vulns:    []vuln.Finding{{ID: id, Package: pkg, Version: version}},
			Licenses: []license.Violation{{Module: module, Rule: "copyleft"}}}})
		if _, err := spec.Parse(scaffold.PipelinePath, p.Pipeline, registry()); err != nil {
			t.Fatalf("pipeline does not parse: %v\n%s", err, p.Pipeline)
		}
		for _, c := range p.Companions {
			switch c.Path {
			case policy.DefaultExceptionsFile:
				x, err := policy.ParseExceptions(c.Path, c.Content)
				if err != nil {
					t.Fatalf("exceptions: %v\n%s", err, c.Content)
				}
				if len(x.List) != 1 || x.List[0].ID != id || x.List[0].Package != pkg {
					t.Fatalf("exceptions: got %+v, want id %q package %q\n%s", x.List, id, pkg, c.Content)
				}
			case license.PolicyFile:
				var cfg license.Config
				if err := yaml.Unmarshal(c.Content, &cfg); err != nil {
					t.Fatalf("licence policy: %v\n%s", err, c.Content)
				}
				if len(cfg.Allow) != 1 || cfg.Allow[0].Module != module {
					t.Fatalf("licence policy: got %+v, want module %q\n%s", cfg.Allow, module, c.Content)
				}
			}
		}
	})
}
