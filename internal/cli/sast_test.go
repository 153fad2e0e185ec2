package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSASTAndLicensesExitCodes(t *testing.T) {
	sarif := filepath.Join(t.TempDir(), "sast.sarif")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"planted issues", []string{"sast", "../sast/testdata/vulnapp", "--history", "none", "--sarif", sarif}, 1, "main.go:14:96: error: TLS InsecureSkipVerify"},
		{"only errors fail", []string{"sast", "../sast/testdata/vulnapp", "--history", "none", "--rule", "G401", "--no-secrets", "--fail-on", "error"}, 1, "gantry:ignore G501 has no reason"},
		{"rule filter clean", []string{"sast", "../sast/testdata/vulnapp/store", "--history", "none", "--rule", "G402"}, 0, "gosec: no findings"},
		{"bad history", []string{"sast", "--history", "weekly"}, 2, "history"},
		{"not a dir", []string{"sast", "nonexistent-dir"}, 2, "not a directory"},
		{"gpl dependency", []string{"licenses", "../license/testdata/app"}, 1, "[copyleft]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := runCLI(t, "", tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, want %d; output lacks %q:\n%s", code, tc.code, tc.want, out)
			}
		})
	}
	data, err := os.ReadFile(sarif)
	if err != nil || !strings.Contains(string(data), `"ruleId": "G402"`) {
		t.Errorf("SARIF file: %v\n%s", err, data)
	}
}
