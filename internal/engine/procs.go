package engine

import (
	"context"

	"github.com/gantry-ci/gantry/internal/proc"
)

// procTracking is the optional ability of a Store to record the process
// groups of running steps and their services (store.Store has it), so that
// what a killed gantry left running is ended when the store is next
// opened.
type procTracking interface {
	ProcTracker(runID int64, stage, step string) proc.Tracker
}

// trackProcs returns ctx with the step's process groups recorded through
// the Store, when it can (see proc.WithTracker).
func (r *runner) trackProcs(ctx context.Context, stage, name string) context.Context {
	if r.e.procs == nil {
		return ctx
	}
	return proc.WithTracker(ctx, r.e.procs.ProcTracker(r.run.ID, stage, name))
}
