package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHelperMissing is run by TestMissing in a child process: it asks
// for what $TESTENV_HELPER names and reports the path it got.
func TestHelperMissing(t *testing.T) {
	what := os.Getenv("TESTENV_HELPER")
	if what == "" {
		t.Skip("helper process for TestMissing")
	}
	Optional["gantry-optional-test-tool"] = "listed by this test"
	switch kind, name, _ := strings.Cut(what, ":"); kind {
	case "tool":
		t.Log("found " + RequireTool(t, name, "install it"))
	case "data":
		t.Log("found " + RequireData(t, name))
	case "npm":
		t.Setenv(NPMInstallEnv, name)
		t.Log("found " + RequireNPMInstall(t, "installs from npm"))
	}
}

func TestMissing(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "present.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, what, ci string
		wantFail       bool
		wantOut        string
	}{
		{"missing tool outside CI skips", "tool:gantry-no-such-tool", "", false, "SKIP"},
		{"missing tool in CI fails", "tool:gantry-no-such-tool", "true", true, "CI=true"},
		{"CI=false is not CI", "tool:gantry-no-such-tool", "false", false, "SKIP"},
		{"optional tool in CI skips with its reason", "tool:gantry-optional-test-tool", "true", false, "listed by this test"},
		{"present tool passes in CI", "tool:sh", "true", false, "found /"},
		{"missing data in CI fails", "data:absent.json", "true", true, "absent.json"},
		{"missing data outside CI skips", "data:absent.json", "", false, "SKIP"},
		{"present data passes in CI", "data:present.json", "true", false, "found " + data},
		{"npm install outside CI skips", "npm:", "", false, "SKIP"},
		{"npm install outside CI asked for runs", "npm:1", "", false, "found /"},
		{"npm install in CI runs", "npm:", "true", false, "found /"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(exe, "-test.run=^TestHelperMissing$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), "TESTENV_HELPER="+tt.what, "CI="+tt.ci, DataEnv+"="+data)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if gotFail := err != nil; gotFail != tt.wantFail {
				t.Errorf("failed = %v, want %v; output:\n%s", gotFail, tt.wantFail, out.String())
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("output lacks %q:\n%s", tt.wantOut, out.String())
			}
		})
	}
}

// TestOptionalReasons keeps every entry of the optional list reasoned.
func TestOptionalReasons(t *testing.T) {
	for tool, why := range Optional {
		if len(strings.Fields(why)) < 3 {
			t.Errorf("Optional[%q] = %q: give the reason in a sentence", tool, why)
		}
	}
}

func TestDataDirFindsSharedData(t *testing.T) {
	t.Setenv(DataEnv, "")
	d := DataDir()
	if d == "" {
		Missing(t, "shared/data", "no shared/data beside the repository")
	}
	if _, err := os.Stat(filepath.Join(d, "go-vulndb-osv.tar.gz")); err != nil {
		t.Errorf("DataDir() = %s: %v", d, err)
	}
}
