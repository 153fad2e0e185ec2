package chart

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"unicode/utf8"
)

// ErrSetPath is wrapped by the errors of ParseSetPath and SetValue.
var ErrSetPath = errors.New("bad values path")

// ParseSetPath splits a dotted values path ("image.digest",
// `podAnnotations.prometheus\.io/scrape`) into its keys. A backslash
// escapes the next dot or backslash; every key must be non-empty.
func ParseSetPath(path string) ([]string, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: empty path", ErrSetPath)
	}
	if !utf8.ValidString(path) {
		return nil, fmt.Errorf("%w: %q is not valid UTF-8", ErrSetPath, path)
	}
	var keys []string
	var cur strings.Builder
	escaped := false
	for i, r := range path {
		switch {
		case escaped:
			if r != '.' && r != '\\' {
				return nil, fmt.Errorf("%w: %q: \\ at byte %d escapes only . or \\", ErrSetPath, path, i-1)
			}
			cur.WriteRune(r)
			escaped = false
		case r == '\\':
			escaped = true
		case r == '.':
			if cur.Len() == 0 {
				return nil, fmt.Errorf("%w: %q: empty key before byte %d", ErrSetPath, path, i)
			}
			keys = append(keys, cur.String())
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	if escaped {
		return nil, fmt.Errorf("%w: %q ends in a lone \\", ErrSetPath, path)
	}
	if cur.Len() == 0 {
		return nil, fmt.Errorf("%w: %q ends with an empty key", ErrSetPath, path)
	}
	return append(keys, cur.String()), nil
}

// SetValue sets vals at the dotted path to v, creating the maps on the way.
// A key on the way that holds something other than a map is an error: the
// chart's values say it is not a map, so setting inside it is a mistake.
func SetValue(vals map[string]any, path string, v any) error {
	keys, err := ParseSetPath(path)
	if err != nil {
		return err
	}
	m := vals
	for i, k := range keys[:len(keys)-1] {
		next, ok := m[k]
		if !ok || next == nil {
			child := map[string]any{}
			m[k] = child
			m = child
			continue
		}
		child, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("%w: set %s: %s is %s, not a map", ErrSetPath, path, strings.Join(keys[:i+1], "."), describe(next))
		}
		m = child
	}
	m[keys[len(keys)-1]] = v
	return nil
}

func describe(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case float64, int, int64, uint64:
		return "a number"
	}
	return fmt.Sprintf("a %T", v)
}

// mergeValues merges src into dst as Helm merges values files: maps merge
// key by key, anything else in src replaces dst's value.
func mergeValues(dst, src map[string]any) map[string]any {
	out := maps.Clone(dst)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := out[k].(map[string]any); ok {
				out[k] = mergeValues(dm, sm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// Lookup returns the value at keys in vals (a chart's values, nested
// maps).
func Lookup(vals map[string]any, keys ...string) (any, bool) {
	var cur any = vals
	for _, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}
