package engine

import (
	"time"

	"github.com/gantry-ci/gantry/internal/store"
)

// EventType says what happened.
type EventType int

// Event types, in the order a run produces them.
const (
	RunStarted EventType = iota
	StageStarted
	StepStarted
	StepLog
	StepFinished
	StageFinished
	RunFinished
)

// Event is one progress report. Text fields are already masked.
type Event struct {
	Type    EventType
	RunID   int64
	Stage   string
	Step    string
	Status  store.Status
	Message string
	// Line is a log line (StepLog), without its newline.
	Line string
	// Stream says who wrote Line: "out" the step, "sys" gantry itself
	// (as store.LogLine.Stream).
	Stream  string
	Time    time.Time
	Elapsed time.Duration
	// Skip says why a stage was skipped (StageFinished with
	// store.StatusSkipped); SkipUnknown otherwise.
	Skip SkipKind
}

// SkipKind says why a stage was skipped, so that reporters can tell a
// stage that chose not to run from one that never got to.
type SkipKind int

// Reasons a stage is skipped.
const (
	SkipUnknown SkipKind = iota
	// SkipWhen: the stage's own when: was false.
	SkipWhen
	// SkipAfterFailure: an earlier stage failed.
	SkipAfterFailure
	// SkipCancelled: the run was cancelled before the stage started.
	SkipCancelled
)

// Observer receives progress events. Observe is called from several
// goroutines at once and must not block for long.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// Observe implements Observer.
func (f ObserverFunc) Observe(e Event) { f(e) }

type nopObserver struct{}

func (nopObserver) Observe(Event) {}
