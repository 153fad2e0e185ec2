package artifact

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func putBlob(t *testing.T, content string) (*Store, string) {
	t.Helper()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := s.Put(context.Background(), strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return s, d
}

// TestExportRefusesWhatIsNotARegularFile: a FIFO, socket, device,
// directory or symlink at the target is refused with a typed error and
// left as it was.
func TestExportRefusesWhatIsNotARegularFile(t *testing.T) {
	s, d := putBlob(t, "report")
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	// An existing directory receives the file under the artifact's name;
	// a directory already at that name is refused.
	if err := os.Mkdir(filepath.Join(sub, "report.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, to string
		want     error
	}{
		{"fifo", fifo, ErrNotRegular},
		{"socket", sock, ErrNotRegular},
		{"directory in the way", sub, ErrNotRegular},
		{"symlink", link, ErrSymlink},
		{"dangling symlink", dangling, ErrSymlink},
	}
	dev := filepath.Join(dir, "full")
	if err := syscall.Mknod(dev, syscall.S_IFCHR|0o666, int(unixMkdev(1, 7))); err == nil {
		tests = append(tests, struct {
			name, to string
			want     error
		}{"character device", dev, ErrNotRegular})
	} else {
		t.Logf("no device node test: mknod: %v (needs root)", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := os.Lstat(tt.to)
			_, err := s.Export(context.Background(), d, tt.to, "report.txt", false)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Export to %s: got %v, want %v", tt.name, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.to) {
				t.Errorf("error %q does not name the path", err)
			}
			after, lerr := os.Lstat(tt.to)
			if lerr != nil || after.Mode() != before.Mode() {
				t.Errorf("%s changed: before %v, after %v (%v)", tt.to, before.Mode(), after, lerr)
			}
			// --force does not change the answer.
			if _, err := s.Export(context.Background(), d, tt.to, "report.txt", true); !errors.Is(err, tt.want) {
				t.Errorf("Export with force to %s: got %v, want %v", tt.name, err, tt.want)
			}
		})
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("the symlink's target was written through: %q", b)
	}
}

// TestExportModes: a new file is 0644; an existing regular file is
// refused without force and keeps its mode when overwritten with force.
func TestExportModes(t *testing.T) {
	s, d := putBlob(t, "report")
	dir := t.TempDir()

	fresh := filepath.Join(dir, "new.txt")
	got, err := s.Export(context.Background(), d, fresh, "report.txt", false)
	if err != nil {
		t.Fatal(err)
	}
	if got != fresh {
		t.Errorf("wrote %s, want %s", got, fresh)
	}
	assertFile(t, fresh, "report", 0o644)

	got, err = s.Export(context.Background(), d, dir, "a/b/report.txt", false)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "report.txt"); got != want {
		t.Errorf("into a directory: wrote %s, want %s", got, want)
	}

	exe := filepath.Join(dir, "tool")
	if err := os.WriteFile(exe, []byte("old"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(exe, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Export(context.Background(), d, exe, "report.txt", false); !errors.Is(err, ErrExists) {
		t.Fatalf("overwrite without force: got %v, want %v", err, ErrExists)
	}
	assertFile(t, exe, "old", 0o755)
	if _, err := s.Export(context.Background(), d, exe, "report.txt", true); err != nil {
		t.Fatalf("overwrite with force: %v", err)
	}
	assertFile(t, exe, "report", 0o755)

	if _, err := s.Export(context.Background(), d, filepath.Join(dir, "missing", "x"), "report.txt", false); err == nil {
		t.Error("export into a missing directory: want an error")
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".gantry-artifact-*"))
	if len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func assertFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != mode {
		t.Errorf("%s: mode %v, want a regular file with %v", path, fi.Mode(), mode)
	}
	if b, _ := os.ReadFile(path); string(b) != content {
		t.Errorf("%s: content %q, want %q", path, b, content)
	}
}

func unixMkdev(major, minor uint32) uint64 {
	return uint64(major)<<8 | uint64(minor)
}
