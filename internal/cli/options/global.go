// Package options holds the flag groups of gantry's commands, one file per
// group, each with AddFlags.
package options

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
)

// Global are the flags every command takes.
type Global struct {
	// StateDir holds run history, artifacts, the tool cache and the
	// embedded registry. Default: $GANTRY_STATE_DIR, else
	// $XDG_DATA_HOME/gantry (~/.local/share/gantry).
	StateDir string
	Verbose  bool
}

// AddFlags registers the global flags.
func (o *Global) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.StateDir, "state-dir", "", "directory for run history, artifacts and caches (default $GANTRY_STATE_DIR or ~/.local/share/gantry)")
	fs.BoolVarP(&o.Verbose, "verbose", "v", false, "log debug details to stderr")
}

// ResolveStateDir returns the state directory to use, creating it.
func (o *Global) ResolveStateDir() (string, error) {
	dir := o.StateDir
	if dir == "" {
		dir = os.Getenv("GANTRY_STATE_DIR")
	}
	if dir == "" {
		base := os.Getenv("XDG_DATA_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("find home directory for the state dir (set --state-dir): %w", err)
			}
			base = filepath.Join(home, ".local", "share")
		}
		dir = filepath.Join(base, "gantry")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("create state dir: %w", err)
	}
	return abs, nil
}
