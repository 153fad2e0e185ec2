package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// runLocks holds the flocks of the runs open in this process. A flock
// belongs to an open file description, so the kernel drops it when the
// process exits in any way, including SIGKILL; a second Store in the same
// process opens its own descriptor and sees the lock as taken, as another
// process would.
type runLocks struct {
	dir  string
	mu   sync.Mutex
	held map[int64]*os.File
}

func newRunLocks(dir string) *runLocks {
	return &runLocks{dir: dir, held: map[int64]*os.File{}}
}

func (l *runLocks) path(id int64) string {
	return filepath.Join(l.dir, "run-"+strconv.FormatInt(id, 10)+".lock")
}

// errLocked reports a lock held by a live process (maybe this one).
var errLocked = errors.New("run lock is held by a live gantry process")

// acquire creates the run's lock file and takes an exclusive,
// non-blocking flock on it.
func (l *runLocks) acquire(id int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.held[id]; ok {
		return fmt.Errorf("lock run %d: %w", id, errLocked)
	}
	f, err := os.OpenFile(l.path(id), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("lock run %d: %w", id, err)
	}
	if err := flockNB(f); err != nil {
		f.Close()
		return fmt.Errorf("lock run %d: %w", id, err)
	}
	// Record the owner for people looking at the directory; the flock,
	// not the content, is what counts.
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	l.held[id] = f
	return nil
}

// release drops the run's lock and removes its file, if this process
// holds it.
func (l *runLocks) release(id int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.held[id]
	if !ok {
		return
	}
	delete(l.held, id)
	// Remove before unlocking: nobody can take the lock of a file that is
	// about to disappear and believe the run is dead while it is finishing.
	_ = os.Remove(l.path(id))
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	f.Close()
}

// releaseAll drops every lock this process holds without removing the
// files: the runs were abandoned, and the next Open will say so.
func (l *runLocks) releaseAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, f := range l.held {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		delete(l.held, id)
	}
}

func (l *runLocks) holds(id int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.held[id]
	return ok
}

// probe reports whether run id's owner is gone. If so it returns the lock
// file, locked, for the caller to close (or nil if the file is missing).
func (l *runLocks) probe(id int64) (dead bool, f *os.File, err error) {
	return l.probeAt(id, l.path(id))
}

// probeAt is probe of the lock file at path: the run's lock in the state
// dir of the process that owns it, which on a shared database may be
// another state dir of this host.
func (l *runLocks) probeAt(id int64, path string) (dead bool, f *os.File, err error) {
	if l.holds(id) {
		return false, nil, nil
	}
	f, err = os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil, nil
	}
	if err != nil {
		return false, nil, fmt.Errorf("probe lock of run %d: %w", id, err)
	}
	if err := flockNB(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return false, nil, nil
		}
		return false, nil, fmt.Errorf("probe lock of run %d: %w", id, err)
	}
	// The file we locked may have been removed by an owner finishing the
	// run and recreated by one resuming it: only a lock on the file that
	// is there now says anything.
	if !sameFile(f, path) {
		unlockClose(f)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return true, nil, nil
		}
		return false, nil, nil
	}
	return true, f, nil
}

func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	if err != nil {
		return false
	}
	return os.SameFile(a, b)
}

// removeLocked removes the lock file f (locked by probe) if it is still
// the run's lock file, then unlocks and closes it.
func (l *runLocks) removeLocked(id int64, f *os.File) {
	removeLockedAt(l.path(id), f)
}

// removeLockedAt removes the lock file f (locked by probeAt) if it is
// still the file at path, then unlocks and closes it.
func removeLockedAt(path string, f *os.File) {
	if f == nil {
		return
	}
	if sameFile(f, path) {
		_ = os.Remove(path)
	}
	unlockClose(f)
}

func unlockClose(f *os.File) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	f.Close()
}

func flockNB(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return errLocked
		default:
			return fmt.Errorf("flock %s: %w", f.Name(), err)
		}
	}
}
