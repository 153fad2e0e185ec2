// Package gpllib is GPL-licensed.
package gpllib

// Name names it.
func Name() string { return "gpl" }
