// Package options holds the flag groups of gantry's commands, one file per
// group, each with AddFlags.
package options

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
)

// Global are the flags every command takes.
type Global struct {
	// StateDir holds run history, artifacts, the tool cache and the
	// embedded registry. Default: $GANTRY_STATE_DIR, else
	// $XDG_DATA_HOME/gantry (~/.local/share/gantry).
	StateDir string
	// Store is the database of the run history: "" for SQLite in the
	// state dir, or a postgres:// URL. Default: $GANTRY_STORE.
	Store   string
	Verbose bool
}

// StoreEnv names the environment variable --store defaults to.
const StoreEnv = "GANTRY_STORE"

// AddFlags registers the global flags.
func (o *Global) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.StateDir, "state-dir", "", "directory for run history, artifacts and caches (default $GANTRY_STATE_DIR or ~/.local/share/gantry)")
	fs.StringVar(&o.Store, "store", "", "run history database: postgres://USER@HOST:PORT/DB?sslmode=... (default $"+StoreEnv+", else SQLite in the state dir)")
	fs.BoolVarP(&o.Verbose, "verbose", "v", false, "log debug details to stderr")
}

// ResolveStore returns the run history's database URL: --store, else
// $GANTRY_STORE; "" means SQLite in the state dir. Anything but a
// postgres:// or postgresql:// URL is refused (the message never repeats
// the value, which may hold a password).
func (o *Global) ResolveStore() (string, error) {
	u := o.Store
	if u == "" {
		u = os.Getenv(StoreEnv)
	}
	u = strings.TrimSpace(u)
	if u == "" {
		return "", nil
	}
	scheme, _, ok := strings.Cut(u, "://")
	if !ok || (!strings.EqualFold(scheme, "postgres") && !strings.EqualFold(scheme, "postgresql")) {
		return "", errors.New("--store (or $" + StoreEnv + "): want a postgres://USER@HOST:PORT/DATABASE URL, or nothing for SQLite in the state dir")
	}
	return u, nil
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
