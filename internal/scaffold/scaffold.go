// Package scaffold is what `gantry init` does: Detect reads a repository
// (Go modules and their main packages, tagged tests and the services their
// requirements point at, Terraform, Helm charts, kustomize overlays,
// Kubernetes manifests, Postman collections, k6 scripts, Prometheus rules)
// Measure runs the repository's checks once (tests with coverage, gosec,
// the vulnerability scan of its dependencies, the licence policy), and
// Generate writes the pipeline for it, each step with a comment saying
// which file it was made for, relaxed where the repository does not pass
// today (a coverage ratchet, lint and commit messages judged from the
// commit init saw, gosec rules excluded, expiring exceptions), each
// relaxation a comment and a report line. Write puts the files in place.
package scaffold

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// PipelinePath is where the pipeline is written.
const PipelinePath = ".gantry/pipeline.yaml"

// ErrExists is returned when a file is already there and overwriting was
// not asked for.
var ErrExists = errors.New("already exists")

// Files returns every file of the plan: the pipeline, then the
// companions.
func (p *Plan) Files() []File {
	return append([]File{{Path: PipelinePath, Content: p.Pipeline}}, p.Companions...)
}

// Write writes the plan's files under dir. Existing files are kept unless
// force is set (then none is written and the error wraps ErrExists); the
// paths written are returned.
func Write(dir string, p *Plan, force bool) ([]string, error) {
	var existing []string
	for _, f := range p.Files() {
		if _, err := os.Lstat(filepath.Join(dir, f.Path)); err == nil {
			existing = append(existing, f.Path)
		}
	}
	if len(existing) > 0 && !force {
		sort.Strings(existing)
		return nil, fmt.Errorf("%v %w (use --force to overwrite)", existing, ErrExists)
	}
	var written []string
	for _, f := range p.Files() {
		if err := writeFile(filepath.Join(dir, f.Path), f.Content); err != nil {
			return written, fmt.Errorf("write %s: %w", f.Path, err)
		}
		written = append(written, f.Path)
	}
	return written, nil
}

// writeFile replaces path atomically: a temp file in the same directory,
// synced, then renamed over it.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".init-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
