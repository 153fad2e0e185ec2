package vulndb

import (
	"strings"
	"testing"
)

// FuzzFileName: whatever a source is called, its stored name stays one
// visible file inside the database directory.
func FuzzFileName(f *testing.F) {
	for _, s := range []string{OSVBase + "/Go/all.zip", "/data/osv.tar.gz", "http://h/../../x", "http://h/", "..", "a/b/.hidden.zip", "http://u:p@h/%2e%2e/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		for _, ext := range []string{".zip", ".tar.gz"} {
			name := fileName(0, src, ext, map[string]bool{})
			if strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ext) || strings.Contains(name, "..") {
				t.Errorf("fileName(%q, %s) = %q", src, ext, name)
			}
		}
	})
}
