package golangcilint

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/gantry-ci/gantry/internal/toolcache"
)

// bin finds golangci-lint: installed into $GANTRY_TEST_TOOLCACHE with the
// tool cache (the real first-use install) when that is set, else on PATH.
func bin(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("GANTRY_TEST_TOOLCACHE"); dir != "" {
		p, err := toolcache.New(dir).Ensure(context.Background(), Tool, os.Stderr)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p, err := exec.LookPath("golangci-lint")
	if err != nil {
		testenv.Missing(t, "golangci-lint", "set GANTRY_TEST_TOOLCACHE to install it, or go install "+Tool.Package+"@"+Tool.Version)
	}
	return p
}

func TestRun(t *testing.T) {
	b := bin(t)
	for _, tc := range []struct {
		pkg  string
		want []string
	}{
		{"./clean/...", nil},
		{"./dirty/...", []string{
			"dirty/dirty.go:11:11: error: Error return value of `os.Remove` is not checked [errcheck]",
			"dirty/dirty.go:16:22: error: printf: fmt.Sprintf format %s has arg n of wrong type int [govet]",
		}},
	} {
		t.Run(tc.pkg, func(t *testing.T) {
			r, err := Run(context.Background(), b, "testdata/mod", Options{Packages: []string{tc.pkg}})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range r.Findings {
				got = append(got, f.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestRunBadConfig(t *testing.T) {
	b := bin(t)
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/go.mod", []byte("module x\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/.golangci.yml", []byte("version: \"2\"\nlinters:\n  enable: [no-such-linter]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), b, dir, Options{})
	var te *ToolError
	if !errors.As(err, &te) || !strings.Contains(te.Stderr, "no-such-linter") {
		t.Errorf("got %v, want a ToolError naming the linter", err)
	}
}

func TestParse(t *testing.T) {
	out := `{"Issues":[{"FromLinter":"gosec","Text":"G104: Errors unhandled","Severity":"medium","Pos":{"Filename":"a/b.go","Line":3,"Column":2}},` +
		`{"FromLinter":"unused","Text":"func f is unused","Severity":"","Pos":{"Filename":"a/a.go","Line":9,"Column":6}}],"Report":{}}`
	r, err := Parse([]byte("level=warning msg=x\n"+out+"\n"), findings.Warning)
	if err != nil {
		t.Fatal(err)
	}
	want := []findings.Finding{
		{File: "a/a.go", Line: 9, Column: 6, Rule: "unused", Severity: findings.Warning, Message: "func f is unused"},
		{File: "a/b.go", Line: 3, Column: 2, Rule: "gosec", Severity: findings.Warning, Message: "G104: Errors unhandled"},
	}
	if !slices.Equal(r.Findings, want) {
		t.Errorf("got %+v\nwant %+v", r.Findings, want)
	}
	if _, err := Parse([]byte("panic: boom"), findings.Error); err == nil {
		t.Error("want an error for output without a JSON report")
	}
}
