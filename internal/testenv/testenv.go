// Package testenv is how tests find the peer tools and shared data they
// need. A test that cannot find one skips on a developer's machine but
// fails under CI=true, unless the tool is on the reasoned list in
// optional.go: CI cannot hide a skipped test.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// InCI reports whether the tests run in CI (CI set to anything but
// "", "0" or "false", as CI services set it).
func InCI() bool {
	switch os.Getenv("CI") {
	case "", "0", "false":
		return false
	}
	return true
}

// Missing ends a test that lacks a peer tool or data: it fails under
// CI=true unless what is listed in Optional, and skips otherwise. what
// names the tool or file; how says how to get it.
func Missing(t testing.TB, what, how string) {
	t.Helper()
	msg := fmt.Sprintf("%s not found: %s", what, how)
	if !InCI() {
		t.Skip(msg)
	}
	if why, ok := Optional[what]; ok {
		t.Skipf("%s (optional in CI: %s)", msg, why)
	}
	t.Fatalf("%s (CI=true: a missing peer fails the test instead of skipping it; install it in scripts/deps.sh or list it in internal/testenv/optional.go)", msg)
}

// RequireTool returns the path of the command name on PATH, or in
// $(go env GOPATH)/bin where `go install` puts peers; when it is in
// neither it calls Missing with the install hint how.
func RequireTool(t testing.TB, name, how string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := goBin(name); p != "" {
		return p
	}
	Missing(t, name, how)
	return ""
}

// NPMInstallEnv, set to anything but "", runs the tests that install
// from the npm registry outside CI.
const NPMInstallEnv = "GANTRY_TEST_NPM_INSTALL"

// RequireNPMInstall guards a test that installs packages from the npm
// registry (slow, network): it skips unless under CI=true or with
// NPMInstallEnv set; then it returns the path of npm as RequireTool does.
// what says what the test installs and how long that takes.
func RequireNPMInstall(t testing.TB, what string) string {
	t.Helper()
	if !InCI() && os.Getenv(NPMInstallEnv) == "" {
		t.Skipf("%s: runs under CI=true or %s=1", what, NPMInstallEnv)
	}
	return RequireTool(t, "npm", "apt-get install npm")
}

// goBin finds name in GOBIN or GOPATH/bin (default ~/go/bin).
func goBin(name string) string {
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		for _, p := range filepath.SplitList(gp) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	} else if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// DataEnv names the directory of the shared test data (the Go
// vulnerability database, CycloneDX schemas, Kubernetes OpenAPI).
const DataEnv = "GANTRY_TEST_DATA"

// DataDir returns $GANTRY_TEST_DATA, else the first shared/data found
// beside the repository or one of its parents (the repository's checkout
// and its worktrees), else "".
func DataDir() string {
	if d := os.Getenv(DataEnv); d != "" {
		return d
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	// file is REPO/internal/testenv/testenv.go.
	dir := filepath.Dir(filepath.Dir(filepath.Dir(file)))
	for {
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
		p := filepath.Join(dir, "shared", "data")
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p
		}
	}
}

// RequireData returns the path of file (slash-separated, relative to the
// shared data directory), calling Missing when it is not there.
func RequireData(t testing.TB, file string) string {
	t.Helper()
	dir := DataDir()
	if dir == "" {
		Missing(t, "shared data "+file, fmt.Sprintf("no shared/data beside the repository; set %s to the shared data directory (scripts/env.sh does)", DataEnv))
		return ""
	}
	p := filepath.Join(dir, filepath.FromSlash(file))
	if _, err := os.Stat(p); err != nil {
		Missing(t, "shared data "+file, fmt.Sprintf("%v; set %s to the shared data directory (scripts/env.sh does)", err, DataEnv))
	}
	return p
}
