// Package text is a coverage fixture without tests of its own.
package text

import "strings"

// Shout upper-cases s.
func Shout(s string) string {
	if s == "" {
		return "!"
	}
	return strings.ToUpper(s) + "!"
}
