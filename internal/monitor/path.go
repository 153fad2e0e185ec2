package monitor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ParsePath splits a dotted JSON path (items.0.status) into its keys. A
// backslash escapes a dot or a backslash inside a key
// (labels.app\.kubernetes\.io/name); keys may not be empty. A key of
// digits indexes an array.
func ParsePath(p string) ([]string, error) {
	if p == "" {
		return nil, errors.New("empty path (write a dotted path such as status or items.0.id)")
	}
	var keys []string
	var cur strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '\\':
			if i+1 >= len(p) || (p[i+1] != '.' && p[i+1] != '\\') {
				return nil, fmt.Errorf("the backslash at offset %d escapes neither a dot nor a backslash", i)
			}
			i++
			cur.WriteByte(p[i])
		case '.':
			if cur.Len() == 0 {
				return nil, fmt.Errorf("empty key at offset %d", i)
			}
			keys = append(keys, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if cur.Len() == 0 {
		return nil, errors.New("the path ends with an empty key")
	}
	return append(keys, cur.String()), nil
}

// JoinPath is the inverse of ParsePath: it escapes each key's dots and
// backslashes and joins them with dots.
func JoinPath(keys []string) string {
	esc := strings.NewReplacer(`\`, `\\`, `.`, `\.`)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = esc.Replace(k)
	}
	return strings.Join(out, ".")
}

// decodeJSON decodes one JSON document, numbers as json.Number, and
// refuses trailing data.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty body")
		}
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

// lookup returns the value at keys in doc (decoded by decodeJSON), or an
// error saying where the path leaves the document.
func lookup(doc any, keys []string) (any, error) {
	cur := doc
	for i, k := range keys {
		at := "the body"
		if i > 0 {
			at = JoinPath(keys[:i])
		}
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[k]
			if !ok {
				return nil, fmt.Errorf("%s has no key %q", at, k)
			}
			cur = next
		case []any:
			idx, ok := index(k)
			if !ok {
				return nil, fmt.Errorf("%s is an array; %q is not an index", at, k)
			}
			if idx >= len(c) {
				return nil, fmt.Errorf("%s has %d items, no index %d", at, len(c), idx)
			}
			cur = c[idx]
		default:
			return nil, fmt.Errorf("%s is %s, not an object or array", at, kindOf(cur))
		}
	}
	return cur, nil
}

// index parses a decimal array index without sign or leading zeros.
func index(k string) (int, bool) {
	if k == "" || (len(k) > 1 && k[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < '0' || k[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(k)
	return n, err == nil
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// equal compares two decoded JSON values; numbers are equal when they are
// written alike or parse to the same float64 (1 and 1.0).
func equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool, string:
		return a == b
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		fx, errx := strconv.ParseFloat(string(x), 64)
		fy, erry := strconv.ParseFloat(string(y), 64)
		return errx == nil && erry == nil && fx == fy
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !equal(xv, yv) {
				return false
			}
		}
		return true
	}
	return false
}

// maxShown bounds a value quoted in a message.
const maxShown = 120

// show renders a decoded JSON value for a message, shortened.
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	if len(b) > maxShown {
		n := maxShown
		for n > 0 && !utf8.RuneStart(b[n]) {
			n--
		}
		return string(b[:n]) + "…"
	}
	return string(b)
}
