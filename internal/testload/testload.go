// Package testload holds the HTTP helpers of tests that switch what serves
// a URL while it is under load: a GET that must answer 200, and continuous
// load that counts the answers by body and every failed request.
package testload

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Get returns url's body, trimmed, or fails the test unless it answers 200.
func Get(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return strings.TrimSpace(string(b))
}

// Load sends GETs from several clients, one after the other each, until
// Stop; every error or non-200 answer is a failure.
type Load struct {
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	bodies map[string]int
	ok     atomic.Int64
	failed atomic.Int64
	first  atomic.Value // error
}

// Start starts clients clients against url.
func Start(url string, clients int) *Load {
	l := &Load{stop: make(chan struct{}), bodies: map[string]int{}}
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}, Timeout: 10 * time.Second}
			defer c.CloseIdleConnections()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				resp, err := c.Get(url)
				var b []byte
				if err == nil {
					b, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
					}
				}
				if err != nil {
					l.failed.Add(1)
					l.first.CompareAndSwap(nil, err)
					continue
				}
				l.ok.Add(1)
				l.mu.Lock()
				l.bodies[strings.TrimSpace(string(b))]++
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// Stop ends the clients and waits for them.
func (l *Load) Stop() {
	close(l.stop)
	l.wg.Wait()
}

// Seen is how many answers had body.
func (l *Load) Seen(body string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bodies[body]
}

// Bodies is a copy of the answers counted by body.
func (l *Load) Bodies() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.bodies)
}

// OK and Failed count the answered and the failed requests.
func (l *Load) OK() int64     { return l.ok.Load() }
func (l *Load) Failed() int64 { return l.failed.Load() }

// First is the first failure, or nil.
func (l *Load) First() error {
	err, _ := l.first.Load().(error)
	return err
}
