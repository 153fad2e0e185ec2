package options

import (
	"errors"

	"github.com/spf13/pflag"
)

// Approve are the flags of `gantry approve`.
type Approve struct {
	Stage    string
	Comment  string
	NoResume bool
	Dir      string
	Progress string
}

// AddFlags registers the flags.
func (o *Approve) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Stage, "stage", "", "the stage to approve (default: the run's one pending approval)")
	fs.StringVar(&o.Comment, "comment", "", "a comment stored with the decision")
	fs.BoolVar(&o.NoResume, "no-resume", false, "only record the approval; resume later with gantry run --resume")
	fs.StringVar(&o.Dir, "dir", "", "the repository (default: the one the run recorded)")
	fs.StringVar(&o.Progress, "progress", "auto", "progress display of the resumed run: auto, tty or plain")
}

// Validate checks flag values.
func (o *Approve) Validate() error {
	return validateProgress(o.Progress)
}

// Reject are the flags of `gantry reject`.
type Reject struct {
	Stage  string
	Reason string
	Dir    string
}

// AddFlags registers the flags.
func (o *Reject) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Stage, "stage", "", "the stage to reject (default: the run's one pending approval)")
	fs.StringVar(&o.Reason, "reason", "", "why (required; stored with the decision)")
	fs.StringVar(&o.Dir, "dir", "", "the repository (default: the one the run recorded)")
}

// Validate checks flag values.
func (o *Reject) Validate() error {
	if o.Reason == "" {
		return errors.New("--reason is required")
	}
	return nil
}

func validateProgress(p string) error {
	switch p {
	case "auto", "tty", "plain":
		return nil
	}
	return errors.New("--progress must be auto, tty or plain, not " + `"` + p + `"`)
}
