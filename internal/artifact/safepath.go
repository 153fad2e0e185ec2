package artifact

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrUnsafePath is returned (wrapped, with the path and the reason) for a
// declared artifact path that would leave the workspace.
var ErrUnsafePath = errors.New("unsafe artifact path")

// SafeJoin resolves rel, an artifact path declared relative to the
// workspace root, and returns root/rel. It refuses, with an error wrapping
// ErrUnsafePath that names the path and the reason: absolute paths, paths
// whose ".." leaves root, and paths that leave root through a symlink (or
// go through a broken one). Symlinks that stay inside root are fine. The
// part of the path that does not exist yet cannot be a symlink and is
// joined as written.
func SafeJoin(root, rel string) (string, error) {
	unsafe := func(why string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrUnsafePath, rel, fmt.Sprintf(why, args...))
	}
	switch {
	case rel == "":
		return "", fmt.Errorf("%w: empty path", ErrUnsafePath)
	case strings.IndexByte(rel, 0) >= 0:
		return "", unsafe("contains a NUL byte")
	case filepath.IsAbs(rel):
		return "", unsafe("is absolute; artifact paths are relative to the workspace")
	}
	clean := filepath.Clean(rel)
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", unsafe("its .. leaves the workspace")
	}
	rootAbs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("resolve workspace %s: %w", root, err)
	}
	rootReal, err := filepath.EvalSymlinks(rootAbs)
	if err != nil {
		return "", fmt.Errorf("resolve workspace %s: %w", root, err)
	}
	if clean == "." {
		return rootAbs, nil
	}
	// Walk the existing part component by component, resolving symlinks
	// as the kernel would. clean has no ".." left, so the lexical result
	// root/clean and this walk name the same file.
	cur := rootReal
	parts := strings.Split(clean, string(filepath.Separator))
	for i, p := range parts {
		next := filepath.Join(cur, p)
		fi, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			break // nothing below can be a symlink
		}
		if err != nil {
			return "", fmt.Errorf("resolve artifact path %q: %w", rel, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		shown := filepath.Join(parts[:i+1]...)
		target, err := filepath.EvalSymlinks(next)
		if err != nil {
			return "", unsafe("goes through the broken symlink %s", shown)
		}
		if !within(rootReal, target) {
			return "", unsafe("goes through the symlink %s, which points outside the workspace (to %s)", shown, target)
		}
		cur = target
	}
	return filepath.Join(rootAbs, clean), nil
}

// within reports whether p is root or below it; both are clean and
// absolute.
func within(root, p string) bool {
	r, err := filepath.Rel(root, p)
	return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) && !filepath.IsAbs(r)
}
