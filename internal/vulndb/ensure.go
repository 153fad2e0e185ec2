package vulndb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Located is the database a scan reads, and how it was found.
type Located struct {
	// Path is a directory or archive of OSV data, for vuln.Open.
	Path string
	// Meta is the record of a database gantry fetched; nil for a
	// database the user put in place or named.
	Meta *Meta
	// Warning is set when the database is used although it could not be
	// brought up to date.
	Warning string
}

// Offline reports whether getenv's OfflineEnv forbids fetching.
func Offline(getenv func(string) string) bool {
	switch strings.ToLower(strings.TrimSpace(getenv(OfflineEnv))) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// Ensure returns the database in the state directory, fetching it when
// there is none and updating it when older than MaxAge:
//   - fresh, or offline with one stored: used as is;
//   - stale and the update fails: used, with a Warning;
//   - none and it cannot be fetched (or offline): an error wrapping ErrNoDB
//     that says what to do.
//
// A database the user put in STATE_DIR/vulndb by hand (no record of a
// fetch), or as STATE_DIR/vulndb.tar.gz or .zip, is used as is.
func Ensure(ctx context.Context, o Options) (*Located, error) {
	o.defaults()
	if o.StateDir == "" {
		return nil, fmt.Errorf("%w: no state directory", ErrNoDB)
	}
	offline := o.Offline || Offline(o.Getenv)
	dir := Dir(o.StateDir)
	if loc, ok := userProvided(o.StateDir); ok {
		return loc, nil
	}
	meta, _ := ReadMeta(dir)
	if meta != nil && (offline || o.Now().Sub(meta.FetchedAt) < o.MaxAge) {
		return &Located{Path: dir, Meta: meta}, nil
	}
	if offline {
		return nil, fmt.Errorf("%w in %s and fetching is off (%s): run `gantry vulndb update` once online, or `gantry vulndb update --from FILE` with a .zip or .tar.gz of OSV files (e.g. %s)",
			ErrNoDB, dir, OfflineEnv, DefaultSources[0])
	}
	unlock, err := lock(ctx, filepath.Join(o.StateDir, "vulndb.lock"))
	if err != nil {
		return nil, fmt.Errorf("update vulnerability database: %w", err)
	}
	defer unlock()
	// Another step may have updated it while this one waited.
	meta, _ = ReadMeta(dir)
	if meta != nil && o.Now().Sub(meta.FetchedAt) < o.MaxAge {
		return &Located{Path: dir, Meta: meta}, nil
	}
	if meta == nil {
		fmt.Fprintf(o.Progress, "vulndb: no vulnerability database in %s yet; fetching it (first use)\n", dir)
	} else {
		fmt.Fprintf(o.Progress, "vulndb: the vulnerability database is %s old (over %s); updating it\n", age(o.Now().Sub(meta.FetchedAt)), o.MaxAge)
	}
	fresh, err := update(ctx, o, dir, meta)
	if err == nil {
		return &Located{Path: dir, Meta: fresh}, nil
	}
	if meta != nil {
		w := fmt.Sprintf("could not update the vulnerability database (%v); using the one fetched %s ago", err, age(o.Now().Sub(meta.FetchedAt)))
		fmt.Fprintf(o.Progress, "vulndb: warning: %s\n", w)
		return &Located{Path: dir, Meta: meta, Warning: w}, nil
	}
	return nil, fmt.Errorf("%w in %s: %w; fetch one with `gantry vulndb update --from URL|FILE` (a .zip or .tar.gz of OSV files), or set %s to one", ErrNoDB, dir, err, OverrideEnv)
}

// userProvided finds a database placed in the state dir by hand.
func userProvided(stateDir string) (*Located, bool) {
	dir := Dir(stateDir)
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		if _, err := ReadMeta(dir); errors.Is(err, os.ErrNotExist) && HasData(dir) {
			return &Located{Path: dir}, true
		}
	}
	for _, p := range []string{dir + ".tar.gz", dir + ".zip"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return &Located{Path: p}, true
		}
	}
	return nil, false
}

// HasData reports whether dir holds anything but hidden files (an update
// that never finished leaves only those).
func HasData(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			return true
		}
	}
	return false
}

func age(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
	return d.Round(time.Minute).String()
}
