package options

import "github.com/spf13/pflag"

// Verify are the flags of `gantry verify`.
type Verify struct {
	Key          string
	Require      []string
	Attestations bool
	Insecure     bool
	// AllowAllowedFailures accepts a gate whose only failures were
	// steps with allow_failure: true.
	AllowAllowedFailures bool
	Output
}

// AddFlags registers the verify flags.
func (o *Verify) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Key, "key", "", "cosign public key file (cosign.pub) or KMS URI; default STATE_DIR/keys/cosign.pub when it exists")
	fs.StringSliceVar(&o.Require, "require", nil, "gates whose passing verdict must be attested on the image (lint, commit-messages, tests, vuln-scan, sast, licenses, sbom, approval)")
	fs.BoolVar(&o.Attestations, "attestations", false, "list the image's attestations and whether each verified")
	fs.BoolVar(&o.Insecure, "insecure", false, "allow plain HTTP to the registry (always on for localhost)")
	fs.BoolVar(&o.AllowAllowedFailures, "allow-allowed-failures", false, "with --require, accept a gate whose only failed steps had allow_failure: true (verdict allowed-failure; refused by default)")
	o.Output.AddFlags(fs)
}
