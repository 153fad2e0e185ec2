// Package mystery has no licence file.
package mystery

// Name names it.
func Name() string { return "?" }
