// Package greet builds greetings.
package greet

import "strings"

// Hello greets each name, or the world when there is none.
func Hello(names ...string) string {
	if len(names) == 0 {
		return "hello, world"
	}
	var kept []string
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n != "" {
			kept = append(kept, n)
		}
	}
	if len(kept) == 0 {
		return "hello, nobody"
	}
	return "hello, " + strings.Join(kept, " and ")
}
