// Package localproc runs a backing service (PostgreSQL, Redis, an SQS
// server) as a local child process on a free loopback port, waits until it
// is ready and tears it down with its whole process group.
package localproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/syncbuf"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Process is a started service process.
type Process struct {
	Name    string
	cmd     *exec.Cmd
	out     *syncbuf.Buffer
	done    chan struct{}
	err     error
	group   proc.Group
	tracker proc.Tracker
}

// Start starts cmd in its own process group. The process is not bound to
// ctx: Stop ends it. Its output is kept for error messages. The group is
// recorded with ctx's proc.Tracker, if any, until Stop ends it, so that a
// killed gantry does not leave the service running.
func Start(ctx context.Context, name string, cmd *exec.Cmd) (*Process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	// If gantry dies without running Stop, the kernel kills the service.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	p := &Process{Name: name, cmd: cmd, out: &syncbuf.Buffer{}, done: make(chan struct{})}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	if err := proc.CheckDir(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { // owned by Process: Stop waits for done
		p.err = cmd.Wait()
		close(p.done)
	}()
	if t := proc.TrackerFrom(ctx); t != nil {
		g, err := proc.GroupOf(cmd.Process.Pid)
		if err == nil {
			err = t.Started(ctx, g)
		}
		if err != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
			return nil, fmt.Errorf("start %s: record its process group: %w", name, err)
		}
		p.group, p.tracker = g, t
	}
	return p, nil
}

// Pid returns the process id (also the process group id).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output returns what the process printed so far (last 4 KiB).
func (p *Process) Output() string {
	s := p.out.String()
	if len(s) > 4096 {
		s = s[len(s)-4096:]
	}
	return s
}

// WaitReady calls ready every 50ms until it returns nil, the process
// exits, or ctx is done.
func (p *Process) WaitReady(ctx context.Context, ready func(context.Context) error) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		if p.Exited() {
			return fmt.Errorf("%s exited before it was ready: %v\n%s", p.Name, p.err, p.Output())
		}
		if last = ready(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last check: %v)", p.Name, ctx.Err(), last)
		case <-p.done:
		case <-t.C:
		}
	}
}

// Stop sends sig to the process group, waits for the process until ctx is
// done or 10s pass, then kills the whole group.
func (p *Process) Stop(ctx context.Context, sig syscall.Signal) error {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, sig)
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
	case <-ctx.Done():
	}
	// Anything left in the group (workers of the service) goes now.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
	if p.tracker != nil {
		if err := p.tracker.Ended(context.WithoutCancel(ctx), p.group); err != nil {
			return fmt.Errorf("stop %s: %w", p.Name, err)
		}
	}
	return nil
}

// TCPReady returns a check that succeeds once addr accepts connections.
func TCPReady(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		d := net.Dialer{Timeout: time.Second}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// Addr is host:port on loopback.
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// ErrNotInstalled is wrapped by errors for missing server binaries.
var ErrNotInstalled = errors.New("server binary not installed")

// LookPath finds bin on PATH or in extra directories, or returns an error
// naming the package to install.
func LookPath(bin, install string, extra ...string) (string, error) {
	if p, err := exec.LookPath(bin); err == nil {
		return p, nil
	}
	for _, d := range extra {
		p := d + "/" + bin
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found: %w; install it with: %s", bin, ErrNotInstalled, install)
}

// Instance is a running service process with its data directory: the
// service.Instance that the local services share.
type Instance struct {
	Name    string // for messages: "postgres", "redis", "sqs"
	Proc    *Process
	DataDir string
	Vars    map[string]string
	// StopSignal ends the server (SIGTERM by default).
	StopSignal syscall.Signal
	// Keep leaves DataDir in place on Stop (an environment's service whose
	// data outlives the server).
	Keep bool
}

// Env implements service.Instance.
func (i *Instance) Env() map[string]string { return i.Vars }

// Pid is the server's process id.
func (i *Instance) Pid() int { return i.Proc.Pid() }

// Exited reports whether the server has ended (crashed or killed).
func (i *Instance) Exited() bool { return i.Proc.Exited() }

// Stop implements service.Instance: the server is signalled (and killed if
// it lingers), then its data directory is removed.
func (i *Instance) Stop(ctx context.Context) error {
	sig := i.StopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	err := i.Proc.Stop(ctx, sig)
	if i.Keep {
		return err
	}
	if rerr := os.RemoveAll(i.DataDir); rerr != nil && err == nil {
		err = fmt.Errorf("remove %s data dir: %w", i.Name, rerr)
	}
	return err
}
