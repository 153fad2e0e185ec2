package options

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/spf13/pflag"
)

// RolloutAuth are the flags of the rollout verbs that check the caller's
// role: promote, abort, retry and undo.
type RolloutAuth struct {
	// Dir is the repository whose approvers file and pipeline say who
	// may act on the environment.
	Dir string
	// Roles name the roles allowed when no stage of the pipeline guards
	// the environment.
	Roles []string
	// Remote takes the verb on a gantry server, which checks the roles
	// itself.
	Remote Remote
}

// AddFlags registers --dir and --role.
func (o *RolloutAuth) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Dir, "dir", ".", "the repository: its .gantry/pipeline.yaml names the roles, its .gantry/approvers.yaml who holds them")
	fs.StringSliceVar(&o.Roles, "role", nil, "the roles allowed, when no stage of the pipeline with a blue-green step on ENV has approval: roles")
	o.Remote.AddFlags(fs)
}

var roleName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Validate checks role names.
func (o *RolloutAuth) Validate() error {
	if err := o.Remote.Validate(); err != nil {
		return err
	}
	if o.Remote.Enabled() && len(o.Roles) > 0 {
		return errors.New("--role does not go with --server: the server reads the roles from the pipeline of the run that deployed the environment")
	}
	for _, r := range o.Roles {
		if !roleName.MatchString(r) {
			return fmt.Errorf("--role %q: want letters, digits, '.', '_' or '-'", r)
		}
	}
	return nil
}

// RolloutPromote are the flags of `gantry rollout promote`.
type RolloutPromote struct {
	RolloutAuth
	Full bool
}

// AddFlags registers the flags.
func (o *RolloutPromote) AddFlags(fs *pflag.FlagSet) {
	o.RolloutAuth.AddFlags(fs)
	fs.BoolVar(&o.Full, "full", false, "skip the remaining analysis and pauses and switch at once")
}

// RolloutAbort are the flags of `gantry rollout abort`.
type RolloutAbort struct {
	RolloutAuth
	Reason string
}

// AddFlags registers the flags.
func (o *RolloutAbort) AddFlags(fs *pflag.FlagSet) {
	o.RolloutAuth.AddFlags(fs)
	fs.StringVar(&o.Reason, "reason", "", "why, recorded with the abort (default: aborted by hand)")
}

// RolloutUndo are the flags of `gantry rollout undo`.
type RolloutUndo struct {
	RolloutAuth
	ToRevision int
}

// AddFlags registers the flags.
func (o *RolloutUndo) AddFlags(fs *pflag.FlagSet) {
	o.RolloutAuth.AddFlags(fs)
	fs.IntVar(&o.ToRevision, "to-revision", 0, "revision to roll out again (default: the previous one)")
}

// Validate rejects a negative revision.
func (o *RolloutUndo) Validate() error {
	if o.ToRevision < 0 {
		return fmt.Errorf("--to-revision must be a revision number (1 or more), not %d", o.ToRevision)
	}
	return o.RolloutAuth.Validate()
}

// RolloutStatus are the flags of `gantry rollout status`.
type RolloutStatus struct {
	Output
	Watch bool
}

// AddFlags registers the flags.
func (o *RolloutStatus) AddFlags(fs *pflag.FlagSet) {
	o.Output.AddFlags(fs)
	fs.BoolVarP(&o.Watch, "watch", "w", false, "follow the rollout, printing each change and measurement, until it is Healthy or Degraded")
}

// Validate checks the flags.
func (o *RolloutStatus) Validate() error {
	if err := o.Output.Validate(); err != nil {
		return err
	}
	if o.Watch && o.Format != "table" && o.Format != "" {
		return errors.New("--watch prints text; it cannot be combined with -o " + o.Format)
	}
	return nil
}
