package evidence

import (
	"errors"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/step"
)

func TestApprovalPredicate(t *testing.T) {
	decided := time.Date(2026, 11, 29, 12, 0, 0, 0, time.FixedZone("x", 3600))
	v := step.RunView{Pipeline: "payment-service", Approvals: []step.ApprovalView{
		{Stage: "promote-prod", Actor: "alice", Roles: []string{"oncall-lead"}, Comment: "ship it", Decided: decided},
	}}
	ps := Collect(v, Run{ID: "7"}, decided)
	if len(ps) != 1 || ps[0].Gate != GateApproval || ps[0].Verdict != Pass {
		t.Fatalf("Collect: got %+v, want one passing approval predicate", ps)
	}
	got := ps[0].Approvals
	want := Approval{Stage: "promote-prod", Actor: "alice", Roles: []string{"oncall-lead"}, Comment: "ship it", Time: "2026-11-29T11:00:00Z"}
	if len(got) != 1 || got[0].Actor != want.Actor || got[0].Time != want.Time || got[0].Stage != want.Stage || got[0].Roles[0] != "oncall-lead" {
		t.Errorf("approvals: got %+v, want [%+v]", got, want)
	}
	if ps := Collect(view, Run{ID: "8"}, decided); ps[len(ps)-1].Gate == GateApproval {
		t.Errorf("a run without approvals got an approval predicate")
	}

	if _, err := Check([]signing.Attestation{attestation(t, ps[0])}, []string{GateApproval}, CheckOptions{}); err != nil {
		t.Errorf("Check(--require approval) with a granted approval attested: %v", err)
	}
	if _, err := Check(nil, []string{GateApproval}, CheckOptions{}); !errors.Is(err, ErrMissing) {
		t.Errorf("Check(--require approval) without one: error %v, want ErrMissing", err)
	}
}
