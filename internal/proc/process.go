package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Process is a command started by Start.
type Process struct {
	ctx     context.Context
	cmd     *exec.Cmd
	group   Group
	tracker Tracker

	copies  sync.WaitGroup
	readers []*os.File
	copyMu  sync.Mutex
	copyErr error

	left []Member
}

// Start starts cmd in its own process group (as Command does, also
// when cmd came from exec.Command). Before that it checks the working
// directory: a missing one is a *DirError naming it. Once started, the
// group is recorded with ctx's Tracker, if any.
//
// Output that goes to a writer other than an *os.File is copied through a
// pipe that Start owns, so that a background process that keeps the pipe
// open cannot hold Wait up (os/exec would wait for it, then fail with
// exec.ErrWaitDelay).
func Start(ctx context.Context, cmd *exec.Cmd) (*Process, error) {
	if err := CheckDir(cmd); err != nil {
		return nil, err
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	p := &Process{ctx: ctx, cmd: cmd, tracker: TrackerFrom(ctx)}
	writers, err := p.pipes()
	if err != nil {
		p.copies.Wait() // pipes closed what it opened
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		p.closeFiles(writers)
		p.closeFiles(p.readers)
		p.copies.Wait()
		if derr := CheckDir(cmd); derr != nil {
			return nil, derr // removed meanwhile
		}
		return nil, err
	}
	p.closeFiles(writers) // the child holds its own copies
	g, err := GroupOf(cmd.Process.Pid)
	if err == nil && p.tracker != nil {
		if terr := p.tracker.Started(ctx, g); terr != nil {
			err = fmt.Errorf("record process group %d: %w", g.PGID, terr)
			p.tracker = nil
		}
	}
	if err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		p.waitCopies()
		return nil, err
	}
	p.group = g
	return p, nil
}

// Pid returns the main process's id, which is also its group's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Group returns the process group of the command.
func (p *Process) Group() Group { return p.group }

// Wait waits for the main process and returns its result, as
// exec.Cmd.Wait does. Then it ends what the process left running in its
// group (SIGTERM, SIGKILL after WaitDelay; see Leftovers), waits for the
// output to be copied and tells the Tracker the group ended.
func (p *Process) Wait() error {
	err := p.cmd.Wait()
	bg := context.WithoutCancel(p.ctx)
	left, lerr := End(bg, p.group, WaitDelay)
	p.left = left
	p.waitCopies()
	if lerr != nil {
		lerr = fmt.Errorf("end processes left running: %w", lerr)
	} else if p.tracker != nil {
		if terr := p.tracker.Ended(bg, p.group); terr != nil {
			lerr = fmt.Errorf("record the end of process group %d: %w", p.group.PGID, terr)
		}
	}
	if err != nil {
		return err
	}
	if lerr != nil {
		return lerr
	}
	p.copyMu.Lock()
	defer p.copyMu.Unlock()
	return p.copyErr
}

// Leftovers returns the processes that were still running in the group
// when the main process exited; Wait ended them.
func (p *Process) Leftovers() []Member { return p.left }

// pipes replaces cmd's Stdout and Stderr writers, unless they are files,
// with pipes whose read ends Start copies from. It returns the write ends
// for the child.
func (p *Process) pipes() ([]*os.File, error) {
	var writers []*os.File
	replace := func(w io.Writer) (*os.File, error) {
		r, pw, err := os.Pipe()
		if err != nil {
			p.closeFiles(writers)
			p.closeFiles(p.readers)
			return nil, fmt.Errorf("create output pipe: %w", err)
		}
		p.readers = append(p.readers, r)
		writers = append(writers, pw)
		p.copies.Add(1)
		go func() { // owned by Process: waitCopies waits for it
			defer p.copies.Done()
			_, err := io.Copy(w, r)
			_ = r.Close()
			if err != nil && !errors.Is(err, os.ErrClosed) {
				p.copyMu.Lock()
				if p.copyErr == nil {
					p.copyErr = fmt.Errorf("copy output: %w", err)
				}
				p.copyMu.Unlock()
			}
		}()
		return pw, nil
	}
	out, errw := p.cmd.Stdout, p.cmd.Stderr
	errDone := false
	if _, isFile := out.(*os.File); out != nil && !isFile {
		pw, err := replace(out)
		if err != nil {
			return nil, err
		}
		p.cmd.Stdout = pw
		if sameWriter(errw, out) {
			p.cmd.Stderr, errDone = pw, true
		}
	}
	if _, isFile := errw.(*os.File); errw != nil && !isFile && !errDone {
		pw, err := replace(errw)
		if err != nil {
			return nil, err
		}
		p.cmd.Stderr = pw
	}
	return writers, nil
}

// waitCopies waits until the output is copied: the pipes close when the
// last process holding them exits. A process that left the group (setsid)
// may hold them open for good, so after WaitDelay the read ends are closed.
func (p *Process) waitCopies() {
	done := make(chan struct{})
	go func() { // owned by waitCopies, which waits for it below
		p.copies.Wait()
		close(done)
	}()
	t := time.NewTimer(WaitDelay)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		p.closeFiles(p.readers)
		<-done
	}
}

func (p *Process) closeFiles(fs []*os.File) {
	for _, f := range fs {
		_ = f.Close()
	}
}

// sameWriter is a == b without the panic of comparing uncomparable
// dynamic types.
func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}
