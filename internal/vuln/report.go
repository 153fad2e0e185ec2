package vuln

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/inventory"
)

// Report is one scan: what was scanned, with which database, and the
// gate's verdict. It is the vuln-report.json artifact.
type Report struct {
	// Scanner is ScannerGantry or ScannerTrivy.
	Scanner   string    `json:"scanner"`
	Target    string    `json:"target"`
	Kind      string    `json:"kind"`
	Digest    string    `json:"digest,omitempty"`
	Database  string    `json:"database"`
	Entries   int       `json:"database_entries"`
	ScannedAt time.Time `json:"scanned_at"`
	Binaries  int       `json:"binaries"`
	Modules   int       `json:"modules"`
	Packages  int       `json:"os_packages"`
	Passed    bool      `json:"passed"`
	*Verdict
}

// Scanners: gantry's own OSV matcher, or Trivy's report fed through the
// same gate.
const (
	ScannerGantry = "gantry"
	ScannerTrivy  = "trivy"
)

// NewReport assembles the report of a scan.
func NewReport(inv *inventory.Inventory, db *DB, v *Verdict, now time.Time) *Report {
	r := &Report{Scanner: ScannerGantry, Target: inv.Target, Kind: inv.Kind, Digest: inv.Digest, Database: db.Source, Entries: db.Len(),
		ScannedAt: now.UTC(), Binaries: len(inv.Binaries), Packages: len(inv.Packages), Passed: v.Passed(), Verdict: v}
	for _, b := range inv.Binaries {
		r.Modules += len(b.Deps)
	}
	return r
}

// JSON encodes the report, indented.
func (r *Report) JSON() ([]byte, error) {
	return json.MarshalIndent(r, "", "  ")
}

// WriteTable prints a readable table and summary.
func (r *Report) WriteTable(w io.Writer) error {
	// Rendered into memory (writes cannot fail there), written once.
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	if r.Scanner == ScannerTrivy {
		fmt.Fprintf(tw, "Target: %s (scanned by %s; %d Go binaries)\n", r.Target, r.Database, r.Binaries)
	} else {
		fmt.Fprintf(tw, "Target: %s (%d Go binaries, %d modules, %d OS packages; %d database entries)\n",
			r.Target, r.Binaries, r.Modules, r.Packages, r.Entries)
	}
	if len(r.Findings) > 0 {
		fmt.Fprintln(tw, "ID\tSEVERITY\tPACKAGE\tVERSION\tFIXED\tLOCATION\tSTATUS")
	}
	for _, f := range r.Findings {
		sev := f.Severity.Level.String()
		if f.Severity.Score > 0 {
			sev = fmt.Sprintf("%s %.1f", sev, f.Severity.Score)
		}
		fixed := f.Fixed
		if fixed == "" {
			fixed = "-"
		}
		status := string(f.Status)
		if f.Fails {
			status += ", FAILS"
		}
		loc := f.Location
		if f.Platform != "" {
			loc += " (" + f.Platform + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.ID, sev, f.Package, f.Version, fixed, loc, status)
	}
	_ = tw.Flush()
	for _, f := range r.Findings {
		if f.Reason != "" {
			fmt.Fprintf(&buf, "%s: %s\n", f.ID, f.Reason)
		}
	}
	for _, s := range r.Warnings {
		fmt.Fprintf(&buf, "warning: %s\n", s)
	}
	fmt.Fprintln(&buf, r.Summary())
	_, err := w.Write(buf.Bytes())
	return err
}

// Summary is one line.
func (r *Report) Summary() string {
	if len(r.Findings) == 0 {
		return "vuln-scan: no vulnerabilities found"
	}
	var parts []string
	for l := Critical; l >= Unscored; l-- {
		if n := r.Counts[l.String()]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, strings.ToLower(l.String())))
		}
	}
	verdict := "passed"
	if !r.Passed {
		verdict = fmt.Sprintf("FAILED (%d failing)", r.Failing)
	}
	return fmt.Sprintf("vuln-scan: %d finding(s): %s; %d excepted; %s", len(r.Findings), strings.Join(parts, ", "), r.Excepted, verdict)
}

// Findings converts the report to gantry's findings model for SARIF:
// failing findings are errors, other HIGH/CRITICAL or expired ones warnings,
// the rest notes.
func (r *Report) FindingsReport() *findings.Report {
	out := &findings.Report{Tool: "gantry vuln-scan", InfoURI: "https://osv.dev"}
	if r.Scanner == ScannerTrivy {
		out.Tool, out.InfoURI = "gantry vuln-scan (trivy)", "https://trivy.dev"
	}
	for _, f := range r.Findings {
		sev := findings.Note
		switch {
		case f.Fails:
			sev = findings.Error
		case f.Status == StatusExpired || f.Severity.Level >= High:
			sev = findings.Warning
		}
		msg := fmt.Sprintf("%s %s: %s %s", f.Package, f.Version, f.Severity.Level, f.Summary)
		switch {
		case f.Fixed != "":
			msg += "; fixed in " + f.Fixed
		case f.FixStatus != "" && f.FixStatus != "affected":
			msg += "; no fix available (" + f.FixStatus + ")"
		default:
			msg += "; no fix available"
		}
		if f.Reason != "" {
			msg += " (" + f.Reason + ")"
		}
		out.Add(findings.Finding{File: strings.TrimPrefix(f.Location, "/"), Rule: f.ID, Severity: sev, Message: msg})
	}
	return out
}

// SARIF encodes the findings as a SARIF 2.1.0 log.
func (r *Report) SARIF() ([]byte, error) { return findings.SARIF(r.FindingsReport()) }
