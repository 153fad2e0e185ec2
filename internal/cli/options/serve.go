package options

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

// ServeStop are the flags of `gantry serve stop`.
type ServeStop struct {
	// Timeout bounds the wait for the server to finish its requests and
	// release the state dir (default 60s).
	Timeout time.Duration
}

// AddFlags registers --timeout.
func (o *ServeStop) AddFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&o.Timeout, "timeout", 60*time.Second, "how long to wait for the server to stop")
}

// Validate rejects a timeout that is not positive.
func (o *ServeStop) Validate() error {
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, not %s", o.Timeout)
	}
	return nil
}

// EnvLogs are the flags of `gantry env logs`.
type EnvLogs struct {
	Follow bool
}

// AddFlags registers --follow.
func (o *EnvLogs) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVarP(&o.Follow, "follow", "f", false, "keep printing new lines until interrupted")
}

// EnvRollback are the flags of `gantry env rollback`.
type EnvRollback struct {
	// ToRevision is the revision to go back to; 0 means the previous
	// serving one.
	ToRevision int
	Reason     string
}

// AddFlags registers --to-revision and --reason.
func (o *EnvRollback) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.ToRevision, "to-revision", 0, "revision number to roll back to (default: the previous serving revision)")
	fs.StringVar(&o.Reason, "reason", "", "why, recorded in the environment's history")
}

// Validate rejects a negative revision.
func (o *EnvRollback) Validate() error {
	if o.ToRevision < 0 {
		return fmt.Errorf("--to-revision must be a revision number (1 or more), not %d", o.ToRevision)
	}
	return nil
}

// EnvSource are the flags of `gantry env status|history|rollback` that
// find a kubernetes environment: its entry in the pipeline file says
// which cluster, namespace and release it is.
type EnvSource struct {
	Pipeline string
	Dir      string
}

// AddFlags registers --file and --dir.
func (o *EnvSource) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Pipeline, "file", "", "pipeline file declaring the environment; a runtime: kubernetes environment is read from its cluster (default DIR/.gantry/pipeline.yaml when it exists)")
	fs.StringVar(&o.Dir, "dir", ".", "repository of the pipeline file and the files the environment names")
}
