package engine

import (
	"context"
	"time"

	"github.com/gantry-ci/gantry/internal/store"
)

// Store is the run store the engine records into and reads back from
// (*store.Store). It is the sum of the small interfaces below; each part of
// the engine keeps and uses only the one it needs. A Store may also record
// the process groups of running steps (see procTracking).
type Store interface {
	RunRecorder
	RunResumer
	LogAppender
	ArtifactIndex
	CacheLookup
	ApprovalStore
	Journal
}

// RunRecorder records a run, its stages and its steps as they happen.
type RunRecorder interface {
	// CreateRun records a new run and sets r.ID; the store holds the
	// run's lock until FinishRun.
	CreateRun(ctx context.Context, r *store.Run) error
	FinishRun(ctx context.Context, id int64, st store.Status, msg string, at time.Time) error
	PutStage(ctx context.Context, st *store.Stage) error
	PutStep(ctx context.Context, st *store.Step) error
}

// RunResumer reads back what a run recorded and takes the run over again,
// for Resume and for what Decide shows the decider.
type RunResumer interface {
	GetRun(ctx context.Context, id int64) (*store.Run, error)
	Stages(ctx context.Context, runID int64) ([]store.Stage, error)
	Steps(ctx context.Context, runID int64) ([]store.Step, error)
	// ResumeRun takes the lock of run id again; it fails wrapping
	// store.ErrRunHeld while another process holds it.
	ResumeRun(ctx context.Context, id int64) error
}

// LogAppender stores the log lines of a step.
type LogAppender interface {
	AppendLogs(ctx context.Context, runID int64, stage, step string, lines []store.LogLine) error
}

// ArtifactIndex records which artifacts (blobs in the artifact store) a
// step produced, and lists them, for cache hits.
type ArtifactIndex interface {
	AddArtifact(ctx context.Context, a *store.Artifact) error
	StepArtifacts(ctx context.Context, runID int64, stage, step string) ([]store.Artifact, error)
}

// CacheLookup finds the newest passed or cached step recorded with a
// cache key; it returns an error wrapping store.ErrNotFound when there is
// none.
type CacheLookup interface {
	LookupCache(ctx context.Context, key string) (*store.Step, error)
}

// ApprovalStore records the approvals stages ask for and their decisions.
type ApprovalStore interface {
	RequestApproval(ctx context.Context, a *store.Approval) error
	Approvals(ctx context.Context, runID int64) ([]store.Approval, error)
	// ExpireApprovals rejects the pending approvals whose deadline is
	// not after now.
	ExpireApprovals(ctx context.Context, now time.Time) ([]store.Approval, error)
	Decide(ctx context.Context, approvalID int64, d store.Decision) error
}

// Journal records what happened around the steps: run events (failure
// actions) and the audit log (who started, resumed or decided what).
type Journal interface {
	AddEvent(ctx context.Context, e *store.Event) error
	Audit(ctx context.Context, e *store.AuditEntry) error
}

var (
	_ Store         = (*store.Store)(nil)
	_ RunRecorder   = (*store.Store)(nil)
	_ RunResumer    = (*store.Store)(nil)
	_ LogAppender   = (*store.Store)(nil)
	_ ArtifactIndex = (*store.Store)(nil)
	_ CacheLookup   = (*store.Store)(nil)
	_ ApprovalStore = (*store.Store)(nil)
	_ Journal       = (*store.Store)(nil)
	_ procTracking  = (*store.Store)(nil)
)
