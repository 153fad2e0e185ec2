// Package race has a planted data race.
package race

import "sync"

// Count increments a counter from n goroutines without a lock.
func Count(n int) int {
	var c int
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c++
		}()
	}
	wg.Wait()
	return c
}
