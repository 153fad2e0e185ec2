package options

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"
)

// Run are the flags of `gantry run`.
type Run struct {
	Dir      string
	Pipeline string
	Stages   []string
	From     string
	Until    string
	Event    string
	Branch   string
	Base     string
	NoCache  bool
	Jobs     int
	Progress string
	// Resume continues a recorded run instead of starting one.
	Resume int64
	// QueueItem is the run queue item a gantry serve worker runs this
	// run for (hidden): the trigger was decided by the server from the
	// default branch's on:, and the run id is recorded against the item.
	QueueItem string
}

// AddFlags registers the flags.
func (o *Run) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Dir, "dir", ".", "repository to run the pipeline in")
	fs.StringVar(&o.Pipeline, "pipeline", "", "pipeline file (default DIR/.gantry/pipeline.yaml)")
	fs.StringArrayVar(&o.Stages, "stage", nil, "run only this stage (repeatable)")
	fs.StringVar(&o.From, "from", "", "start at this stage")
	fs.StringVar(&o.Until, "until", "", "stop after this stage")
	fs.StringVar(&o.Event, "event", "push", "event to simulate: push or pull_request")
	fs.StringVar(&o.Branch, "branch", "", "branch name (default: the checked-out branch; for pull_request, the head branch)")
	fs.StringVar(&o.Base, "base", "", "pull_request: the target branch (default main); push: the previous head revision")
	fs.BoolVar(&o.NoCache, "no-cache", false, "run every step even if an earlier run had the same inputs")
	fs.IntVar(&o.Jobs, "jobs", 0, "steps to run at once (default: number of CPUs)")
	fs.StringVar(&o.Progress, "progress", "auto", "progress display: auto, tty or plain")
	fs.Int64Var(&o.Resume, "resume", 0, "continue run `N` (waiting for an approval that was decided, interrupted or cancelled) with the pipeline and commit it recorded")
	fs.StringVar(&o.QueueItem, "queue-item", "", "run queue item this run executes (set by gantry serve's workers)")
	_ = fs.MarkHidden("queue-item")
}

// runFlagsFixedByResume are the flags whose values a resumed run takes
// from its record.
var runFlagsFixedByResume = []string{"pipeline", "stage", "from", "until", "event", "branch", "base", "no-cache"}

// ValidateResume refuses, with --resume, the flags whose values the run
// recorded.
func (o *Run) ValidateResume(fs *pflag.FlagSet) error {
	if o.Resume == 0 {
		return nil
	}
	if o.Resume < 0 {
		return errors.New("--resume needs a run id (a positive number)")
	}
	for _, name := range runFlagsFixedByResume {
		if fs.Changed(name) {
			return fmt.Errorf("--%s cannot be combined with --resume: a resumed run keeps what it recorded", name)
		}
	}
	return nil
}

// Validate checks flag values.
func (o *Run) Validate() error {
	switch o.Event {
	case "push", "pull_request":
	default:
		return fmt.Errorf("--event must be push or pull_request, not %q", o.Event)
	}
	switch o.Progress {
	case "auto", "tty", "plain":
	default:
		return fmt.Errorf("--progress must be auto, tty or plain, not %q", o.Progress)
	}
	if o.Jobs < 0 {
		return errors.New("--jobs must be at least 1")
	}
	if len(o.Stages) > 0 && (o.From != "" || o.Until != "") {
		return errors.New("--stage cannot be combined with --from or --until")
	}
	return nil
}
