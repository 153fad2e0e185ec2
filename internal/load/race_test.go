//go:build race

package load

// raceEnabled: the tests run under the race detector, whose shadow memory
// and slowdown change a process's heap over a few seconds.
const raceEnabled = true
