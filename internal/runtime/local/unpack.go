package local

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// ErrUnsafeLayer is wrapped by the error for a layer entry that would write
// outside the root filesystem: an absolute path, a ".." component, or a path
// through a symbolic link that leads out of the root.
var ErrUnsafeLayer = errors.New("unsafe layer entry")

const (
	whiteoutPrefix = ".wh."
	opaqueWhiteout = ".wh..wh..opq"
)

// cleanName turns a tar entry name into a path relative to the root, or
// fails for an absolute name or one with a ".." component.
func cleanName(n string) (string, error) {
	if strings.HasPrefix(n, "/") {
		return "", fmt.Errorf("%w: %q is absolute", ErrUnsafeLayer, n)
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: %q leaves the root", ErrUnsafeLayer, n)
		}
	}
	c := path.Clean(n)
	if c == "." {
		return "", nil
	}
	return c, nil
}

// applyLayer writes one layer's tar stream into root.
func applyLayer(root *os.Root, r io.Reader) error {
	tr := tar.NewReader(r)
	// written holds the paths this layer created, which an opaque whiteout
	// in the same layer keeps.
	written := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		name, err := cleanName(h.Name)
		if err != nil {
			return err
		}
		if name == "" {
			continue // the root itself
		}
		dir, base := path.Split(name)
		// Symbolic links in the parent resolve as inside the container:
		// an absolute target or ".." never leaves the root.
		if dir, err = resolveDir(root, dir); err != nil {
			return fmt.Errorf("entry %q: %w", h.Name, err)
		}
		name = path.Join(dir, base)
		if base == opaqueWhiteout {
			if err := clearDir(root, dir, written); err != nil {
				return fmt.Errorf("opaque whiteout %q: %w", h.Name, err)
			}
			continue
		}
		if hidden, ok := strings.CutPrefix(base, whiteoutPrefix); ok {
			if err := root.RemoveAll(path.Join(dir, hidden)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("whiteout %q: %w", h.Name, err)
			}
			continue
		}
		if err := writeEntry(root, tr, h, name, dir); err != nil {
			return fmt.Errorf("entry %q: %w", h.Name, err)
		}
		written[name] = true
	}
}

func writeEntry(root *os.Root, tr *tar.Reader, h *tar.Header, name, dir string) error {
	mode := fs.FileMode(h.Mode).Perm()
	if h.Mode&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if h.Mode&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if h.Mode&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	existing, lerr := root.Lstat(name)
	if h.Typeflag == tar.TypeDir {
		if lerr == nil && !existing.IsDir() {
			if err := root.Remove(name); err != nil {
				return err
			}
			lerr = fs.ErrNotExist
		}
		if lerr != nil {
			if err := root.Mkdir(name, 0o755); err != nil {
				return err
			}
		}
		return setMeta(root, name, h, mode)
	}
	// Replace what is there, never write through it (it may be a link).
	if lerr == nil {
		if err := root.RemoveAll(name); err != nil {
			return err
		}
	}
	switch h.Typeflag {
	case tar.TypeReg:
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		// Owner and mode through the open file: no second path walk.
		_, err = io.Copy(f, tr)
		if err == nil && os.Geteuid() == 0 {
			err = f.Chown(h.Uid, h.Gid)
		}
		if err == nil {
			err = f.Chmod(mode)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	case tar.TypeSymlink:
		// The target is not followed here; later entries that go through
		// the link are resolved inside the root by os.Root.
		if err := root.Symlink(h.Linkname, name); err != nil {
			return err
		}
		return lchown(root, name, h)
	case tar.TypeLink:
		target, err := cleanName(h.Linkname)
		if err != nil {
			return err
		}
		tdir, tbase := path.Split(target)
		if tdir, err = resolveDir(root, tdir); err != nil {
			return err
		}
		return root.Link(path.Join(tdir, tbase), name)
	default:
		// Devices, FIFOs and the like have no place in an application
		// image; the runtime provides /dev.
		return nil
	}
}

func setMeta(root *os.Root, name string, h *tar.Header, mode fs.FileMode) error {
	if err := lchown(root, name, h); err != nil {
		return err
	}
	return root.Chmod(name, mode)
}

// lchown gives the entry its owner; without root (plain processes) the
// files stay the current user's.
func lchown(root *os.Root, name string, h *tar.Header) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return root.Lchown(name, h.Uid, h.Gid)
}

// clearDir removes what lower layers put in dir (an opaque whiteout),
// keeping what the current layer wrote.
func clearDir(root *os.Root, dir string, written map[string]bool) error {
	f, err := root.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		p := path.Join(dir, n)
		if written[p] {
			continue
		}
		if err := root.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}

// resolveDir resolves the directory dir (relative to the root) to a path
// without symbolic links, following them as the container would see them
// (an absolute target starts at the root, ".." stops at it) and creating
// missing directories.
func resolveDir(root *os.Root, dir string) (string, error) {
	cur := "."
	rest := strings.Split(dir, "/")
	links := 0
	for len(rest) > 0 {
		part := rest[0]
		rest = rest[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, part)
		fi, err := root.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			if err := root.Mkdir(next, 0o755); err != nil {
				return "", err
			}
			cur = next
			continue
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if links++; links > maxLinks {
				return "", fmt.Errorf("%s: too many levels of symbolic links", dir)
			}
			target, err := root.Readlink(next)
			if err != nil {
				return "", err
			}
			if path.IsAbs(target) {
				cur = "."
			}
			rest = append(strings.Split(target, "/"), rest...)
			continue
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("%s is not a directory", next)
		}
		cur = next
	}
	return cur, nil
}
