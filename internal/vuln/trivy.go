package vuln

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxTrivyReport bounds the size of a Trivy JSON report read into memory.
const MaxTrivyReport = 256 << 20

// TrivyReport is the subset of Trivy's JSON report (`trivy image|fs|rootfs
// --format json`, SchemaVersion 2) that gantry reads. Only these fields are
// declared; everything else in the document is ignored.
type TrivyReport struct {
	SchemaVersion int       `json:"SchemaVersion"`
	CreatedAt     time.Time `json:"CreatedAt"`
	ArtifactName  string    `json:"ArtifactName"`
	// ArtifactType is container_image, filesystem, repository, vm, ...
	ArtifactType string `json:"ArtifactType"`
	Metadata     struct {
		OS *struct {
			Family string `json:"Family"`
			Name   string `json:"Name"`
		} `json:"OS"`
		ImageID     string   `json:"ImageID"`
		RepoDigests []string `json:"RepoDigests"`
	} `json:"Metadata"`
	// Trivy is set by recent Trivy versions.
	Trivy struct {
		Version string `json:"Version"`
	} `json:"Trivy"`
	Results []TrivyResult `json:"Results"`
}

// TrivyResult is one scanned target: the OS packages of an image, one Go
// binary, one lock file, ...
type TrivyResult struct {
	Target string `json:"Target"`
	// Class is os-pkgs or lang-pkgs for vulnerability results.
	Class string `json:"Class"`
	// Type is the OS family (debian, alpine, ...) or the language
	// analyser (gobinary, gomod, npm, jar, ...).
	Type            string      `json:"Type"`
	Vulnerabilities []TrivyVuln `json:"Vulnerabilities"`
}

// TrivyVuln is one detected vulnerability.
type TrivyVuln struct {
	VulnerabilityID  string   `json:"VulnerabilityID"`
	VendorIDs        []string `json:"VendorIDs"`
	PkgName          string   `json:"PkgName"`
	PkgPath          string   `json:"PkgPath"`
	InstalledVersion string   `json:"InstalledVersion"`
	FixedVersion     string   `json:"FixedVersion"`
	// Status is fixed, affected, will_not_fix, fix_deferred,
	// end_of_life, under_investigation, not_affected or unknown.
	Status           string               `json:"Status"`
	Severity         string               `json:"Severity"`
	SeveritySource   string               `json:"SeveritySource"`
	CVSS             map[string]TrivyCVSS `json:"CVSS"`
	PublishedDate    *time.Time           `json:"PublishedDate"`
	LastModifiedDate *time.Time           `json:"LastModifiedDate"`
	Title            string               `json:"Title"`
	Description      string               `json:"Description"`
	PrimaryURL       string               `json:"PrimaryURL"`
	References       []string             `json:"References"`
}

// TrivyCVSS is one vendor's CVSS data (the CVSS map is keyed by vendor:
// nvd, ghsa, redhat, ...).
type TrivyCVSS struct {
	V2Vector  string  `json:"V2Vector"`
	V3Vector  string  `json:"V3Vector"`
	V40Vector string  `json:"V40Vector"`
	V2Score   float64 `json:"V2Score"`
	V3Score   float64 `json:"V3Score"`
	V40Score  float64 `json:"V40Score"`
}

// ParseTrivy decodes a Trivy JSON report read from name (used in errors).
// Syntax and type errors name the line, column and byte offset; a report
// that is not schema version 2 or lacks a vulnerability's ID, package or
// a known severity is an error naming the entry.
func ParseTrivy(name string, data []byte) (*TrivyReport, error) {
	if len(data) > MaxTrivyReport {
		return nil, fmt.Errorf("trivy report %s: larger than %d bytes", name, MaxTrivyReport)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("trivy report %s: empty file", name)
	}
	var r TrivyReport
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, jsonError(name, data, err)
	}
	if r.SchemaVersion != 2 {
		return nil, fmt.Errorf("trivy report %s: SchemaVersion %d, want 2 (a `trivy ... --format json` report)", name, r.SchemaVersion)
	}
	for i, res := range r.Results {
		for j, v := range res.Vulnerabilities {
			at := fmt.Sprintf("trivy report %s: Results[%d].Vulnerabilities[%d]", name, i, j)
			if v.VulnerabilityID == "" {
				return nil, fmt.Errorf("%s: VulnerabilityID is missing", at)
			}
			if v.PkgName == "" {
				return nil, fmt.Errorf("%s (%s): PkgName is missing", at, v.VulnerabilityID)
			}
			if _, err := ParseLevel(cmp.Or(v.Severity, "UNKNOWN")); err != nil {
				return nil, fmt.Errorf("%s (%s): %w", at, v.VulnerabilityID, err)
			}
		}
	}
	return &r, nil
}

// jsonError places a decoding error at line:column (offset) of data.
func jsonError(name string, data []byte, err error) error {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	// Offset counts the bytes read, the offending one included.
	off--
	if off < 0 || off >= int64(len(data)) {
		return fmt.Errorf("trivy report %s: %w", name, err)
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := int(off) - bytes.LastIndexByte(data[:off], '\n')
	return fmt.Errorf("trivy report %s:%d:%d (byte offset %d): %w", name, line, col, off, err)
}

// trivyEcosystems maps Trivy result types to OSV ecosystem names.
var trivyEcosystems = map[string]string{
	"debian": "Debian", "ubuntu": "Ubuntu", "alpine": "Alpine", "wolfi": "Wolfi", "chainguard": "Chainguard",
	"redhat": "Red Hat", "centos": "CentOS", "rocky": "Rocky Linux", "alma": "AlmaLinux", "amazon": "Amazon Linux",
	"oracle": "Oracle Linux", "suse linux enterprise server": "SUSE", "opensuse.leap": "openSUSE",
	"photon": "Photon OS", "azurelinux": "Azure Linux", "cbl-mariner": "Mariner",
	"gobinary": "Go", "gomod": "Go",
	"npm": "npm", "yarn": "npm", "pnpm": "npm", "node-pkg": "npm",
	"pip": "PyPI", "pipenv": "PyPI", "poetry": "PyPI", "uv": "PyPI", "python-pkg": "PyPI",
	"jar": "Maven", "pom": "Maven", "gradle": "Maven", "sbt": "Maven",
	"cargo": "crates.io", "rust-binary": "crates.io",
	"bundler": "RubyGems", "gemspec": "RubyGems", "composer": "Packagist", "nuget": "NuGet",
	"dotnet-core": "NuGet", "packages-props": "NuGet", "pub": "Pub", "hex": "Hex", "conan": "ConanCenter",
	"swift": "SwiftURL", "cocoapods": "CocoaPods",
}

// advisoryIDs finds advisory IDs in reference URLs: GHSA and GO- IDs
// anywhere (their shapes are unambiguous), CVE IDs only in NVD, cve.org
// and MITRE record URLs (other URLs mention related CVEs).
var (
	ghsaOrGoID = regexp.MustCompile(`\b(GHSA(?:-[23456789cfghjmpqrvwx]{4}){3}|GO-\d{4}-\d{4,})\b`)
	cveRecord  = regexp.MustCompile(`(?i)(?:nvd\.nist\.gov/vuln/detail/|cve\.org/CVERecord\?id=|cve\.mitre\.org/cgi-bin/cvename\.cgi\?name=)(CVE-\d{4}-\d{4,})`)
)

// Aliases returns the vulnerability's other IDs: Trivy's VendorIDs (DSA,
// RHSA, ALAS, ...) and the GHSA, GO- and CVE IDs its references name,
// without its own ID, in first-seen order.
func (v *TrivyVuln) Aliases() []string {
	var out []string
	add := func(id string) {
		id = strings.TrimSpace(id)
		if id != "" && !strings.EqualFold(id, v.VulnerabilityID) && !slices.ContainsFunc(out, func(s string) bool { return strings.EqualFold(s, id) }) {
			out = append(out, id)
		}
	}
	for _, id := range v.VendorIDs {
		add(id)
	}
	for _, u := range append([]string{v.PrimaryURL}, v.References...) {
		for _, m := range ghsaOrGoID.FindAllString(u, -1) {
			add(m)
		}
		for _, m := range cveRecord.FindAllStringSubmatch(u, -1) {
			add(strings.ToUpper(m[1]))
		}
	}
	return out
}

// trivyVendorOrder is the order in which vendors' CVSS data is considered
// after the severity source: NVD, then GitHub.
var trivyVendorOrder = []string{"nvd", "ghsa"}

// Score is gantry's severity of a Trivy finding. The level is Trivy's own
// Severity (UNKNOWN or empty is Unscored): Trivy picks it by vendor
// precedence and gantry does not second-guess it. The CVSS vector of the
// severity source (else NVD, else GHSA, else any vendor by name) is
// recorded, and its v3 base score is computed by gantry's own CVSS v3.1
// scorer (Trivy's V3Score when the vector does not parse); the score is
// informational and never changes the level. A v4-only vector is stored
// unscored.
func (v *TrivyVuln) Score() Score {
	lvl, err := ParseLevel(cmp.Or(v.Severity, "UNKNOWN"))
	if err != nil {
		lvl = Unscored
	}
	s := Score{Level: lvl}
	if lvl != Unscored {
		s.Source = "trivy"
		if v.SeveritySource != "" {
			s.Source = "trivy:" + v.SeveritySource
		}
	}
	vendors := []string{}
	if v.SeveritySource != "" {
		vendors = append(vendors, v.SeveritySource)
	}
	vendors = append(vendors, trivyVendorOrder...)
	rest := make([]string, 0, len(v.CVSS))
	for k := range v.CVSS {
		rest = append(rest, k)
	}
	slices.Sort(rest)
	vendors = append(vendors, rest...)
	for _, k := range vendors {
		c, ok := v.CVSS[k]
		if !ok || c.V3Vector == "" {
			continue
		}
		s.Vector = c.V3Vector
		if sc, err := CVSS3Score(c.V3Vector); err == nil {
			s.Score = sc
		} else if c.V3Score > 0 && c.V3Score <= 10 {
			s.Score = c.V3Score
		}
		return s
	}
	for _, k := range vendors {
		if c, ok := v.CVSS[k]; ok && c.V40Vector != "" {
			s.Vector = c.V40Vector
			return s
		}
	}
	return s
}

// Findings converts the report into gantry findings, tagged with
// platform (the image platform scanned, "" when not known). Results
// without vulnerabilities, and vulnerabilities Trivy marks not_affected,
// yield nothing. Findings are sorted as Scan sorts them.
func (r *TrivyReport) Findings(platform string) []Finding {
	var out []Finding
	seen := map[string]bool{}
	for _, res := range r.Results {
		eco := trivyEcosystems[strings.ToLower(res.Type)]
		if eco == "" {
			eco = res.Type
		}
		for i := range res.Vulnerabilities {
			v := &res.Vulnerabilities[i]
			if v.Status == "not_affected" {
				continue
			}
			loc := cmp.Or(v.PkgPath, res.Target)
			f := Finding{
				ID: v.VulnerabilityID, Aliases: v.Aliases(), Summary: trivySummary(v), Ecosystem: eco,
				Package: v.PkgName, Version: v.InstalledVersion, Fixed: v.FixedVersion, FixStatus: v.Status,
				Location: loc, Platform: platform, Severity: v.Score(), URL: v.PrimaryURL,
			}
			if p := v.PublishedDate; p != nil && p.Year() > 1 {
				t := p.UTC()
				f.Published = &t
			}
			k := f.ID + "|" + f.Package + "|" + f.Version + "|" + f.Location + "|" + f.Platform
			if !seen[k] {
				seen[k] = true
				out = append(out, f)
			}
		}
	}
	SortFindings(out)
	return out
}

// SortFindings orders findings by location, platform, package and ID.
func SortFindings(fs []Finding) {
	slices.SortFunc(fs, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Location, b.Location), cmp.Compare(a.Platform, b.Platform),
			cmp.Compare(a.Package, b.Package), cmp.Compare(a.ID, b.ID))
	})
}

// trivySummary is the title, else the description's first line, capped.
func trivySummary(v *TrivyVuln) string {
	s := v.Title
	if s == "" {
		s, _, _ = strings.Cut(strings.TrimSpace(v.Description), "\n")
	}
	const max = 160
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max-1]) + "…"
	}
	return s
}

// Digest returns the image digest the report names (from RepoDigests),
// or "".
func (r *TrivyReport) Digest() string {
	for _, d := range r.Metadata.RepoDigests {
		if _, h, ok := strings.Cut(d, "@"); ok {
			return h
		}
	}
	return ""
}

// NewTrivyReport assembles the report of a Trivy scan of target: one
// Trivy report per platform scanned (at least one).
func NewTrivyReport(target string, reps []*TrivyReport, v *Verdict, now time.Time) *Report {
	r := &Report{Scanner: ScannerTrivy, Target: target, Database: "trivy", ScannedAt: now.UTC(), Passed: v.Passed(), Verdict: v}
	bins := map[string]bool{}
	for i, t := range reps {
		if i == 0 {
			r.Kind = map[string]string{"container_image": "image", "filesystem": "source", "rootfs": "rootfs"}[t.ArtifactType]
			if r.Kind == "" {
				r.Kind = t.ArtifactType
			}
			if t.Trivy.Version != "" {
				r.Database = "trivy " + t.Trivy.Version
			}
			if r.Target == "" {
				r.Target = t.ArtifactName
			}
			r.Digest = t.Digest()
		}
		for _, res := range t.Results {
			if res.Type == "gobinary" {
				bins[res.Target] = true
			}
		}
	}
	r.Binaries = len(bins)
	return r
}
