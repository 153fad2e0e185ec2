package tfmt

import (
	"bytes"
	"context"
	"os/exec"
	"slices"
	"testing"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/testenv"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		dir     string
		checked int
		want    []string
	}{
		{"testdata/clean", 3, nil},
		{"testdata/dirty", 4, []string{
			"main.tf:3:1: error: file is not formatted (run terraform fmt) [terraform-fmt]",
			"sub/legacy.tf:2:1: error: file is not formatted (run terraform fmt) [terraform-fmt]",
			"sub/outputs.tf:2:1: error: file is not formatted (run terraform fmt) [terraform-fmt]",
			"sub/vars.tfvars:1:1: error: file is not formatted (run terraform fmt) [terraform-fmt]",
		}},
		{"testdata/broken", 2, []string{
			"bad.tf:2:7: error: Invalid expression: Expected the start of an expression, but found an invalid expression token. [hcl-syntax]",
			"unclosed.tf:1:14: error: Unclosed configuration block: There is no closing brace for this block before the end of the file. This may be caused by incorrect brace nesting elsewhere in this file. [hcl-syntax]",
		}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			res, err := Check(context.Background(), tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range res.Report.Findings {
				got = append(got, f.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("findings:\ngot  %q\nwant %q", got, tc.want)
			}
			if res.Checked != tc.checked {
				t.Errorf("checked %d files, want %d", res.Checked, tc.checked)
			}
		})
	}
}

// TestSameAsTerraform compares verdict and diff with the real
// `terraform fmt -check -diff -recursive` when terraform is installed.
func TestSameAsTerraform(t *testing.T) {
	bin, err := exec.LookPath("terraform")
	if err != nil {
		testenv.Missing(t, "terraform", "go install github.com/hashicorp/terraform@v1.5.7; the in-process formatter is still tested above")
	}
	for _, dir := range []string{"testdata/clean", "testdata/dirty"} {
		t.Run(dir, func(t *testing.T) {
			cmd := proc.Command(context.Background(), bin, "fmt", "-check", "-diff", "-recursive", "-no-color")
			cmd.Dir = dir
			cmd.Env = append(cmd.Environ(), "TF_CLI_CONFIG_FILE=/dev/null", "CHECKPOINT_DISABLE=1")
			var out bytes.Buffer
			cmd.Stdout = &out
			runErr := cmd.Run()
			res, err := Check(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := res.Report.Count(0) == 0, runErr == nil; got != want {
				t.Errorf("clean = %v, terraform clean = %v (%v)", got, want, runErr)
			}
			if got, want := res.Diff(), out.String(); got != want {
				t.Errorf("diff:\ngot\n%s\nterraform\n%s", got, want)
			}
		})
	}
}

func FuzzFormatFile(f *testing.F) {
	f.Add([]byte("a = 1\n"))
	f.Add([]byte("resource \"x\" \"y\" {\n  a = \"${b}\"\n}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		_, _ = FormatFile("f.tf", src)
	})
}
