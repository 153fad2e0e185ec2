// Package vuln matches an inventory against OSV vulnerability data: the Go
// vulnerability database and OSV entries of other sources, loaded offline
// from a directory, .tar.gz or .zip of OSV JSON files. It scores CVSS v3
// vectors, applies risk exceptions and the severity gate, and renders the
// findings as a table, JSON or SARIF.
package vuln

import (
	"encoding/json"
	"time"
)

// Entry is an OSV record (https://ossf.github.io/osv-schema/), the fields
// gantry uses.
type Entry struct {
	ID        string     `json:"id"`
	Modified  time.Time  `json:"modified"`
	Published time.Time  `json:"published"`
	Withdrawn *time.Time `json:"withdrawn,omitempty"`
	Aliases   []string   `json:"aliases,omitempty"`
	Summary   string     `json:"summary,omitempty"`
	Details   string     `json:"details,omitempty"`
	Severity  []Severity `json:"severity,omitempty"`
	Affected  []Affected `json:"affected"`
	// DatabaseSpecific may hold {"severity": "HIGH"} (GHSA).
	DatabaseSpecific json.RawMessage `json:"database_specific,omitempty"`
}

// Severity is an OSV severity: a CVSS vector and its type.
type Severity struct {
	Type  string `json:"type"` // CVSS_V3, CVSS_V4, ...
	Score string `json:"score"`
}

// Affected is one affected package of an entry.
type Affected struct {
	Package struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
	} `json:"package"`
	Severity         []Severity      `json:"severity,omitempty"`
	Ranges           []Range         `json:"ranges,omitempty"`
	Versions         []string        `json:"versions,omitempty"`
	DatabaseSpecific json.RawMessage `json:"database_specific,omitempty"`
}

// Range is a list of introduced/fixed events.
type Range struct {
	Type   string  `json:"type"` // SEMVER, ECOSYSTEM, GIT
	Events []Event `json:"events"`
}

// Event is one range event; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// dbSeverity reads database_specific.severity ("HIGH", "moderate", ...).
func dbSeverity(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var v struct {
		Severity any `json:"severity"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	s, _ := v.Severity.(string)
	return s
}
