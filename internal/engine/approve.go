package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/user"
	"slices"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/store"
)

// Identity is who takes a decision.
type Identity struct {
	Name string
	// Via says how the name was established: "os-user" (the local login
	// name), later "token" (a token signed by the server).
	Via string
}

// Identifier establishes who is calling. LocalUser is the one gantry has
// today; the server will verify signed tokens behind the same interface.
type Identifier interface {
	Identify(ctx context.Context) (Identity, error)
}

// LocalUser identifies the caller by the operating system's login name.
type LocalUser struct{}

var _ Identifier = LocalUser{}

// Identify implements Identifier.
func (LocalUser) Identify(context.Context) (Identity, error) {
	u, err := user.Current()
	if err != nil {
		return Identity{}, fmt.Errorf("identify the local user: %w", err)
	}
	return Identity{Name: u.Username, Via: "os-user"}, nil
}

// Errors of Decide.
var (
	// ErrForbidden: the caller holds none of the roles the approval names.
	ErrForbidden = errors.New("not allowed to decide this approval")
	// ErrNoPendingApproval: the run waits for no (such) approval.
	ErrNoPendingApproval = errors.New("no pending approval")
)

// DecideRequest is a decision on a waiting run's approval.
type DecideRequest struct {
	RunID int64
	// Stage names the stage; empty: the run's one pending approval.
	Stage   string
	Approve bool
	// Comment is the approver's comment or the rejection's reason.
	Comment string
	Who     Identity
	// Approvers says who holds which role; Source says where it was read,
	// for messages and the audit log. See LoadApprovers.
	Approvers spec.Approvers
	Source    string
}

// StageVerdict is one stage of a run as a decider saw it, stored as JSON
// with the decision.
type StageVerdict struct {
	Stage      string        `json:"stage"`
	Status     string        `json:"status"`
	Gate       string        `json:"gate,omitempty"`
	GatePassed *bool         `json:"gate_passed,omitempty"`
	Steps      []StepVerdict `json:"steps,omitempty"`
}

// StepVerdict is one step as a decider saw it.
type StepVerdict struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Summary string `json:"summary,omitempty"`
}

// Decide approves or rejects the pending approval of a waiting run, after
// checking that req.Who holds one of the roles it names (an approval
// without roles may be decided by anyone). A refusal is written to the
// audit log and returned wrapping ErrForbidden. The decision is stored
// with who, when, the comment, the image digest the run produced (a
// "digest" output of a passed step, the last in pipeline order) and the
// stage verdicts shown to the decider. A rejection ends the run rejected;
// an approval leaves it waiting for Resume. Approvals past their
// deadline are rejected first, and then count as decided.
func (e *Engine) Decide(ctx context.Context, req DecideRequest) (*store.Approval, error) {
	if req.Who.Name == "" {
		return nil, errors.New("decide approval: no identity")
	}
	now := time.Now()
	if _, err := e.approvalStore.ExpireApprovals(ctx, now); err != nil {
		return nil, fmt.Errorf("decide approval of run %d: %w", req.RunID, err)
	}
	approvals, err := e.approvalStore.Approvals(ctx, req.RunID)
	if err != nil {
		return nil, fmt.Errorf("decide approval of run %d: %w", req.RunID, err)
	}
	a, err := pendingApproval(req, approvals)
	if err != nil {
		return nil, err
	}
	roles := splitComma(a.RequestedRoles)
	subject := fmt.Sprintf("run %d stage %s", req.RunID, a.Stage)
	if len(roles) > 0 && !req.Approvers.Holds(req.Who.Name, roles) {
		why := fmt.Sprintf("%s (%s) holds none of the roles %s in %s", req.Who.Name, req.Who.Via, strings.Join(roles, ", "), req.Source)
		if req.Approvers == nil {
			why = fmt.Sprintf("%s (%s) holds none of the roles %s: no approvers file at %s", req.Who.Name, req.Who.Via, strings.Join(roles, ", "), req.Source)
		}
		if aerr := e.journal.Audit(ctx, &store.AuditEntry{Time: now, Actor: req.Who.Name, Action: "approval.refused", Subject: subject, Detail: why}); aerr != nil {
			return nil, fmt.Errorf("record refused approval: %w", aerr)
		}
		return nil, fmt.Errorf("run %d stage %s: %w: %s", req.RunID, a.Stage, ErrForbidden, why)
	}
	shown, digest, err := e.shownToDecider(ctx, req.RunID)
	if err != nil {
		return nil, fmt.Errorf("decide approval of run %d: %w", req.RunID, err)
	}
	d := store.Decision{Status: store.ApprovalRejected, Actor: req.Who.Name, Comment: req.Comment, Digest: digest, Evidence: shown, At: now}
	action := "approval.rejected"
	if req.Approve {
		d.Status, action = store.ApprovalApproved, "approval.approved"
	}
	if err := e.approvalStore.Decide(ctx, a.ID, d); err != nil {
		return nil, fmt.Errorf("decide approval of run %d: %w", req.RunID, err)
	}
	detail := fmt.Sprintf("by %s (%s), roles %s", req.Who.Name, req.Who.Via, strings.Join(req.Approvers.RolesOf(req.Who.Name), ","))
	if digest != "" {
		detail += ", image " + digest
	}
	if req.Comment != "" {
		detail += ": " + req.Comment
	}
	if err := e.journal.Audit(ctx, &store.AuditEntry{Time: now, Actor: req.Who.Name, Action: action, Subject: subject, Detail: detail}); err != nil {
		e.log.Error("audit approval", "run", req.RunID, "err", err)
	}
	a.Status, a.Actor, a.Comment, a.Decided, a.Digest, a.Evidence = d.Status, d.Actor, d.Comment, d.At, d.Digest, d.Evidence
	return a, nil
}

func pendingApproval(req DecideRequest, approvals []store.Approval) (*store.Approval, error) {
	var pending []*store.Approval
	var last *store.Approval
	for i := range approvals {
		a := &approvals[i]
		if req.Stage != "" && a.Stage != req.Stage {
			continue
		}
		last = a
		if a.Status == store.ApprovalPending {
			pending = append(pending, a)
		}
	}
	switch {
	case len(pending) == 1:
		return pending[0], nil
	case len(pending) > 1:
		var names []string
		for _, a := range pending {
			names = append(names, a.Stage)
		}
		return nil, fmt.Errorf("run %d waits for approvals of stages %s: name one with --stage: %w", req.RunID, strings.Join(names, ", "), ErrNoPendingApproval)
	case last != nil:
		by := last.Actor
		if by == "" {
			by = "nobody"
		}
		return nil, fmt.Errorf("run %d stage %s: %w: it was %s by %s (%s)", req.RunID, last.Stage, ErrNoPendingApproval, last.Status, by, last.Comment)
	case req.Stage != "":
		return nil, fmt.Errorf("run %d: %w for stage %q", req.RunID, ErrNoPendingApproval, req.Stage)
	}
	return nil, fmt.Errorf("run %d: %w", req.RunID, ErrNoPendingApproval)
}

// shownToDecider returns the stage verdicts of the run as JSON and the
// image digest it produced, if any.
func (e *Engine) shownToDecider(ctx context.Context, runID int64) (string, string, error) {
	verdicts, digest, err := DeciderView(ctx, e.resumer, runID)
	if err != nil {
		return "", "", err
	}
	b, err := json.Marshal(verdicts)
	if err != nil {
		return "", "", fmt.Errorf("encode the evidence shown: %w", err)
	}
	return string(b), digest, nil
}

// RunRecords reads a run's stages and steps.
type RunRecords interface {
	Stages(ctx context.Context, runID int64) ([]store.Stage, error)
	Steps(ctx context.Context, runID int64) ([]store.Step, error)
}

// DeciderView is what the decider of a run's approval is shown (and
// what Decide stores with the decision): the verdict of each stage so
// far, with its gate and its steps' summaries, and the image digest the
// run produced (a "digest" output of a passed step, the last in pipeline
// order; "" if none).
func DeciderView(ctx context.Context, r RunRecords, runID int64) ([]StageVerdict, string, error) {
	stages, err := r.Stages(ctx, runID)
	if err != nil {
		return nil, "", err
	}
	steps, err := r.Steps(ctx, runID)
	if err != nil {
		return nil, "", err
	}
	verdicts := make([]StageVerdict, 0, len(stages))
	for _, st := range stages {
		v := StageVerdict{Stage: st.Name, Status: string(st.Status), Gate: st.Gate, GatePassed: st.GateResult}
		for _, s := range steps {
			if s.Stage == st.Name {
				v.Steps = append(v.Steps, StepVerdict{Name: s.Name, Status: string(s.Status), Summary: s.Summary})
			}
		}
		verdicts = append(verdicts, v)
	}
	digest := ""
	for _, s := range steps {
		if s.Status != store.StatusPassed && s.Status != store.StatusCached {
			continue
		}
		if d, ok := s.Outputs["digest"].(string); ok && strings.HasPrefix(d, "sha256:") {
			digest = d
		}
	}
	return verdicts, digest, nil
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return slices.Compact(out)
}
