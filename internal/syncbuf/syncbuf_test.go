package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

// TestConcurrentWrites writes from several goroutines while another reads
// (run with -race): every line arrives whole.
func TestConcurrentWrites(t *testing.T) {
	var b Buffer
	const writers, lines = 4, 100
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range lines {
				b.Write([]byte("line\n"))
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range lines {
			_ = b.String()
		}
	}()
	wg.Wait()
	<-done
	if got, want := strings.Count(b.String(), "line\n"), writers*lines; got != want {
		t.Errorf("lines: got %d, want %d", got, want)
	}
}
