package toolcache_test

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/golangcilint"
	"github.com/gantry-ci/gantry/internal/service/sqs"
	"github.com/gantry-ci/gantry/internal/steps/k6"
	"github.com/gantry-ci/gantry/internal/tflint"
	"github.com/gantry-ci/gantry/internal/toolcache"
)

// TestDepsScriptMatchesPins keeps scripts/deps.sh, which fills the tool
// cache ahead of the tests, on the versions gantry pins.
func TestDepsScriptMatchesPins(t *testing.T) {
	b, err := os.ReadFile("../../scripts/deps.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []toolcache.Tool{golangcilint.Tool, tflint.Tool} {
		want := "install_cached_tool " + tool.Name + " " + tool.Package + " " + tool.Version
		if !strings.Contains(string(b), want) {
			t.Errorf("scripts/deps.sh lacks %q", want)
		}
	}
}

func TestDir(t *testing.T) {
	t.Setenv(toolcache.DirEnv, "")
	if got, want := toolcache.Dir("/state"), "/state/tools"; got != want {
		t.Errorf("Dir: got %s, want %s", got, want)
	}
	t.Setenv(toolcache.DirEnv, "/shared/tools")
	if got, want := toolcache.Dir("/state"), "/shared/tools"; got != want {
		t.Errorf("Dir with %s: got %s, want %s", toolcache.DirEnv, got, want)
	}
}

// TestDepsScriptMatchesPeerPins keeps the k6 that scripts/deps.sh puts on
// PATH for the CI=true tests on the k6 step's pin.
func TestDepsScriptMatchesPeerPins(t *testing.T) {
	b, err := os.ReadFile("../../scripts/deps.sh")
	if err != nil {
		t.Fatal(err)
	}
	want := "install_go_tool k6 " + k6.Tool.Package + "@" + k6.Tool.Version
	if !strings.Contains(string(b), want) {
		t.Errorf("scripts/deps.sh lacks %q", want)
	}
}

// TestDepsScriptMatchesNPMPins keeps the npm tools scripts/deps.sh puts in
// the tool cache on gantry's pins.
func TestDepsScriptMatchesNPMPins(t *testing.T) {
	b, err := os.ReadFile("../../scripts/deps.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []toolcache.NPMTool{sqs.Fauxqs, toolcache.Newman} {
		want := "install_npm_tool " + tool.Name + " " + tool.Version + " " + strings.Join(tool.Packages, " ")
		if runtime.GOARCH == "amd64" && !strings.Contains(string(b), want) {
			t.Errorf("scripts/deps.sh lacks %q", want)
		}
	}
}
