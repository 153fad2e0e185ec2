package artifact

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// workspace builds:
//
//	root/
//	  a.txt
//	  coverage/index.html, coverage/pkg/x/y.html, coverage/pkg/z.txt
//	  dist/app, dist/sub/lib.so
//	  inlink -> coverage            (dir symlink inside)
//	  fileinlink -> a.txt           (file symlink inside)
//	  .git/HEAD
//	outside/secret, outside/dir/f
//	root/out-file -> outside/secret, root/out-dir -> outside/dir, root/broken -> root/nope
func workspace(t testing.TB) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root, outside = filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, f := range []string{
		"root/a.txt", "root/coverage/index.html", "root/coverage/pkg/x/y.html", "root/coverage/pkg/z.txt",
		"root/dist/app", "root/dist/sub/lib.so", "root/.git/HEAD", "outside/secret", "outside/dir/f",
	} {
		p := filepath.Join(base, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"root/inlink": "coverage", "root/fileinlink": "a.txt",
		"root/out-file": filepath.Join(outside, "secret"), "root/out-dir": "../outside/dir",
		"root/broken": "nope",
	} {
		if err := os.Symlink(target, filepath.Join(base, link)); err != nil {
			t.Fatal(err)
		}
	}
	return root, outside
}

func TestSafeJoin(t *testing.T) {
	root, _ := workspace(t)
	tests := []struct {
		rel     string
		want    string // relative to root; "" when an error is wanted
		errPart string
	}{
		{rel: "a.txt", want: "a.txt"},
		{rel: "./coverage/../a.txt", want: "a.txt"},
		{rel: "coverage/pkg/x/y.html", want: "coverage/pkg/x/y.html"},
		{rel: "new/dir/file", want: "new/dir/file"},
		{rel: ".", want: "."},
		{rel: "inlink/index.html", want: "inlink/index.html"},
		{rel: "inlink/../a.txt", want: "a.txt"},
		{rel: "fileinlink", want: "fileinlink"},
		{rel: "a.txt/below", want: "a.txt/below"},
		{rel: "..", errPart: "leaves the workspace"},
		{rel: "../outside/secret", errPart: "leaves the workspace"},
		{rel: "coverage/../../outside", errPart: "leaves the workspace"},
		{rel: "/etc/passwd", errPart: "is absolute"},
		{rel: "out-file", errPart: "symlink out-file, which points outside"},
		{rel: "out-dir/f", errPart: "symlink out-dir, which points outside"},
		{rel: "out-dir/new", errPart: "symlink out-dir, which points outside"},
		{rel: "broken", errPart: "broken symlink broken"},
		{rel: "", errPart: "empty path"},
		{rel: "a\x00b", errPart: "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.rel, func(t *testing.T) {
			got, err := SafeJoin(root, tt.rel)
			if tt.errPart != "" {
				if err == nil || !errors.Is(err, ErrUnsafePath) || !strings.Contains(err.Error(), tt.errPart) {
					t.Fatalf("SafeJoin(%q) = %q, %v; want an ErrUnsafePath error containing %q", tt.rel, got, err, tt.errPart)
				}
				if tt.rel != "" && !strings.Contains(err.Error(), tt.rel[:1]) {
					t.Errorf("error %q does not name the path %q", err, tt.rel)
				}
				return
			}
			if err != nil {
				t.Fatalf("SafeJoin(%q): %v", tt.rel, err)
			}
			if want := filepath.Join(root, tt.want); got != want {
				t.Errorf("SafeJoin(%q) = %s, want %s", tt.rel, got, want)
			}
		})
	}
}

func TestSafeJoinSymlinkedRoot(t *testing.T) {
	root, _ := workspace(t)
	link := filepath.Join(t.TempDir(), "ws")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	got, err := SafeJoin(link, "inlink/index.html")
	if err != nil || got != filepath.Join(link, "inlink/index.html") {
		t.Errorf("SafeJoin via a symlinked root = %s, %v; want %s", got, err, filepath.Join(link, "inlink/index.html"))
	}
	if _, err := SafeJoin(link, "out-file"); !errors.Is(err, ErrUnsafePath) {
		t.Errorf("SafeJoin(out-file) via a symlinked root: error %v, want ErrUnsafePath", err)
	}
}

func TestCollect(t *testing.T) {
	root, _ := workspace(t)
	tests := []struct {
		name     string
		patterns []string
		want     []string
		errPart  string
	}{
		{"file", []string{"a.txt"}, []string{"a.txt"}, ""},
		{"directory", []string{"dist"}, []string{"dist/app", "dist/sub/lib.so"}, ""},
		{"double star", []string{"coverage/**/*.html"}, []string{"coverage/index.html", "coverage/pkg/x/y.html"}, ""},
		{"star", []string{"coverage/*.html"}, []string{"coverage/index.html"}, ""},
		{"star matches dir", []string{"dist/*"}, []string{"dist/app", "dist/sub/lib.so"}, ""},
		{"leading double star", []string{"**/z.txt"}, []string{"coverage/pkg/z.txt"}, ""},
		{"dedup and sort", []string{"dist/app", "a.txt", "dist"}, []string{"a.txt", "dist/app", "dist/sub/lib.so"}, ""},
		{"symlink inside", []string{"fileinlink", "inlink/*.html"}, []string{"fileinlink", "inlink/index.html"}, ""},
		{"symlinked dir inside", []string{"inlink"}, []string{"inlink/index.html", "inlink/pkg/x/y.html", "inlink/pkg/z.txt"}, ""},
		{"no .git", []string{"**/HEAD"}, nil, `"**/HEAD" matches no file`},
		{"nothing", []string{"a.txt", "reports/*.xml"}, nil, `"reports/*.xml" matches no file`},
		{"missing file", []string{"nope.txt"}, nil, `"nope.txt" matches no file`},
		{"dotdot", []string{"../outside/secret"}, nil, "leaves the workspace"},
		{"dotdot glob", []string{"../outside/*"}, nil, "leaves the workspace"},
		{"absolute", []string{"/etc/passwd"}, nil, "is absolute"},
		{"symlink file outside", []string{"out-file"}, nil, "points outside"},
		{"symlink dir outside", []string{"out-dir"}, nil, "points outside"},
		{"glob through symlink outside", []string{"out-dir/*"}, nil, "points outside"},
		{"glob reaching symlink outside", []string{"out-*"}, nil, "points outside"},
		{"glob reaching broken symlink", []string{"b*"}, nil, "broken symlink broken"},
		{"bad glob", []string{"a[.txt"}, nil, "bad glob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Collect(root, tt.patterns)
			if tt.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errPart) {
					t.Fatalf("Collect(%q) = %v, %v; want an error containing %q", tt.patterns, got, err, tt.errPart)
				}
				return
			}
			if err != nil {
				t.Fatalf("Collect(%q): %v", tt.patterns, err)
			}
			var want []string
			for _, w := range tt.want {
				want = append(want, filepath.Join(root, w))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Collect(%q) =\n %v\nwant\n %v", tt.patterns, got, want)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pat, name string
		want      bool
	}{
		{"coverage/**/*.html", "coverage/a.html", true},
		{"coverage/**/*.html", "coverage/x/y/a.html", true},
		{"coverage/**/*.html", "coverage/a.txt", false},
		{"coverage/**/*.html", "other/a.html", false},
		{"**", "a/b/c", true},
		{"**/b", "b", true},
		{"a/**", "a", true},
		{"*.go", "a/b.go", false},
		{"?.go", "a.go", true},
	}
	for _, tt := range tests {
		if got := match(strings.Split(tt.pat, "/"), strings.Split(tt.name, "/")); got != tt.want {
			t.Errorf("match(%q, %q) = %v, want %v", tt.pat, tt.name, got, tt.want)
		}
	}
}
