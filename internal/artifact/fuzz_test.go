package artifact

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzSafeJoin checks that SafeJoin never returns a path outside the
// workspace, lexically or by following symlinks.
func FuzzSafeJoin(f *testing.F) {
	for _, seed := range []string{
		"a.txt", "..", "../x", "/etc/passwd", "out-file", "out-dir/f", "out-dir/../root/a.txt",
		"inlink/../../outside/secret", "inlink/pkg/../..", "broken/x", "a/b/../../..", ".", "./././a",
		"coverage//pkg/x", "fileinlink/x", "a\x00", "inlink/pkg/x/y.html",
	} {
		f.Add(seed)
	}
	root, _ := workspace(f)
	rootReal, err := filepath.EvalSymlinks(root)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, rel string) {
		got, err := SafeJoin(root, rel)
		if err != nil {
			return
		}
		if got != root && !strings.HasPrefix(got, root+string(filepath.Separator)) {
			t.Fatalf("SafeJoin(%q) = %s, lexically outside %s", rel, got, root)
		}
		// The deepest existing ancestor must resolve inside the root.
		p := got
		for {
			if _, err := os.Lstat(p); err == nil {
				break
			}
			p = filepath.Dir(p)
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Fatalf("SafeJoin(%q) = %s, whose existing part %s does not resolve: %v", rel, got, p, err)
		}
		if !within(rootReal, real) {
			t.Fatalf("SafeJoin(%q) = %s, which resolves to %s outside %s", rel, got, real, rootReal)
		}
	})
}
