package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Errors of Export, for callers to tell a refused target from a failed
// write.
var (
	// ErrNotRegular: something other than a regular file (a device, FIFO,
	// socket or directory) is at the target path.
	ErrNotRegular = errors.New("not a regular file")
	// ErrSymlink: the target path is a symbolic link, which Export
	// neither follows nor replaces.
	ErrSymlink = errors.New("is a symbolic link")
	// ErrExists: a regular file is at the target and force was not given.
	ErrExists = errors.New("file exists")
)

// NewFileMode is the mode of a file Export creates.
const NewFileMode = 0o644

// Export copies the blob with digest to the file at path and returns the
// path written. When path is an existing directory the file is written
// inside it under name's last element. The file is written beside the
// target and renamed over it, so the target is either the old file or the
// complete new one.
//
// The target must be absent or a regular file: a device, FIFO, socket or
// directory is refused (ErrNotRegular), and so is a symbolic link, even
// one to a regular file (ErrSymlink). An existing regular file is
// replaced only with force (else ErrExists), and keeps its permission
// bits; a new file gets NewFileMode.
func (s *Store) Export(ctx context.Context, digest, path, name string, force bool) (string, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, filepath.Base(filepath.FromSlash(name)))
	}
	mode := fs.FileMode(NewFileMode)
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return path, fmt.Errorf("write artifact to %s: %w", path, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return path, fmt.Errorf("write artifact to %s: %w; give the path it points to, or remove the link", path, ErrSymlink)
	case !fi.Mode().IsRegular():
		return path, fmt.Errorf("write artifact to %s: %w (it is a %s)", path, ErrNotRegular, kindOf(fi.Mode()))
	case !force:
		return path, fmt.Errorf("write artifact to %s: %w; pass --force to overwrite it", path, ErrExists)
	default:
		mode = fi.Mode().Perm()
	}
	rc, err := s.Open(digest)
	if err != nil {
		return path, err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".gantry-artifact-*")
	if err != nil {
		return path, fmt.Errorf("write artifact to %s: %w", path, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, ctxReader{ctx, rc}); err != nil {
		return path, fmt.Errorf("write artifact to %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return path, fmt.Errorf("write artifact to %s: sync: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return path, fmt.Errorf("write artifact to %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return path, fmt.Errorf("write artifact to %s: close: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		done = true
		return path, fmt.Errorf("write artifact to %s: %w", path, err)
	}
	done = true
	return path, nil
}

func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return "special file"
}
