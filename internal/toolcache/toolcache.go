// Package toolcache installs pinned tools on first use into gantry's tool
// cache and reuses them afterwards: Go tools (golangci-lint, tflint, k6,
// ...) with `go install`, npm packages (fauxqs and the Node.js it runs
// on) with `npm install`. Installs of one tool take turns across
// goroutines and processes (a lock file per tool), so steps that start at
// once install it once.
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

	"github.com/gantry-ci/gantry/internal/flock"
	"github.com/gantry-ci/gantry/internal/proc"
)

// Tool is a Go command pinned to one version.
type Tool struct {
	// Name is the binary's name, e.g. "golangci-lint".
	Name string
	// Package is the main package path, e.g.
	// "github.com/golangci/golangci-lint/v2/cmd/golangci-lint".
	Package string
	// Version is the module version, e.g. "v2.5.0".
	Version string
}

// Cache is a directory of installed tools, one folder per name@version.
type Cache struct {
	dir string
}

// New returns the cache rooted at dir (usually STATE_DIR/tools).
func New(dir string) *Cache { return &Cache{dir: dir} }

// ErrNoGo is returned when a tool is missing and cannot be installed
// because no Go toolchain is on PATH.
var ErrNoGo = errors.New("the go command is not on PATH")

// Path returns where t is installed, whether or not it is.
func (c *Cache) Path(t Tool) string {
	return filepath.Join(c.dir, t.Name+"@"+t.Version, t.Name)
}

// Ensure returns the path of t's binary, installing it first if needed.
// Progress of an install goes to progress (may be nil).
func (c *Cache) Ensure(ctx context.Context, t Tool, progress io.Writer) (string, error) {
	bin := c.Path(t)
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	unlock, err := c.lock(ctx, t.Name+"@"+t.Version)
	if err != nil {
		return "", fmt.Errorf("install %s %s: %w", t.Name, t.Version, err)
	}
	defer unlock()
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("install %s %s: %w; install Go or put %s on PATH", t.Name, t.Version, ErrNoGo, t.Name)
	}
	if progress == nil {
		progress = io.Discard
	}
	tmp, err := os.MkdirTemp(c.dirOrCreate(), ".install-*")
	if err != nil {
		return "", fmt.Errorf("install %s: %w", t.Name, err)
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(progress, "installing %s@%s with go install (first use; later runs reuse it)\n", t.Package, t.Version)
	cmd := proc.Command(ctx, goBin, "install", t.Package+"@"+t.Version)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, progress)
	cmd.Stderr = io.MultiWriter(&out, progress)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("install %s@%s: %w: %s\n(without network access, install %s %s yourself and put it on PATH or in %s)",
			t.Package, t.Version, err, strings.TrimSpace(lastLines(out.String(), 5)), t.Name, t.Version, filepath.Dir(bin))
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", fmt.Errorf("install %s: %w", t.Name, err)
	}
	if err := os.Rename(filepath.Join(tmp, t.Name), bin); err != nil {
		return "", fmt.Errorf("install %s: %w", t.Name, err)
	}
	return bin, nil
}

func (c *Cache) dirOrCreate() string {
	_ = os.MkdirAll(c.dir, 0o755)
	return c.dir
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// DirEnv overrides where tools are cached, so several state directories
// (or CI jobs) can share one tool cache.
const DirEnv = "GANTRY_TOOL_CACHE"

// DefaultDir is the tool cache of the default state directory, for code
// that is not handed one (the step services): $GANTRY_TOOL_CACHE, else
// $GANTRY_STATE_DIR/tools, else $XDG_DATA_HOME/gantry/tools
// (~/.local/share/gantry/tools).
func DefaultDir() string {
	if d := os.Getenv(DirEnv); d != "" {
		return d
	}
	if sd := os.Getenv("GANTRY_STATE_DIR"); sd != "" {
		return filepath.Join(sd, "tools")
	}
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return filepath.Join(os.TempDir(), "gantry-tools")
		}
		base = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(base, "gantry", "tools")
}

// Dir returns the tool cache directory for a state directory:
// $GANTRY_TOOL_CACHE if set, else STATE_DIR/tools.
func Dir(stateDir string) string {
	if d := os.Getenv(DirEnv); d != "" {
		return d
	}
	return filepath.Join(stateDir, "tools")
}

// lock takes the install lock of one tool (DIR/.NAME@VERSION.lock): an
// flock, so that goroutines with their own Cache and other gantry
// processes take turns. It waits until ctx ends.
func (c *Cache) lock(ctx context.Context, id string) (func(), error) {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create tool cache: %w", err)
	}
	unlock, err := flock.Lock(ctx, filepath.Join(c.dir, "."+id+".lock"))
	if err != nil {
		return nil, fmt.Errorf("wait for another install of %s: %w", id, err)
	}
	return unlock, nil
}
