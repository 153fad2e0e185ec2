package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScanTargetThatDoesNotExist: a path-looking TARGET that does not exist
// is "no such file or directory" (exit 2), never an image name looked up
// in a registry; something that is neither a path nor a reference says so.
func TestScanTargetThatDoesNotExist(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "osv") // an empty database: nothing to find
	if err := os.Mkdir(db, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		target, want string
	}{
		{"/nonexistent/path", "/nonexistent/path: no such file or directory"},
		{"./nope", "./nope: no such file or directory"},
		{"../nope/app", "../nope/app: no such file or directory"},
		{".", ""},
		{filepath.Join(dir, "missing") + "@sha256:" + strings.Repeat("a", 64), "no such file or directory"},
		{"Not A Reference!", `"Not A Reference!" is neither a file nor an image reference`},
	} {
		t.Run(tc.target, func(t *testing.T) {
			if tc.want == "" {
				return
			}
			out, code := runCLI(t, "", "scan", "--scanner", "gantry", "--db", db, tc.target)
			if code != ExitUsage || !strings.Contains(out, tc.want) {
				t.Errorf("gantry scan %s: exit %d, output %q; want exit %d and %q", tc.target, code, out, ExitUsage, tc.want)
			}
			if strings.Contains(out, "index.docker.io") || strings.Contains(out, "registry") {
				t.Errorf("gantry scan %s went to a registry: %s", tc.target, out)
			}
		})
	}
}

// FuzzCheckScanTarget: any TARGET text gets an answer without a panic, and
// a path-looking one that does not exist is never passed on as an image.
func FuzzCheckScanTarget(f *testing.F) {
	for _, s := range []string{"/nonexistent/path", "./x", "alpine:3.20", "repo@sha256:" + strings.Repeat("a", 64), "~/x", "..", "a b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		err := checkScanTarget(target)
		if err != nil || !pathLike(target) {
			return
		}
		path := target
		if dir, _, ok := strings.Cut(target, "@"); ok && pathLike(dir) {
			path = dir
		}
		if _, serr := os.Stat(path); serr != nil {
			t.Errorf("checkScanTarget(%q) = nil for a path that does not exist (%v)", target, serr)
		}
	})
}
