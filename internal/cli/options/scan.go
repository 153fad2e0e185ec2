package options

import "github.com/spf13/pflag"

// Scan are the flags of `gantry scan`.
type Scan struct {
	DB             string
	Output         string
	Platform       string
	FailOn         []string
	Unscored       string
	FixedOnly      bool
	NoFixOlderThan string
	Exceptions     string
	Insecure       bool
	Scanner        string
	TrivyReport    string
	TrivyCache     string
	TrivyDownload  bool
}

// AddFlags registers the scan flags.
func (o *Scan) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.DB, "db", "", "OSV database: directory, .tar.gz or .zip of OSV JSON files (default $GANTRY_VULN_DB or STATE_DIR/vulndb)")
	fs.StringVarP(&o.Output, "output", "o", "table", "report format: table, json or sarif")
	fs.StringVar(&o.Platform, "platform", "linux/amd64", "platform of an image index to scan: os/arch or all")
	fs.StringSliceVar(&o.FailOn, "fail-on", []string{"HIGH", "CRITICAL"}, "severities that fail the scan")
	fs.StringVar(&o.Unscored, "unscored", "fail", "findings without a severity: fail (count as HIGH), warn or ignore")
	fs.BoolVar(&o.FixedOnly, "fixed-only", false, "only findings with a fixed version can fail")
	fs.StringVar(&o.NoFixOlderThan, "no-fix-older-than", "", "findings without a fix fail only once published longer ago than this (e.g. 30d)")
	fs.StringVar(&o.Exceptions, "exceptions", ".gantry/exceptions.yaml", "risk exceptions file")
	fs.BoolVar(&o.Insecure, "insecure", false, "allow plain HTTP to the registry (always on for localhost)")
	fs.StringVar(&o.Scanner, "scanner", "gantry", "scanner: gantry (built-in OSV matcher), trivy, or auto (trivy when on PATH)")
	fs.StringVar(&o.TrivyReport, "trivy-report", "", "gate an existing Trivy JSON report instead of scanning (no TARGET)")
	fs.StringVar(&o.TrivyCache, "trivy-cache", "", "Trivy's cache directory holding its database (default Trivy's own)")
	fs.BoolVar(&o.TrivyDownload, "trivy-download", false, "let Trivy update its database and go online (default: --skip-db-update --offline-scan)")
}
