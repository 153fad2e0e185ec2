package engine

import (
	"context"

	"github.com/gantry-ci/gantry/internal/proc"
)

// procTracking is the optional ability of a Recorder to record the process
// groups of running steps and their services (store.Store has it), so that
// what a killed gantry left running is ended when the store is next
// opened.
type procTracking interface {
	ProcTracker(runID int64, stage, step string) proc.Tracker
}

// trackProcs returns ctx with the step's process groups recorded through
// the Recorder, when it can (see proc.WithTracker).
func (r *runner) trackProcs(ctx context.Context, stage, name string) context.Context {
	if pt, ok := r.e.rec.(procTracking); ok {
		return proc.WithTracker(ctx, pt.ProcTracker(r.run.ID, stage, name))
	}
	return ctx
}
