package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gantry-ci/gantry/internal/flock"
)

// EnsureOption configures Ensure.
type EnsureOption func(*ensureOptions) error

type ensureOptions struct {
	timeout time.Duration
	logger  *slog.Logger
	// command starts the server; args get "--state-dir DIR" appended.
	command []string
	env     []string
}

// WithStartTimeout bounds how long Ensure waits for a server it started
// to answer (default 30s; must be positive).
func WithStartTimeout(d time.Duration) EnsureOption {
	return func(o *ensureOptions) error {
		if d <= 0 {
			return fmt.Errorf("serve: start timeout %s must be positive", d)
		}
		o.timeout = d
		return nil
	}
}

// WithLogger logs the start of a background server (default: discarded).
func WithLogger(l *slog.Logger) EnsureOption {
	return func(o *ensureOptions) error {
		if l != nil {
			o.logger = l
		}
		return nil
	}
}

// WithExecutable names the gantry binary Ensure starts as `PATH serve`
// (default os.Executable(), right for the gantry command itself; a test
// binary must name a built gantry instead).
func WithExecutable(path string) EnsureOption {
	return func(o *ensureOptions) error {
		if path == "" {
			return errors.New("serve: empty executable path")
		}
		o.command = []string{path, "serve"}
		return nil
	}
}

// withCommand replaces `os.Executable() serve` (a test hook).
func withCommand(env []string, name string, args ...string) EnsureOption {
	return func(o *ensureOptions) error {
		o.command = append([]string{name}, args...)
		o.env = env
		return nil
	}
}

// StartError says a background server did not come up; Log holds the end
// of what it wrote to serve.log.
type StartError struct {
	StateDir string
	Reason   string
	Log      string
}

func (e *StartError) Error() string {
	msg := fmt.Sprintf("gantry serve for %s did not start: %s", e.StateDir, e.Reason)
	if e.Log != "" {
		msg += "; " + LogFile(e.StateDir) + " ends with:\n" + e.Log
	}
	return msg
}

// Ensure returns a client of the serve process of stateDir, starting one
// in the background when none listens: `gantry serve --state-dir DIR`
// re-executed from this binary, in its own session, stdin from
// /dev/null, output appended to STATE_DIR/serve.log. It waits until the
// server answers, or fails with a *StartError carrying the end of its
// log. Concurrent calls, in this process or others, start one server.
func Ensure(ctx context.Context, stateDir string, opts ...EnsureOption) (*Client, error) {
	o := ensureOptions{timeout: 30 * time.Second, logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	stateDir, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, fmt.Errorf("serve: state dir: %w", err)
	}
	if c, err := Dial(ctx, stateDir); !errors.Is(err, ErrNotRunning) {
		return c, err
	}
	unlock, err := flock.Lock(ctx, filepath.Join(stateDir, "serve.start.lock"))
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	defer unlock()

	deadline := time.Now().Add(o.timeout)
	var (
		proc   *os.Process
		logOff int64
	)
	defer func() {
		if proc != nil {
			_ = proc.Release()
		}
	}()
	for {
		c, err := Dial(ctx, stateDir)
		if !errors.Is(err, ErrNotRunning) {
			return c, err
		}
		if proc == nil {
			// A server that holds the lock is starting or stopping:
			// wait for it to answer or to go.
			running, err := Running(stateDir)
			if err != nil {
				return nil, err
			}
			if !running {
				if proc, logOff, err = start(stateDir, &o); err != nil {
					return nil, err
				}
				o.logger.Info("started gantry serve in the background", "pid", proc.Pid, "state_dir", stateDir, "log", LogFile(stateDir))
			}
		} else if exited, status := reap(proc.Pid); exited {
			proc = nil
			return nil, &StartError{StateDir: stateDir, Reason: status, Log: logTail(stateDir, logOff)}
		}
		if time.Now().After(deadline) {
			reason := fmt.Sprintf("it did not answer within %s", o.timeout)
			if proc != nil {
				// A server that never answered is of no use to anyone.
				_ = proc.Signal(syscall.SIGKILL)
				reap(proc.Pid)
				proc = nil
				reason += "; killed it"
			}
			return nil, &StartError{StateDir: stateDir, Reason: reason, Log: logTail(stateDir, logOff)}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("serve: wait for gantry serve to start: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// start launches the server detached and returns it with the size of
// serve.log before it, where its own output begins.
func start(stateDir string, o *ensureOptions) (*os.Process, int64, error) {
	argv := o.command
	if argv == nil {
		exe, err := os.Executable()
		if err != nil {
			return nil, 0, fmt.Errorf("serve: find the gantry binary: %w", err)
		}
		argv = []string{exe, "serve"}
	}
	argv = append(append([]string(nil), argv...), "--state-dir", stateDir)
	logf, err := os.OpenFile(LogFile(stateDir), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("serve: open the log: %w", err)
	}
	defer logf.Close()
	var off int64
	if fi, err := logf.Stat(); err == nil {
		off = fi.Size()
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = o.env
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("serve: start %s: %w", argv[0], err)
	}
	return cmd.Process, off, nil
}

// reap reports whether the child pid has exited, collecting it if so.
func reap(pid int) (bool, string) {
	var ws syscall.WaitStatus
	got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
	if err != nil || got != pid {
		return false, ""
	}
	switch {
	case ws.Exited():
		return true, fmt.Sprintf("it exited with status %d", ws.ExitStatus())
	case ws.Signaled():
		return true, fmt.Sprintf("it was killed by %s", ws.Signal())
	}
	return true, "it ended"
}

// logTail returns the last lines serve.log got from off on.
func logTail(stateDir string, off int64) string {
	f, err := os.Open(LogFile(stateDir))
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	lines := strings.Split(strings.TrimRight(string(bytes.ToValidUTF8(b, []byte("?"))), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
