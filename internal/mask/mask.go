// Package mask hides secret values in text that leaves the process: logs,
// error messages, stored outputs. Besides the plain value it hides the
// value's base64 forms (standard and URL alphabets, at every byte offset,
// so a secret inside a larger encoded blob is caught too) and its
// URL-encoded forms and its JSON-escaped forms.
package mask

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// Redacted replaces every hidden value.
const Redacted = "***"

// MinLength is the shortest secret that is masked; shorter values would
// hide ordinary text.
const MinLength = 4

// Masker holds the values to hide. The zero value hides nothing. It is
// safe for concurrent use.
type Masker struct {
	mu       sync.RWMutex
	values   map[string]bool
	replacer *strings.Replacer
	longest  int
}

// New returns a Masker hiding secrets.
func New(secrets ...string) *Masker {
	m := &Masker{}
	for _, s := range secrets {
		m.Add(s)
	}
	return m
}

// Add hides secret (and its encoded forms) from now on. Values shorter than
// MinLength are ignored. Multi-line secrets are also hidden line by line.
func (m *Masker) Add(secret string) {
	secret = strings.TrimRight(secret, "\r\n")
	if len(secret) < MinLength {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.values == nil {
		m.values = map[string]bool{}
	}
	for _, v := range variants(secret) {
		if len(v) >= MinLength {
			m.values[v] = true
		}
	}
	if strings.Contains(secret, "\n") {
		for _, line := range strings.Split(secret, "\n") {
			line = strings.TrimRight(line, "\r")
			if len(line) >= MinLength {
				m.values[line] = true
			}
		}
	}
	m.rebuild()
}

func (m *Masker) rebuild() {
	vals := make([]string, 0, len(m.values))
	for v := range m.values {
		vals = append(vals, v)
	}
	// Longest first, so a value that contains another is replaced whole.
	sort.Slice(vals, func(i, j int) bool {
		if len(vals[i]) != len(vals[j]) {
			return len(vals[i]) > len(vals[j])
		}
		return vals[i] < vals[j]
	})
	pairs := make([]string, 0, 2*len(vals))
	m.longest = 0
	for _, v := range vals {
		pairs = append(pairs, v, Redacted)
		m.longest = max(m.longest, len(v))
	}
	m.replacer = strings.NewReplacer(pairs...)
}

// Mask returns s with every hidden value replaced by Redacted.
func (m *Masker) Mask(s string) string {
	if m == nil {
		return s
	}
	m.mu.RLock()
	r := m.replacer
	m.mu.RUnlock()
	if r == nil {
		return s
	}
	return r.Replace(s)
}

// Empty reports whether nothing is hidden.
func (m *Masker) Empty() bool {
	if m == nil {
		return true
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.values) == 0
}

// maxLen is the length of the longest hidden value.
func (m *Masker) maxLen() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.longest
}

// straddle returns the start of a hidden value in buf that begins before
// cut and ends after it, or -1.
func (m *Masker) straddle(buf []byte, cut int) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	best := -1
	for v := range m.values {
		lo := max(0, cut-len(v)+1)
		hi := min(len(buf), cut+len(v)-1)
		if lo >= hi {
			continue
		}
		if i := bytes.Index(buf[lo:hi], []byte(v)); i >= 0 {
			if start := lo + i; start < cut && (best < 0 || start < best) {
				best = start
			}
		}
	}
	return best
}

// variants returns the forms of secret that are hidden.
func variants(secret string) []string {
	out := []string{
		secret,
		url.QueryEscape(secret),
		url.PathEscape(secret),
		base64.StdEncoding.EncodeToString([]byte(secret)),
		base64.URLEncoding.EncodeToString([]byte(secret)),
	}
	// Inside JSON text a secret with quotes, backslashes, control or
	// HTML characters is written escaped (Go escapes <, > and & too).
	if js, err := json.Marshal(secret); err == nil {
		out = append(out, string(js[1:len(js)-1]))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(secret) == nil {
		js := strings.TrimSuffix(buf.String(), "\n")
		out = append(out, js[1:len(js)-1])
	}
	// Inside a longer base64 stream the secret may start at any offset
	// modulo 3; keep only the characters that depend on the secret alone.
	for k := 0; k < 3; k++ {
		buf := append(make([]byte, k), secret...)
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
			s := enc.EncodeToString(buf)
			start := [3]int{0, 2, 3}[k]
			end := len(s)
			if len(buf)%3 != 0 {
				end-- // the last character also depends on the next byte
			}
			if end-start >= MinLength {
				out = append(out, s[start:end])
			}
		}
	}
	return out
}
