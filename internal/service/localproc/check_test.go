package localproc_test

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// assertGone checks that the process is gone, nothing listens on addr and
// the data directories were removed.
func assertGone(t *testing.T, pid int, addr string, dirs ...string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still exists", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections", addr)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("data dir %s left behind (stat: %v)", d, err)
		}
	}
}
