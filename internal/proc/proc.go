// Package proc runs child processes so that cancelling a run kills them and
// everything they started.
package proc

import (
	"context"
	"os/exec"
	"syscall"
	"time"
)

// WaitDelay is how long a cancelled process group gets between SIGTERM and
// SIGKILL.
const WaitDelay = 5 * time.Second

// Command is exec.CommandContext with the process in its own process group:
// when ctx is done the whole group gets SIGTERM, then SIGKILL after
// WaitDelay.
func Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	Group(cmd)
	return cmd
}

// Group puts cmd in its own process group and makes cancellation signal the
// whole group.
func Group(cmd *exec.Cmd) {
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
