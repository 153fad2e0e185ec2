package commitlint

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/testenv"
)

var peerRule = regexp.MustCompile(`(?m)^(✖|⚠)\s+.*\[([a-z-]+)\]$`)

// runCommitlint runs the real commitlint (npm @commitlint/cli) on msg with
// the config in dir and returns the failed rules ("!" for warnings).
func runCommitlint(t *testing.T, bin, dir, msg string) []string {
	t.Helper()
	cmd := proc.Command(context.Background(), bin)
	cmd.Dir = dir
	// Plain output: commitlint colours it when it detects CI.
	cmd.Env = append(os.Environ(), "FORCE_COLOR=0", "NO_COLOR=1")
	cmd.Stdin = strings.NewReader(msg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("run commitlint: %v", err)
	}
	var got []string
	for _, m := range peerRule.FindAllStringSubmatch(out.String(), -1) {
		n := m[2]
		if m[1] == "⚠" {
			n = "!" + n
		}
		got = append(got, n)
	}
	slices.Sort(got)
	return got
}

// TestSameVerdictsAsCommitlint runs every message of the table through the
// real commitlint with config-conventional and asserts the same failed
// rules. Install the peer with
// `npm i -g @commitlint/cli @commitlint/config-conventional`.
func TestSameVerdictsAsCommitlint(t *testing.T) {
	bin, err := exec.LookPath("commitlint")
	if err != nil {
		testenv.Missing(t, "commitlint", "npm i -g @commitlint/cli @commitlint/config-conventional")
	}
	if testing.Short() {
		t.Skip("runs node once per message")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".commitlintrc.json"), []byte(`{"extends": ["@commitlint/config-conventional"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Conventional()
	for _, tc := range messages {
		t.Run(tc.name, func(t *testing.T) {
			want := runCommitlint(t, bin, dir, tc.msg)
			got := problemNames(cfg.Lint(tc.msg))
			if !slices.Equal(got, want) {
				t.Errorf("message %q: gantry %v, commitlint %v", tc.msg, got, want)
			}
		})
	}
}
