package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseExceptionsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"missing justification and expiry", `exceptions:
  - id: GO-2022-1059
    owner: alice
`, []string{"x.yaml:2:5: exceptions[0]: justification is required", "x.yaml:2:5: exceptions[0]: expires is required"}},
		{"missing owner and id", `exceptions:
  - justification: j
    expires: 2026-01-01
`, []string{"x.yaml:2:5: exceptions[0]: id is required", "x.yaml:2:5: exceptions[0]: owner is required"}},
		{"bad date", `exceptions:
  - {id: X, justification: j, owner: o, expires: next week}
`, []string{`x.yaml:2:50: exceptions[0]: expires "next week" is not a date (YYYY-MM-DD)`}},
		{"unknown field", `exceptions:
  - {id: X, justification: j, owner: o, expires: 2026-01-01, until: 2027-01-01}
`, []string{`x.yaml:2:62: unknown field "until"`}},
		{"not a list", `exceptions: {id: X}`, []string{"x.yaml:1:13: expected a list"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseExceptions("x.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestLookup(t *testing.T) {
	x, err := ParseExceptions("x.yaml", []byte(`exceptions:
  - {id: cve-2020-14040, package: golang.org/x/text, justification: j, owner: o, expires: 2026-06-30}
  - {id: GO-2021-0113, justification: j, owner: o, expires: 2026-01-31}
  - {id: GO-2021-0113, justification: renewed, owner: o, expires: 2026-12-31}
`))
	if err != nil {
		t.Fatal(err)
	}
	day := func(s string) time.Time { d, _ := time.Parse("2006-01-02 15:04", s); return d }
	for _, tc := range []struct {
		name    string
		ids     []string
		pkg     string
		now     time.Time
		found   bool
		expired bool
		line    int
	}{
		{"alias, case-insensitive", []string{"GO-2020-0015", "CVE-2020-14040"}, "golang.org/x/text", day("2026-06-30 23:59"), true, false, 2},
		{"expired next day", []string{"CVE-2020-14040"}, "golang.org/x/text", day("2026-07-01 00:00"), true, true, 2},
		{"other package", []string{"CVE-2020-14040"}, "golang.org/x/net", day("2026-01-01 00:00"), false, false, 0},
		{"renewed wins over expired", []string{"GO-2021-0113"}, "any", day("2026-03-01 00:00"), true, false, 4},
		{"unknown id", []string{"GO-1"}, "", day("2026-01-01 00:00"), false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := x.Lookup(tc.ids, tc.pkg, tc.now)
			if (m != nil) != tc.found {
				t.Fatalf("found = %v, want %v", m != nil, tc.found)
			}
			if m != nil && (m.Expired != tc.expired || m.Exception.Pos.Line != tc.line) {
				t.Errorf("expired %v line %d, want %v %d", m.Expired, m.Exception.Pos.Line, tc.expired, tc.line)
			}
		})
	}
	soon := x.Expiring(day("2026-06-20 00:00"), 14*24*time.Hour)
	if len(soon) != 1 || soon[0].ID != "cve-2020-14040" {
		t.Errorf("expiring = %+v, want the 2026-06-30 one", soon)
	}
}

func TestLoadExceptionsMissing(t *testing.T) {
	x, err := LoadExceptions(filepath.Join(t.TempDir(), "none.yaml"))
	if err != nil || len(x.List) != 0 {
		t.Errorf("missing file: %v %v", x, err)
	}
	p := filepath.Join(t.TempDir(), "e.yaml")
	os.WriteFile(p, []byte("exceptions:\n  - {id: X, owner: o, expires: 2026-01-01}\n"), 0o644)
	if _, err := LoadExceptions(p); err == nil || !strings.Contains(err.Error(), p+":2:5: exceptions[0]: justification is required") {
		t.Errorf("err = %v", err)
	}
}

func FuzzParseExceptions(f *testing.F) {
	f.Add([]byte("exceptions:\n  - {id: X, justification: j, owner: o, expires: 2026-01-01}\n"))
	f.Add([]byte("exceptions: [{expires: [1]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseExceptions("f.yaml", data)
	})
}
