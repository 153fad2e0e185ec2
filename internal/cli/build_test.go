package cli

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/testenv"
)

func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := New()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	if err != nil {
		t.Logf("stderr: %s\nerr: %v", errb.String(), err)
	}
	return out.String(), Code(err)
}

func TestBuildPushPrintsReference(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "go", "install Go")
	}
	state := t.TempDir()
	out, code := run(t, "--state-dir", state, "build", "../oci/testdata/hello", "--platform", "linux/amd64")
	if code != 0 || !strings.HasPrefix(strings.TrimSpace(out), "sha256:") {
		t.Fatalf("build: code %d, out %q", code, out)
	}
	digest := strings.TrimSpace(out)
	out, code = run(t, "--state-dir", state, "build", "../oci/testdata/hello", "--platform", "linux/amd64", "--image", "embedded/hello:dev", "--push")
	if code != 0 || !strings.HasSuffix(strings.TrimSpace(out), "/hello@"+digest) {
		t.Fatalf("build --push: code %d, out %q, want .../hello@%s", code, out, digest)
	}
	if _, code := run(t, "--state-dir", state, "build", "--push"); code != ExitUsage {
		t.Errorf("--push without --image: exit %d, want %d", code, ExitUsage)
	}
}

func TestTestExitCodes(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "go", "install Go")
	}
	state := t.TempDir()
	if out, code := run(t, "--state-dir", state, "test", "../steps/gotest/testdata/fail", "--race=false", "--out", t.TempDir()); code != ExitFailed || !strings.Contains(out, "TestFails") {
		t.Errorf("failing tests: exit %d, out %q", code, out)
	}
	if out, code := run(t, "--state-dir", state, "test", "../steps/gotest/testdata/cover", "--race=false", "--out", t.TempDir()); code != 0 || !strings.Contains(out, "coverage") {
		t.Errorf("passing tests: exit %d, out %q", code, out)
	}
	if _, code := run(t, "--state-dir", state, "test", ".", "--services", "mysql"); code != ExitUsage {
		t.Errorf("unknown service: exit %d, want %d", code, ExitUsage)
	}
}
