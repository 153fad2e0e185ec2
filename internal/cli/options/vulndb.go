package options

import "github.com/spf13/pflag"

// VulnDB are the flags of `gantry vulndb update`.
type VulnDB struct {
	// From are the OSV exports to fetch: URLs or files (.zip or .tar.gz
	// of OSV JSON). Default: the sources of the stored database, else
	// $GANTRY_VULN_DB_SOURCES, else the OSV exports of Go and Debian.
	From []string
}

// AddFlags registers the vulndb update flags.
func (o *VulnDB) AddFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.From, "from", nil, "an OSV export to fetch: http(s) URL or .zip/.tar.gz file of OSV JSON (repeat for several; default the stored database's sources, else $GANTRY_VULN_DB_SOURCES, else the Go and Debian exports of osv.dev)")
}
