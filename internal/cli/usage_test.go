package cli

import (
	"strings"
	"testing"
)

// TestUsageErrorsExit2: what a new user mistypes is bad usage (exit 2)
// with a message saying what is wrong, never exit 1 or a silent 0.
func TestUsageErrorsExit2(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown command", []string{"bogus"}, 2, `unknown command "bogus"`},
		{"unknown command with a suggestion", []string{"rnus"}, 2, "runs"},
		{"unknown subcommand", []string{"registry", "bogus"}, 2, `unknown command "bogus" for "gantry registry"`},
		{"unknown flag", []string{"runs", "--bogus"}, 2, "unknown flag: --bogus"},
		{"extra argument", []string{"runs", "extra"}, 2, `unknown command "extra"`},
		{"missing argument", []string{"show"}, 2, "accepts 1 arg(s), received 0"},
		{"too many arguments", []string{"logs", "1", "a", "b"}, 2, "accepts between 1 and 2 arg(s), received 3"},
		{"missing check kind", []string{"check"}, 2, "requires at least 1 arg(s)"},
		{"explicitly empty state dir", []string{"--state-dir", "", "runs"}, 2, "--state-dir is empty"},
		{"jobs 0", []string{"run", "--jobs", "0"}, 2, "--jobs must be at least 1"},
		{"negative jobs", []string{"run", "--jobs", "-3"}, 2, "--jobs must be at least 1"},
		{"bogus status", []string{"runs", "--status", "bogus"}, 2, "--status must be one of"},
		{"negative limit", []string{"runs", "--limit", "-1"}, 2, "--limit must be 0 (all) or more"},
		{"runs", []string{"runs"}, 0, "ID"},
		{"runs with a real status", []string{"runs", "--status", "passed"}, 0, "ID"},
		{"no command shows help", nil, 0, "Available Commands"},
		{"parent command alone shows help", []string{"registry"}, 0, "Available Commands"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := runCLI(t, "", tc.args...)
			if code != tc.code {
				t.Errorf("gantry %s: exit %d, want %d; output:\n%s", strings.Join(tc.args, " "), code, tc.code, out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("gantry %s: output lacks %q:\n%s", strings.Join(tc.args, " "), tc.want, out)
			}
		})
	}
}
