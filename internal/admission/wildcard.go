package admission

import "unicode/utf8"

// Match reports whether s matches pattern as Kyverno matches image
// references and pattern values: '*' matches any run of characters
// (slashes and colons included, or none), '?' exactly one character, and
// every other character itself. It runs in O(len(pattern)·len(s)) at
// worst, whatever the input.
func Match(pattern, s string) bool {
	p, px, sx := []rune(pattern), 0, 0
	// The last '*' seen and where in s it started matching.
	star, starS := -1, 0
	for sx < len(s) {
		r, size := utf8.DecodeRuneInString(s[sx:])
		switch {
		case px < len(p) && p[px] == '*':
			star, starS = px, sx
			px++
		case px < len(p) && (p[px] == '?' || p[px] == r):
			px++
			sx += size
		case star >= 0:
			// Let the last '*' take one more character.
			_, size := utf8.DecodeRuneInString(s[starS:])
			starS += size
			px, sx = star+1, starS
		default:
			return false
		}
	}
	for px < len(p) && p[px] == '*' {
		px++
	}
	return px == len(p)
}

// matchAny reports whether s matches one of patterns.
func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if Match(p, s) {
			return true
		}
	}
	return false
}
