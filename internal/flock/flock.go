// Package flock takes exclusive advisory file locks (flock(2)) that other
// goroutines and other gantry processes wait for, such as the install
// lock of a tool in the tool cache or the update lock of the
// vulnerability database. The kernel drops a lock when its process ends,
// however it ends.
package flock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// poll is how often Lock tries again while another holder has the lock.
const poll = 100 * time.Millisecond

// Lock takes an exclusive lock on path (created if needed), waiting while
// another holder has it, until ctx ends. The returned function releases
// it. Each call opens its own file, so two goroutines of one process
// exclude each other too.
func Lock(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for the lock %s: %w", path, ctx.Err())
		case <-time.After(poll):
		}
	}
}
