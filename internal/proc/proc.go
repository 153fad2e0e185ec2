// Package proc runs child processes so that cancelling a run kills them and
// everything they started.
//
// Every command runs in its own process group. Run (or Start and Wait)
// also checks the working directory first, records the group with the
// context's Tracker while it runs, and ends whatever the main process left
// running in its group when it exits.
package proc

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// WaitDelay is how long a cancelled process group gets between SIGTERM and
// SIGKILL; processes left running when a command ends get as long.
const WaitDelay = 5 * time.Second

// Command is exec.CommandContext with the process in its own process group:
// when ctx is done the whole group gets SIGTERM, then SIGKILL after
// WaitDelay.
func Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	SetGroup(cmd)
	return cmd
}

// SetGroup puts cmd in its own process group and makes cancellation signal the
// whole group.
func SetGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		// The group may outlive its leader; make sure it goes.
		time.AfterFunc(WaitDelay, func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
		return nil
	}
	cmd.WaitDelay = WaitDelay + time.Second
}

// DirError says a command could not start because its working directory
// is missing or is not a directory. (The kernel reports a missing working
// directory as a missing program: "fork/exec PROGRAM: no such file or
// directory".)
type DirError struct {
	Dir string
	Err error // fs.ErrNotExist, or the reason it is unusable
}

func (e *DirError) Error() string {
	if errors.Is(e.Err, fs.ErrNotExist) {
		return "working directory " + e.Dir + " does not exist"
	}
	return "working directory " + e.Dir + ": " + e.Err.Error()
}

func (e *DirError) Unwrap() error { return e.Err }

// CheckDir returns a *DirError when cmd.Dir is set and is not a directory
// that exists.
func CheckDir(cmd *exec.Cmd) error {
	if cmd.Dir == "" {
		return nil
	}
	fi, err := os.Stat(cmd.Dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &DirError{Dir: cmd.Dir, Err: fs.ErrNotExist}
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return &DirError{Dir: cmd.Dir, Err: err}
	case !fi.IsDir():
		return &DirError{Dir: cmd.Dir, Err: syscall.ENOTDIR}
	}
	return nil
}

// Tracker records the process groups of running commands somewhere that
// outlives gantry (the run store), so that the groups a killed gantry left
// behind can be ended later (see End).
type Tracker interface {
	// Started is called once the group exists, before the command is
	// waited for.
	Started(ctx context.Context, g Group) error
	// Ended is called once nothing of the group runs any more.
	Ended(ctx context.Context, g Group) error
}

type trackerKey struct{}

// WithTracker returns a context whose commands (Start, Run) are recorded
// with t.
func WithTracker(ctx context.Context, t Tracker) context.Context {
	return context.WithValue(ctx, trackerKey{}, t)
}

// TrackerFrom returns the Tracker of ctx, or nil.
func TrackerFrom(ctx context.Context) Tracker {
	t, _ := ctx.Value(trackerKey{}).(Tracker)
	return t
}

// Run starts cmd (see Start) and waits for it (see Process.Wait).
func Run(ctx context.Context, cmd *exec.Cmd) error {
	p, err := Start(ctx, cmd)
	if err != nil {
		return err
	}
	return p.Wait()
}
