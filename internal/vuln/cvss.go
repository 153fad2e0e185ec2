package vuln

import (
	"fmt"
	"math"
	"strings"
)

// Level is a qualitative severity. Unscored means no usable score exists.
type Level int

// Levels, lowest first.
const (
	Unscored Level = iota
	None
	Low
	Medium
	High
	Critical
)

var levelNames = [...]string{"UNSCORED", "NONE", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

func (l Level) String() string {
	if l < 0 || int(l) >= len(levelNames) {
		return fmt.Sprintf("Level(%d)", int(l))
	}
	return levelNames[l]
}

// MarshalText encodes the level as its name.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads a level name.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	*l = v
	return err
}

// ParseLevel reads a level name, case-insensitively; GHSA's "moderate" is
// MEDIUM.
func ParseLevel(s string) (Level, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "UNSCORED", "UNKNOWN":
		return Unscored, nil
	case "NONE":
		return None, nil
	case "LOW":
		return Low, nil
	case "MEDIUM", "MODERATE":
		return Medium, nil
	case "HIGH":
		return High, nil
	case "CRITICAL":
		return Critical, nil
	}
	return Unscored, fmt.Errorf("unknown severity %q (want LOW, MEDIUM, HIGH, CRITICAL or UNSCORED)", s)
}

// LevelOf maps a CVSS v3 base score to its qualitative rating.
func LevelOf(score float64) Level {
	switch {
	case score == 0:
		return None
	case score < 4:
		return Low
	case score < 7:
		return Medium
	case score < 9:
		return High
	}
	return Critical
}

var cvss3Weights = map[string]map[string]float64{
	"AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
	"AC": {"L": 0.77, "H": 0.44},
	"PR": {"N": 0.85, "L": 0.62, "H": 0.27},
	"UI": {"N": 0.85, "R": 0.62},
	"S":  {"U": 0, "C": 0},
	"C":  {"H": 0.56, "L": 0.22, "N": 0},
	"I":  {"H": 0.56, "L": 0.22, "N": 0},
	"A":  {"H": 0.56, "L": 0.22, "N": 0},
}

// CVSS3Score computes the base score of a CVSS v3.0 or v3.1 vector
// ("CVSS:3.1/AV:N/AC:L/...") with the CVSS v3.1 specification's formula.
// Temporal and environmental metrics may be present and are ignored.
func CVSS3Score(vector string) (float64, error) {
	parts := strings.Split(strings.TrimSpace(vector), "/")
	if len(parts) == 0 || (parts[0] != "CVSS:3.1" && parts[0] != "CVSS:3.0") {
		return 0, fmt.Errorf("CVSS vector %q: want prefix CVSS:3.1/ or CVSS:3.0/", vector)
	}
	m := map[string]string{}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, ":")
		if !ok {
			return 0, fmt.Errorf("CVSS vector %q: bad metric %q", vector, p)
		}
		if _, dup := m[k]; dup {
			return 0, fmt.Errorf("CVSS vector %q: metric %s given twice", vector, k)
		}
		m[k] = v
	}
	w := map[string]float64{}
	for k, vals := range cvss3Weights {
		v, ok := m[k]
		if !ok {
			return 0, fmt.Errorf("CVSS vector %q: base metric %s missing", vector, k)
		}
		x, ok := vals[v]
		if !ok {
			return 0, fmt.Errorf("CVSS vector %q: bad value %s:%s", vector, k, v)
		}
		w[k] = x
	}
	changed := m["S"] == "C"
	if changed {
		switch m["PR"] {
		case "L":
			w["PR"] = 0.68
		case "H":
			w["PR"] = 0.5
		}
	}
	iss := 1 - (1-w["C"])*(1-w["I"])*(1-w["A"])
	var impact float64
	if changed {
		impact = 7.52*(iss-0.029) - 3.25*math.Pow(iss-0.02, 15)
	} else {
		impact = 6.42 * iss
	}
	expl := 8.22 * w["AV"] * w["AC"] * w["PR"] * w["UI"]
	if impact <= 0 {
		return 0, nil
	}
	if changed {
		return roundup(math.Min(1.08*(impact+expl), 10)), nil
	}
	return roundup(math.Min(impact+expl, 10)), nil
}

// roundup is CVSS v3.1's Roundup: the smallest number with one decimal
// that is >= x, computed on integers to avoid floating-point surprises.
func roundup(x float64) float64 {
	i := int64(math.Round(x * 100000))
	if i%10000 == 0 {
		return float64(i) / 100000
	}
	return float64(i/10000+1) / 10
}

// Score is the severity gantry assigns a finding.
type Score struct {
	Level Level `json:"level"`
	// Score is the CVSS base score, when a v3 vector was scored.
	Score float64 `json:"score,omitempty"`
	// Vector is the CVSS vector used or stored (v4 vectors are stored
	// unscored).
	Vector string `json:"vector,omitempty"`
	// Source says where the level came from: "cvss_v3",
	// "database_specific", or "" when unscored.
	Source string `json:"source,omitempty"`
}

// score picks the severity of entry e for affected package a: the highest
// CVSS v3 score among the entry's and the package's severities, else the
// database_specific severity, else unscored (keeping any v4 vector).
func score(e *Entry, a *Affected) Score {
	var best Score
	for _, s := range append(append([]Severity(nil), e.Severity...), a.Severity...) {
		switch s.Type {
		case "CVSS_V3":
			v, err := CVSS3Score(s.Score)
			if err != nil {
				continue
			}
			if best.Source != "cvss_v3" || v > best.Score {
				best = Score{Level: LevelOf(v), Score: v, Vector: s.Score, Source: "cvss_v3"}
			}
		case "CVSS_V4":
			if best.Vector == "" {
				best.Vector = s.Score
			}
		}
	}
	if best.Source != "" {
		return best
	}
	for _, raw := range [][]byte{a.DatabaseSpecific, e.DatabaseSpecific} {
		if l, err := ParseLevel(dbSeverity(raw)); err == nil && l != Unscored {
			best.Level, best.Source = l, "database_specific"
			return best
		}
	}
	return best
}
