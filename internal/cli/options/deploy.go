package options

import (
	"time"

	"github.com/spf13/pflag"
)

// Deploy are the flags of `gantry deploy`.
type Deploy struct {
	Env      string
	Pipeline string
	Dir      string
	Timeout  time.Duration
}

// AddFlags registers the deploy flags.
func (o *Deploy) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Env, "env", "", "environment to deploy to, declared in the pipeline file's environments: block (required)")
	fs.StringVar(&o.Pipeline, "file", "", "pipeline file declaring the environment (default DIR/.gantry/pipeline.yaml)")
	fs.StringVar(&o.Dir, "dir", ".", "repository whose chart, values and policy files the environment names")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "how long the new revision may take to serve")
}
