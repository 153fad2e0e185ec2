package serve

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/runview"
)

// Error codes of decisions.
const (
	CodeNotApprover       = "not_approver"        // engine.ErrForbidden, 403
	CodeNoPendingApproval = "no_pending_approval" // engine.ErrNoPendingApproval, 409
)

// DecisionRequest is the body of POST /api/v1/runs/{id}/approvals/{stage}.
type DecisionRequest struct {
	// Decision is "approve" or "reject".
	Decision string `json:"decision"`
	// Comment is the approver's comment; a rejection needs one (its
	// reason).
	Comment string `json:"comment,omitempty"`
	// NoResume records an approval without resuming the run
	// (gantry approve --no-resume).
	NoResume bool `json:"noResume,omitempty"`
}

// DecisionResponse answers a decision.
type DecisionResponse struct {
	Approval runview.Approval `json:"approval"`
	// Resumed says the run was queued to go on.
	Resumed bool `json:"resumed"`
}

// ErrNoQueue is what an approval answers (501) when the server has no
// queue to resume the run on.
var ErrNoQueue = fmt.Errorf("this gantry serve cannot resume runs yet (no run queue): record the approval with noResume and resume with gantry run --resume: %w", errors.ErrUnsupported)

// postDecision approves or rejects a waiting run's stage as the caller,
// checked as gantry approve checks: the caller's name must hold one of
// the stage's approval roles in the approvers file read from the
// repository's default branch (STATE_DIR/approvers.yaml replaces it);
// a refusal is audited. An approval then resumes the run through the
// queue.
func (a *API) postDecision(w http.ResponseWriter, r *http.Request, who auth.Identity) {
	ctx := r.Context()
	run, ok := a.loadRun(w, r)
	if !ok {
		return
	}
	stage := r.PathValue("stage")
	var req DecisionRequest
	if !decode(w, r, "decision", &req) {
		return
	}
	var approve bool
	switch req.Decision {
	case "approve":
		approve = true
	case "reject":
		if req.Comment == "" {
			badRequest(w, "decision: comment: a rejection needs its reason")
			return
		}
	default:
		badRequest(w, "decision: decision: want approve or reject, not %q", req.Decision)
		return
	}
	if req.NoResume && !approve {
		badRequest(w, "decision: noResume: only an approval resumes a run")
		return
	}
	resume := approve && !req.NoResume
	if a.runs.Decider == nil {
		a.writeError(w, r, "decide", fmt.Errorf("this gantry serve cannot decide approvals: %w", errors.ErrUnsupported))
		return
	}
	if resume && a.runs.Queue == nil {
		a.writeError(w, r, "decide", ErrNoQueue)
		return
	}
	approvers, source, err := engine.LoadApprovers(ctx, run.Dir, a.runs.StateDir)
	if errors.Is(err, engine.ErrNoDefaultBranch) {
		approvers, source, err = nil, err.Error(), nil
	}
	if err != nil {
		writeErrorBody(w, http.StatusUnprocessableEntity, CodeInvalidRequest, fmt.Sprintf("read the approvers file of run %d: %v", run.ID, err))
		return
	}
	ap, err := a.runs.Decider.Decide(ctx, engine.DecideRequest{RunID: run.ID, Stage: stage, Approve: approve, Comment: req.Comment,
		Who: engine.Identity{Name: who.Name, Via: string(who.Method)}, Approvers: approvers, Source: source})
	switch {
	case errors.Is(err, engine.ErrForbidden):
		writeErrorBody(w, http.StatusForbidden, CodeNotApprover, err.Error())
		return
	case errors.Is(err, engine.ErrNoPendingApproval):
		writeErrorBody(w, http.StatusConflict, CodeNoPendingApproval, err.Error())
		return
	case err != nil:
		a.writeError(w, r, fmt.Sprintf("decide the approval of run %d", run.ID), err)
		return
	}
	resp := DecisionResponse{Approval: runview.Approval{Stage: ap.Stage, Status: ap.Status, Roles: runview.SplitRoles(ap.RequestedRoles),
		Requested: ap.Requested, Actor: ap.Actor, Comment: ap.Comment, Digest: ap.Digest}}
	if !ap.Decided.IsZero() {
		d := ap.Decided.UTC()
		resp.Approval.Decided = &d
	}
	if resume {
		if err := a.runs.Queue.Resume(ctx, strconv.FormatInt(run.ID, 10)); err != nil {
			a.writeError(w, r, fmt.Sprintf("approved; resume run %d", run.ID), err)
			return
		}
		resp.Resumed = true
	}
	a.logger.Info("approval decided", "run", run.ID, "stage", ap.Stage, "status", ap.Status, "by", who.Name, "at", time.Now().UTC())
	writeJSON(w, http.StatusOK, resp)
}
