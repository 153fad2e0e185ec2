package flock

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
)

// TestLockExcludes runs holders of one lock at once and checks that no
// two were inside it together.
func TestLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	var (
		mu       sync.Mutex
		inside   int
		maxSeen  int
		wg       sync.WaitGroup
		failures = make(chan error, 8)
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := Lock(context.Background(), path)
			if err != nil {
				failures <- err
				return
			}
			mu.Lock()
			inside++
			maxSeen = max(maxSeen, inside)
			mu.Unlock()
			mu.Lock()
			inside--
			mu.Unlock()
			unlock()
		}()
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Error(err)
	}
	if maxSeen != 1 {
		t.Errorf("holders inside the lock at once: got %d, want 1", maxSeen)
	}
}

// TestLockWaitsUntilContextEnds checks that a waiter gives up with the
// context's error while another holder keeps the lock.
func TestLockWaitsUntilContextEnds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := Lock(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Lock(ctx, path); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock while held, ctx cancelled: got %v, want context.Canceled", err)
	}
}

// TestLockBadPath checks that a lock file that cannot be created is an
// error naming it.
func TestLockBadPath(t *testing.T) {
	if _, err := Lock(context.Background(), filepath.Join(t.TempDir(), "missing", "x.lock")); err == nil {
		t.Error("Lock in a missing directory: got nil error")
	}
}
