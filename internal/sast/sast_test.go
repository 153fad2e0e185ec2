package sast

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gantry-ci/gantry/internal/findings"
)

type loc struct {
	Rule string
	File string
	Line int
}

func locs(r *findings.Report) []loc {
	var out []loc
	for _, f := range r.Findings {
		out = append(out, loc{f.Rule, f.File, f.Line})
	}
	return out
}

func TestGosecPlanted(t *testing.T) {
	r, err := Gosec(context.Background(), "testdata/vulnapp", Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []loc{
		{"G501", "main.go", 5},
		{"G401", "main.go", 12},
		{"G402", "main.go", 14},
		{"G201", "store/store.go", 12},
		{"G202", "store/store.go", 19},
		{"G304", "store/store.go", 25},
		{"G304", "store/store.go", 31},
	}
	if got := locs(r); !slices.Equal(got, want) {
		t.Errorf("gosec findings:\ngot  %v\nwant %v", got, want)
	}
	for _, f := range r.Findings {
		if f.Rule == "G402" && f.Severity != findings.Error {
			t.Errorf("G402 severity = %s, want error", f.Severity)
		}
	}

	sup := NewSuppressor("testdata/vulnapp")
	used := sup.Apply(r)
	if len(used) != 1 || used[0].File != "store/store.go" || used[0].Line != 30 || used[0].Reason == "" {
		t.Errorf("suppressions used = %+v, want store/store.go:30 G304", used)
	}
	want = slices.DeleteFunc(want, func(l loc) bool { return l.Line == 31 })
	if got := locs(r); !slices.Equal(got, want) {
		t.Errorf("after suppression:\ngot  %v\nwant %v", got, want)
	}
	bad := sup.Check([]string{"main.go", "store/store.go"})
	if got, want := locs(bad), []loc{{SuppressRule, "main.go", 5}}; !slices.Equal(got, want) {
		t.Errorf("malformed suppressions: got %v, want %v", got, want)
	}
}

func TestGosecRuleFilter(t *testing.T) {
	r, err := Gosec(context.Background(), "testdata/vulnapp", Options{Include: []string{"G402"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := locs(r), []loc{{"G402", "main.go", 14}}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestParseLine(t *testing.T) {
	for _, tc := range []struct {
		line   string
		ok     bool
		rules  []string
		reason string
	}{
		{"x := 1 // gantry:ignore G401 -- legacy checksum, not security", true, []string{"G401"}, "legacy checksum, not security"},
		{"# gantry:ignore generic-secret,G101 -- test fixture", true, []string{"generic-secret", "G101"}, "test fixture"},
		{"/* gantry:ignore G304 -- fixed path */", true, []string{"G304"}, "fixed path"},
		{"// gantry:ignore G401", true, []string{"G401"}, ""},
		{"// gantry:ignore G401 --   ", true, []string{"G401"}, ""},
		{"// gantry:ignore", true, nil, ""},
		{"// nothing here", false, nil, ""},
	} {
		t.Run(tc.line, func(t *testing.T) {
			got, ok := parseLine("f", 1, tc.line)
			if ok != tc.ok || !slices.Equal(got.Rules, tc.rules) || got.Reason != tc.reason {
				t.Errorf("got %v %+v, want %v rules %v reason %q", ok, got, tc.ok, tc.rules, tc.reason)
			}
		})
	}
}

func FuzzParseLine(f *testing.F) {
	f.Add("// gantry:ignore G401 -- reason")
	f.Add("gantry:ignore ,,, --")
	f.Fuzz(func(t *testing.T, line string) {
		s, ok := parseLine("f", 1, line)
		if ok && (s.Column < 1 || s.Column > len(line)) {
			t.Errorf("column %d out of range for %q", s.Column, line)
		}
	})
}

func TestSnyk(t *testing.T) {
	dir := t.TempDir()
	bin := t.TempDir()
	sarif := `{"$schema":"https://json.schemastore.org/sarif-2.1.0.json","version":"2.1.0","runs":[{"tool":{"driver":{"name":"SnykCode","version":"1.0.0","rules":[{"id":"go/Sqli"}]}},"results":[{"ruleId":"go/Sqli","level":"error","message":{"text":"Unsanitized input flows into db.Query"},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"store/store.go","uriBaseId":"%SRCROOT%"},"region":{"startLine":19,"startColumn":24,"endLine":19}}}],"fingerprints":{"0":"abc"}}]}]}`
	if err := os.WriteFile(filepath.Join(bin, "sarif.json"), []byte(sarif), 0o644); err != nil {
		t.Fatal(err)
	}
	// A fake snyk: checks its arguments and token, prints the SARIF, exits 1
	// (issues found) as the real one does.
	script := "#!/bin/sh\n[ \"$1 $2 $3\" = \"code test --sarif\" ] || { echo \"bad args $*\" >&2; exit 2; }\n" +
		"[ -n \"$SNYK_TOKEN\" ] || exit 2\ncat " + filepath.Join(bin, "sarif.json") + "\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "snyk"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + bin + ":/usr/bin:/bin", "SNYK_TOKEN=tok-123"}
	rs, err := Snyk(context.Background(), dir, env)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Tool != "SnykCode" {
		t.Fatalf("reports = %+v", rs)
	}
	if got, want := locs(rs[0]), []loc{{"go/Sqli", "store/store.go", 19}}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := Snyk(context.Background(), dir, []string{"PATH=" + bin}); err != ErrSnykUnavailable {
		t.Errorf("no token: err = %v, want ErrSnykUnavailable", err)
	}
	if _, err := Snyk(context.Background(), dir, []string{"PATH=/nonexistent", "SNYK_TOKEN=x"}); err != ErrSnykUnavailable {
		t.Errorf("no snyk: err = %v, want ErrSnykUnavailable", err)
	}
}

func TestGosecCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Gosec(ctx, "testdata/vulnapp", Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
