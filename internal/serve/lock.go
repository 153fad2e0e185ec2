package serve

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the file whose exclusive flock(2) marks the one serve
// process of a state dir; it holds that process's pid.
func LockFile(stateDir string) string { return filepath.Join(stateDir, "serve.lock") }

// SocketPath is the Unix socket the serve process of a state dir listens on.
func SocketPath(stateDir string) string { return filepath.Join(stateDir, "gantry.sock") }

// LogFile is where a serve process started in the background writes.
func LogFile(stateDir string) string { return filepath.Join(stateDir, "serve.log") }

// AlreadyRunningError says another process holds the serve lock of the
// state dir.
type AlreadyRunningError struct {
	StateDir string
	// Pid is the holder's pid as it recorded it, 0 when unknown.
	Pid int
}

func (e *AlreadyRunningError) Error() string {
	if e.Pid == 0 {
		return fmt.Sprintf("gantry serve is already running for %s", e.StateDir)
	}
	return fmt.Sprintf("gantry serve is already running for %s (pid %d)", e.StateDir, e.Pid)
}

// lock is the held serve lock.
type lock struct{ f *os.File }

// tryLock takes the serve lock of stateDir without waiting and records
// this process's pid in it, or returns an *AlreadyRunningError.
func tryLock(stateDir string) (*lock, error) {
	path := LockFile(stateDir)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the serve lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &AlreadyRunningError{StateDir: stateDir, Pid: lockHolder(stateDir)}
		}
		return nil, fmt.Errorf("take the serve lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("record the pid in the serve lock %s: %w", path, err)
	}
	return &lock{f: f}, nil
}

// release drops the lock; the file and its pid stay (removing the file
// would let two processes lock two different files of one name).
func (l *lock) release() error {
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// lockHolder returns the pid recorded in the serve lock, 0 when none.
func lockHolder(stateDir string) int {
	b, err := os.ReadFile(LockFile(stateDir))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Running reports whether a process holds the serve lock of stateDir. It
// probes with a shared lock that it drops at once, so a serve process
// starting in that instant may find the lock taken.
func Running(stateDir string) (bool, error) {
	f, err := os.Open(LockFile(stateDir))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("probe the serve lock: %w", err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("probe the serve lock: %w", err)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false, nil
}
