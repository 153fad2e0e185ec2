package evidence

import (
	"time"

	"github.com/gantry-ci/gantry/internal/step"
)

// GateApproval is the gate of granted manual approvals: its predicate
// records who approved which stage of the run, when, for which roles and
// with what comment. A sign step that runs after the approval (in the
// approved stage or later) attests it on the image, so that
// `gantry verify --require approval` passes only for a digest whose
// approval was granted.
const GateApproval = "approval"

// Approval is one granted approval in the approval predicate.
type Approval struct {
	Stage   string   `json:"stage"`
	Actor   string   `json:"actor"`
	Roles   []string `json:"roles,omitempty"`
	Comment string   `json:"comment,omitempty"`
	// Time is when it was granted (RFC 3339, UTC).
	Time string `json:"time"`
}

// approvalPredicate returns the approval gate's predicate of view, or nil
// when the run has no granted approval. Only granted approvals reach a
// run that goes on, so its verdict is pass.
func approvalPredicate(view step.RunView, run Run) *Predicate {
	if len(view.Approvals) == 0 {
		return nil
	}
	p := &Predicate{Gate: GateApproval, Verdict: Pass, Run: run, Steps: []Step{}}
	for _, a := range view.Approvals {
		p.Approvals = append(p.Approvals, Approval{Stage: a.Stage, Actor: a.Actor, Roles: a.Roles,
			Comment: a.Comment, Time: a.Decided.UTC().Format(time.RFC3339)})
	}
	return p
}
