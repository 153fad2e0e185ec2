package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gantry-ci/gantry/internal/proc"
)

// record is what an instance leaves in its directory (state.json) while
// it runs, so that a later process starting the same ID can end what a
// killed one left behind.
type record struct {
	// Group is the process group of the supervised child (runc run or
	// the plain process).
	Group proc.Group `json:"group"`
	// Container is the runc container ID, "" for a plain process.
	Container string `json:"container,omitempty"`
	// Overlay is the mounted writable root, if any.
	Overlay string `json:"overlay,omitempty"`
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

func writeRecord(dir string, rec record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp := statePath(dir) + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("record instance state: %w", err)
	}
	_, werr := f.Write(b)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("record instance state: %w", err)
	}
	if err := os.Rename(tmp, statePath(dir)); err != nil {
		return fmt.Errorf("record instance state: %w", err)
	}
	return nil
}

// EndLeftover ends what an earlier process left running for instance id
// whose directory is dir (the InstanceSpec's Dir, or "" for InstanceDir),
// as Start does before it starts an ID: the recorded process group, the
// runc container, the overlay mount. The controller calls it for instances
// it will not start again (those of a revision a killed serve process was
// replacing). An ID this runtime supervises is refused.
func (r *Runtime) EndLeftover(ctx context.Context, id, dir string) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("%w: %q", ErrInvalidID, id)
	}
	if dir == "" {
		dir = r.InstanceDir(id)
	}
	if !r.claim(id) {
		return fmt.Errorf("instance %s: %w", id, ErrInstanceRunning)
	}
	defer r.release(id)
	return r.cleanLeftover(ctx, id, dir)
}

// cleanLeftover ends what a previous owner of the instance directory left
// running: its process group, its runc container (deleted by ID in any
// case, as a record may be missing after a crash), its overlay mount.
func (r *Runtime) cleanLeftover(ctx context.Context, id, dir string) error {
	var rec record
	b, err := os.ReadFile(statePath(dir))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("read the state of instance %s: %w", id, err)
	default:
		if err := json.Unmarshal(b, &rec); err != nil {
			r.log.Warn("instance state unreadable; ignored", "instance", id, "err", err)
			rec = record{}
		}
	}
	if rec.Group.PGID > 1 {
		left, err := proc.End(ctx, rec.Group, proc.WaitDelay)
		if err != nil {
			return fmt.Errorf("end the leftover processes of instance %s: %w", id, err)
		}
		if len(left) > 0 {
			r.log.Info("ended leftover instance processes", "instance", id, "processes", proc.Names(left))
		}
	}
	if r.runc != "" {
		if err := r.deleteContainer(ctx, id); err != nil {
			r.log.Debug("no leftover container", "instance", id, "err", err)
		}
	}
	if rec.Overlay != "" {
		unmount(rec.Overlay)
	}
	if err := os.Remove(statePath(dir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the state of instance %s: %w", id, err)
	}
	return nil
}
