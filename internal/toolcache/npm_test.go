package toolcache_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/gantry-ci/gantry/internal/toolcache"
)

// TestEnsureNPMInstallsOnce installs a real npm package into an empty
// cache from several goroutines at once (each with its own Cache, as
// steps have): one install, every caller gets the complete folder.
func TestEnsureNPMInstallsOnce(t *testing.T) {
	testenv.RequireNPMInstall(t, "installs from the npm registry (about 30 s)")
	dir := t.TempDir()
	tool := toolcache.NPMTool{Name: "fauxqs", Version: "2.4.1", Packages: []string{"fauxqs@2.4.1"}}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		logs strings.Builder
	)
	paths := make([]string, 3)
	errs := make([]error, 3)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out strings.Builder
			paths[i], errs[i] = toolcache.New(dir).EnsureNPM(t.Context(), tool, &out)
			mu.Lock()
			logs.WriteString(out.String())
			mu.Unlock()
		}()
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil {
			t.Fatalf("EnsureNPM %d: %v", i, errs[i])
		}
		if paths[i] != filepath.Join(dir, "fauxqs@2.4.1") {
			t.Errorf("EnsureNPM %d = %s", i, paths[i])
		}
	}
	if got := strings.Count(logs.String(), "installing fauxqs@2.4.1"); got != 1 {
		t.Errorf("installed %d times, want 1:\n%s", got, logs.String())
	}
	if _, err := os.Stat(filepath.Join(paths[0], "node_modules", "fauxqs", "dist", "cli.js")); err != nil {
		t.Error(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".install-*"))
	if len(left) != 0 {
		t.Errorf("temporary folders left: %v", left)
	}
}

func TestEnsureNPMErrors(t *testing.T) {
	npm := testenv.RequireTool(t, "npm", "apt-get install npm")
	tool := toolcache.NPMTool{Name: "fauxqs", Version: "2.4.1", Packages: []string{"fauxqs@2.4.1"}}
	t.Run("no npm", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		_, err := toolcache.New(t.TempDir()).EnsureNPM(t.Context(), tool, nil)
		if !errors.Is(err, toolcache.ErrNoNPM) || !strings.Contains(err.Error(), "npm install --prefix") {
			t.Errorf("err = %v, want ErrNoNPM naming the install command", err)
		}
	})
	t.Run("registry unreachable", func(t *testing.T) {
		// An empty npm cache and a registry nobody answers on: offline.
		t.Setenv("PATH", filepath.Dir(npm)+string(os.PathListSeparator)+os.Getenv("PATH"))
		t.Setenv("npm_config_cache", t.TempDir())
		t.Setenv("npm_config_registry", "http://127.0.0.1:9/")
		t.Setenv("npm_config_fetch_retries", "0")
		dir := t.TempDir()
		_, err := toolcache.New(dir).EnsureNPM(t.Context(), tool, nil)
		if err == nil || !strings.Contains(err.Error(), "without access to the npm registry") || !strings.Contains(err.Error(), "fauxqs@2.4.1") {
			t.Errorf("err = %v, want one naming what to install", err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 { // the lock file only
			t.Errorf("cache after a failed install holds %v", ents)
		}
	})
	t.Run("unpinned package", func(t *testing.T) {
		_, err := toolcache.New(t.TempDir()).EnsureNPM(t.Context(), toolcache.NPMTool{Name: "x", Version: "1", Packages: []string{"fauxqs"}}, nil)
		if err == nil || !strings.Contains(err.Error(), "NAME@VERSION") {
			t.Errorf("err = %v", err)
		}
	})
}

// TestEnsureUsesInstalled: an installed Go tool is used without go.
func TestEnsureUsesInstalled(t *testing.T) {
	dir := t.TempDir()
	tool := toolcache.Tool{Name: "fake", Package: "example.com/fake", Version: "v1.0.0"}
	c := toolcache.New(dir)
	if err := os.MkdirAll(filepath.Dir(c.Path(tool)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.Path(tool), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir()) // no go: an install would fail
	got, err := c.Ensure(t.Context(), tool, nil)
	if err != nil || got != c.Path(tool) {
		t.Errorf("Ensure = %s, %v; want the installed %s", got, err, c.Path(tool))
	}
}
