package vuln

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseAge reads an age such as "30d", "2w" or any time.ParseDuration
// value ("720h"). "" is zero.
func ParseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.Atoi(n)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("age %q: want a whole number of days (30d) or weeks (2w)", s)
			}
			return time.Duration(v) * unit, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("age %q: want e.g. 30d, 2w or 720h", s)
	}
	return d, nil
}

// ParseLevels reads severity names (HIGH, CRITICAL, ...).
func ParseLevels(names []string) ([]Level, error) {
	var out []Level
	for _, n := range names {
		l, err := ParseLevel(n)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}
