// Package vuln matches an inventory against OSV vulnerability data: the Go
// vulnerability database and OSV entries of other sources, loaded offline
// from a directory, .tar.gz or .zip of OSV JSON files. It scores CVSS v3
// vectors, applies risk exceptions and the severity gate, and renders the
// findings as a table, JSON or SARIF.
package vuln

import (
	"encoding/json"
	"slices"
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
	// EcosystemSpecific holds, for Go, the affected packages and the
	// platforms they are built for: {"imports": [{"path", "goos",
	// "goarch", "symbols"}]}.
	EcosystemSpecific json.RawMessage `json:"ecosystem_specific,omitempty"`
}

// goImports are the Go packages of an affected module that hold the
// vulnerable code, with the platforms they are limited to.
type goImports struct {
	Imports []struct {
		Path   string   `json:"path"`
		GOOS   []string `json:"goos"`
		GOARCH []string `json:"goarch"`
	} `json:"imports"`
}

// onPlatform reports whether a's vulnerable code is built for goos/goarch,
// as govulncheck decides: yes when a lists no imports, or when one of them
// is limited to no operating system (or lists goos) and to no architecture
// (or lists goarch). An empty goos or goarch (unknown) matches every list.
func (a *Affected) onPlatform(goos, goarch string) bool {
	if len(a.EcosystemSpecific) == 0 || (goos == "" && goarch == "") {
		return true
	}
	var es goImports
	if err := json.Unmarshal(a.EcosystemSpecific, &es); err != nil || len(es.Imports) == 0 {
		return true // nothing to narrow the entry by
	}
	in := func(list []string, v string) bool { return v == "" || len(list) == 0 || slices.Contains(list, v) }
	for _, imp := range es.Imports {
		if in(imp.GOOS, goos) && in(imp.GOARCH, goarch) {
			return true
		}
	}
	return false
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
