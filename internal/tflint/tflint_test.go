package tflint

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/gantry-ci/gantry/internal/toolcache"
)

// bin finds tflint: installed into $GANTRY_TEST_TOOLCACHE with the tool
// cache (the real first-use install) when that is set, else on PATH.
func bin(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("GANTRY_TEST_TOOLCACHE"); dir != "" {
		p, err := toolcache.New(dir).Ensure(context.Background(), Tool, os.Stderr)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p, err := exec.LookPath("tflint")
	if err != nil {
		testenv.Missing(t, "tflint", "set GANTRY_TEST_TOOLCACHE to install it, or go install "+Tool.Package+"@"+Tool.Version)
	}
	return p
}

func TestRun(t *testing.T) {
	b := bin(t)
	for _, tc := range []struct {
		dir  string
		want []string
	}{
		{"testdata/clean", nil},
		{"testdata/dirty", []string{
			"main.tf:5:1: warning: variable \"unused\" is declared but not used [terraform_unused_declarations]",
			"main.tf:9:1: warning: `name` variable has no type [terraform_typed_variables]",
			"main.tf:12:11: warning: Interpolation-only expressions are deprecated in Terraform v0.12.14 [terraform_deprecated_interpolation]",
		}},
		{"testdata/broken", []string{
			"mod/broken.tf:1:14: error: Failed to run in mod; exit status 1 Failed to load the root module; mod/broken.tf:1,14-15: Unclosed configuration block;",
		}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			r, err := Run(context.Background(), b, tc.dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range r.Findings {
				got = append(got, f.String())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d findings, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("got  %s\nwant %s", got[i], tc.want[i])
				}
			}
		})
	}
}

func TestParseBadOutput(t *testing.T) {
	if _, err := Parse([]byte("Failed to initialize plugins")); err == nil {
		t.Error("want error for non-JSON output")
	}
}
