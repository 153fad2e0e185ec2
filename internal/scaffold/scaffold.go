// Package scaffold holds the files `gantry init` writes into a repository:
// the seed pipeline and the configuration files its steps read. They are
// the same files examples/payment-service uses (a test keeps them equal).
package scaffold

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

//go:embed files
var files embed.FS

// File is one file to write: its path in the repository and where it is
// embedded.
type File struct {
	Path     string
	embedded string
}

// Files lists what init writes, in order.
func Files() []File {
	return []File{
		{Path: ".gantry/pipeline.yaml", embedded: "files/pipeline.yaml"},
		{Path: ".golangci.yml", embedded: "files/golangci.yml"},
		{Path: ".commitlintrc.json", embedded: "files/commitlintrc.json"},
	}
}

// Content returns a file's bytes.
func (f File) Content() ([]byte, error) { return fs.ReadFile(files, f.embedded) }

// ErrExists is returned when a file is already there and overwriting was
// not asked for.
var ErrExists = errors.New("already exists")

// Write writes every file under dir. Existing files are kept unless force
// is set; the paths written are returned.
func Write(dir string, force bool) ([]string, error) {
	var existing []string
	for _, f := range Files() {
		if _, err := os.Stat(filepath.Join(dir, f.Path)); err == nil {
			existing = append(existing, f.Path)
		}
	}
	if len(existing) > 0 && !force {
		sort.Strings(existing)
		return nil, fmt.Errorf("%v %w (use --force to overwrite)", existing, ErrExists)
	}
	var written []string
	for _, f := range Files() {
		b, err := f.Content()
		if err != nil {
			return written, err
		}
		path := filepath.Join(dir, f.Path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return written, fmt.Errorf("write %s: %w", f.Path, err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return written, fmt.Errorf("write %s: %w", f.Path, err)
		}
		written = append(written, f.Path)
	}
	return written, nil
}
