package cli

import (
	"strings"
	"testing"
)

func TestRunResumeFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "--resume", "1", "--stage", "build"}, ExitUsage, "--stage cannot be combined with --resume"},
		{[]string{"run", "--resume", "-1"}, ExitUsage, "--resume needs a run id"},
		{[]string{"run", "--resume", "7"}, ExitUsage, "run 7: not found"},
		{[]string{"approve", "7"}, ExitUsage, "not found"},
		{[]string{"reject", "7"}, ExitUsage, "--reason is required"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, code := runCLI(t, "", tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d %q, want %d containing %q", code, out, tc.code, tc.want)
			}
		})
	}
}
