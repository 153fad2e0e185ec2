package artifact

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Collect expands the artifact patterns a step declares, relative to the
// workspace root, into the files they name: absolute paths under root,
// sorted, without duplicates.
//
// A pattern is a slash-separated path. Without glob characters it names a
// file, or a directory meaning every file below it. With them, each
// segment is matched as by path.Match and a "**" segment matches any number
// of directories, so "coverage/**/*.html" matches coverage/index.html and
// coverage/pkg/a/b.html; a matched directory again means every file below
// it. Expansion never descends into a .git directory it was not
// pointed at. Symlinks to files are followed;
// symlinks to directories are not expanded. Every result is checked with
// SafeJoin, so a pattern reaching outside root (by "..", an absolute path
// or a symlink) is an error, and so is a pattern that matches nothing.
func Collect(root string, patterns []string) ([]string, error) {
	rootAbs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("collect artifacts: %w", err)
	}
	seen := map[string]bool{}
	var out []string
	for _, pat := range patterns {
		files, err := expand(rootAbs, pat)
		if err != nil {
			return nil, fmt.Errorf("collect artifacts %q: %w", pat, err)
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("collect artifacts: pattern %q matches no file under %s", pat, root)
		}
		for _, f := range files {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func expand(root, pat string) ([]string, error) {
	if pat == "" {
		return nil, fmt.Errorf("%w: empty pattern", ErrUnsafePath)
	}
	if path.IsAbs(pat) || filepath.IsAbs(pat) {
		return nil, fmt.Errorf("%w %q: is absolute; artifact paths are relative to the workspace", ErrUnsafePath, pat)
	}
	clean := path.Clean(pat)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return nil, fmt.Errorf("%w %q: its .. leaves the workspace", ErrUnsafePath, pat)
	}
	segs := strings.Split(clean, "/")
	for _, s := range segs {
		if _, err := path.Match(s, ""); err != nil {
			return nil, fmt.Errorf("bad glob segment %q: %w", s, err)
		}
	}
	literal := 0 // segments before the first one with glob characters
	for literal < len(segs) && !hasMeta(segs[literal]) {
		literal++
	}
	if literal == len(segs) { // a plain path
		p, err := SafeJoin(root, filepath.FromSlash(clean))
		if err != nil {
			return nil, err
		}
		return expandPath(root, p)
	}

	base := "."
	if literal > 0 {
		base = path.Join(segs[:literal]...)
	}
	baseDir, err := SafeJoin(root, filepath.FromSlash(base))
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(baseDir)
	if err != nil || !fi.IsDir() {
		return nil, nil // nothing can match
	}
	walkRoot := baseDir
	if lfi, err := os.Lstat(baseDir); err == nil && lfi.Mode()&fs.ModeSymlink != 0 {
		walkRoot += string(filepath.Separator) // a symlink inside root (SafeJoin said so): walk its target
	}
	deep := false
	for _, s := range segs {
		if s == "**" {
			deep = true
		}
	}
	var out []string
	err = filepath.WalkDir(walkRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		p = filepath.Clean(p)
		if p == baseDir {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := strings.Split(filepath.ToSlash(rel), "/")
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !match(segs, name) {
			if d.IsDir() && !deep && len(name) >= len(segs) {
				return filepath.SkipDir // too deep to match
			}
			return nil
		}
		checked, err := SafeJoin(root, rel)
		if err != nil {
			return err
		}
		files, err := expandPath(root, checked)
		if err != nil {
			return err
		}
		out = append(out, files...)
		if d.IsDir() {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// expandPath returns p if it is a file (or a symlink to one), or every
// file below p if it is a directory; p has passed SafeJoin.
func expandPath(root, p string) ([]string, error) {
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if fi, err = os.Stat(p); err != nil {
			return nil, err
		}
		if fi.Mode().IsRegular() {
			return []string{p}, nil
		}
		if !fi.IsDir() {
			return nil, nil
		}
		// A directory named through a symlink inside root: walk the link.
		p += string(filepath.Separator)
	}
	if fi.Mode().IsRegular() {
		return []string{p}, nil
	}
	if !fi.IsDir() {
		return nil, nil // devices, sockets, pipes are no artifacts
	}
	top := filepath.Clean(p)
	var out []string
	err = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		q = filepath.Clean(q)
		if d.IsDir() && d.Name() == ".git" && q != top {
			return filepath.SkipDir
		}
		rel, err := filepath.Rel(root, q)
		if err != nil {
			return err
		}
		switch {
		case d.Type().IsRegular():
			checked, err := SafeJoin(root, rel)
			if err != nil {
				return err
			}
			out = append(out, checked)
		case d.Type()&fs.ModeSymlink != 0:
			checked, err := SafeJoin(root, rel)
			if err != nil {
				return err
			}
			if fi, err := os.Stat(checked); err == nil && fi.Mode().IsRegular() {
				out = append(out, checked)
			}
		}
		return nil
	})
	return out, err
}

// match matches a path, split in segments, against a pattern whose "**"
// segments match zero or more segments.
func match(pat, name []string) bool {
	if len(pat) == 0 {
		return len(name) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(name); i++ {
			if match(pat[1:], name[i:]) {
				return true
			}
		}
		return false
	}
	if len(name) == 0 {
		return false
	}
	if ok, _ := path.Match(pat[0], name[0]); !ok {
		return false
	}
	return match(pat[1:], name[1:])
}

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }
