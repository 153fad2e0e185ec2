package options

import "github.com/spf13/pflag"

// SBOM are the flags of `gantry sbom`.
type SBOM struct {
	Output   string
	Platform string
	Attach   bool
	Insecure bool
	Validate string
}

// AddFlags registers the sbom flags.
func (o *SBOM) AddFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&o.Output, "output", "o", "", "write the CycloneDX JSON to this file (default standard output)")
	fs.StringVar(&o.Platform, "platform", "all", "platform of an image index to describe: os/arch or all")
	fs.BoolVar(&o.Attach, "attach", false, "attach the SBOM to TARGET (a REPO@DIGEST) as cosign's .sbom tag and an OCI 1.1 referrer")
	fs.BoolVar(&o.Insecure, "insecure", false, "allow plain HTTP to the registry (always on for localhost)")
	fs.StringVar(&o.Validate, "validate", "", "validate the SBOM against the CycloneDX 1.6 schema files in this directory")
}
