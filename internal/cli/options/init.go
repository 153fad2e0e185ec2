package options

import "github.com/spf13/pflag"

// Init are the flags of `gantry init`.
type Init struct {
	// Force overwrites files that are already there.
	Force bool
	// DryRun prints the pipeline and writes nothing.
	DryRun bool
	// NoMeasure runs nothing: no tests, scans or licence check, so no
	// coverage gate and no recorded exceptions.
	NoMeasure bool
}

// AddFlags registers the init flags.
func (o *Init) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.Force, "force", false, "overwrite .gantry/pipeline.yaml and companion files that already exist")
	fs.BoolVar(&o.DryRun, "dry-run", false, "print the pipeline that would be written; write nothing")
	fs.BoolVar(&o.NoMeasure, "no-measure", false, "run nothing (tests, gosec, vulnerability and licence checks): only read files; no coverage gate")
}
