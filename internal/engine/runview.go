package engine

import (
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/store"
)

// runView is step.Env.Run: a copy of the stages the run reached, in
// pipeline order, each with the steps that ended, in pipeline-file order.
func (r *runner) runView() step.RunView {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := step.RunView{Pipeline: r.p.Name}
	for i := range r.p.Stages {
		st := &r.p.Stages[i]
		state := r.stages[st.Name]
		if state == nil {
			continue
		}
		sv := step.StageView{Name: st.Name, Status: string(state.Status)}
		if !st.Gate.IsAllPassed() {
			sv.Gate = gateString(st.Gate)
		}
		if state.GatePassed != nil {
			passed := *state.GatePassed
			sv.GatePassed = &passed
		}
		for j := range st.Steps {
			s := &st.Steps[j]
			ss := state.Steps[s.Name]
			if ss == nil || ss.Status == store.StatusRunning {
				continue
			}
			sv.Steps = append(sv.Steps, step.StepView{
				Name: s.Name, Kind: r.e.kindOf(s), Gate: r.e.gateOf(s), Status: string(ss.Status),
				Summary: ss.Summary, Message: ss.Message, AllowFailure: s.AllowFailure,
				Outputs: copyOutputs(ss.Outputs),
			})
		}
		v.Stages = append(v.Stages, sv)
	}
	for _, a := range r.approvals {
		a.Roles = append([]string(nil), a.Roles...)
		v.Approvals = append(v.Approvals, a)
	}
	return v
}

// copyOutputs copies outputs deeply enough that a step cannot change what
// the engine holds: maps and lists are new, scalars are values.
func copyOutputs(in map[string]any) map[string]any {
	return maskOutputs(func(s string) string { return s }, in)
}
