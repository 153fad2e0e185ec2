package toolcache_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/gantry-ci/gantry/internal/toolcache"
)

// TestEnsureNewman installs the pinned newman into an empty cache with the
// real npm, printing a progress line, then finds it without installing.
func TestEnsureNewman(t *testing.T) {
	testenv.RequireNPMInstall(t, "installs newman from the npm registry (about 20 s)")
	node := testenv.RequireTool(t, "node", "apt-get install nodejs")
	cache := toolcache.New(t.TempDir())
	var progress strings.Builder
	script, err := cache.EnsureNewman(t.Context(), &progress)
	if err != nil {
		t.Fatal(err)
	}
	if want := "installing newman@" + toolcache.NewmanVersion + " with npm"; !strings.Contains(progress.String(), want) {
		t.Errorf("progress: got %q, want a line %q", progress.String(), want)
	}
	if filepath.Base(script) != "newman.js" {
		t.Errorf("script: got %s, want .../newman.js", script)
	}
	out, err := exec.CommandContext(t.Context(), node, script, "--version").Output()
	if err != nil || strings.TrimSpace(string(out)) != toolcache.NewmanVersion {
		t.Errorf("newman --version: got %q (%v), want %s", out, err, toolcache.NewmanVersion)
	}
	progress.Reset()
	again, err := cache.EnsureNewman(t.Context(), &progress)
	if err != nil || again != script || progress.Len() != 0 {
		t.Errorf("second EnsureNewman: got %s %v, progress %q; want %s without installing", again, err, progress.String(), script)
	}
}
