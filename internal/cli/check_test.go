package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	root := New()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"--state-dir", t.TempDir()}, args...))
	err := root.Execute()
	if err != nil {
		out.WriteString(err.Error())
	}
	return out.String(), Code(err)
}

func TestCheckExitCodes(t *testing.T) {
	sarif := filepath.Join(t.TempDir(), "out.sarif")
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"clean terraform", "", []string{"check", "terraform-fmt", "../tfmt/testdata/clean"}, 0, "terraform-fmt: no findings"},
		{"dirty terraform", "", []string{"check", "terraform-fmt", "../tfmt/testdata/dirty"}, 1, "+  acl    = \"private\""},
		{"bad manifests", "", []string{"check", "kubeconform", "../manifests/testdata/bad/deployment.yaml", "--sarif", sarif}, 1, `unknown field "replica"`},
		{"good manifests", "", []string{"check", "kubeconform", "../manifests/testdata/good"}, 0, "kubeconform: no findings"},
		{"chart", "", []string{"check", "helm-lint", "../helmcheck/testdata/good"}, 0, "helm-lint: no findings"},
		{"good message", "feat(api): add refunds\n", []string{"check", "commitlint"}, 0, "commitlint: no findings"},
		{"bad message", "Added refunds.\n", []string{"check", "commitlint"}, 1, "[type-empty]"},
		{"warning allowed", "feat: x\nbody\n", []string{"check", "commitlint"}, 0, "[body-leading-blank]"},
		{"warning fails", "feat: x\nbody\n", []string{"check", "commitlint", "--fail-on", "warning"}, 1, "[body-leading-blank]"},
		{"unknown kind", "", []string{"check", "shellcheck"}, 2, `unknown check "shellcheck"`},
		{"bad fail-on", "", []string{"check", "terraform-fmt", "--fail-on", "fatal"}, 2, "--fail-on"},
		{"bad option", "", []string{"check", "kubeconform", "--unknown-kinds", "maybe"}, 2, "unknown_kinds must be reject or skip"},
		{"empty stdin", "", []string{"check", "commitlint"}, 2, "no message on standard input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := runCLI(t, tc.stdin, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, want %d; output lacks %q:\n%s", code, tc.code, tc.want, out)
			}
		})
	}
	data, err := os.ReadFile(sarif)
	if err != nil || !strings.Contains(string(data), `"version": "2.1.0"`) {
		t.Errorf("SARIF file: %v", err)
	}
}
