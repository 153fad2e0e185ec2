package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/store"
)

// ErrNotResumable is returned by Resume for a run that cannot continue:
// it ended (passed, failed, rejected), or it was recorded before gantry
// kept the pipeline with the run.
var ErrNotResumable = errors.New("run cannot be resumed")

// ResumeRequest says how to continue a run.
type ResumeRequest struct {
	// Dir is the repository; default: the directory the run recorded. When
	// its HEAD is not the run's commit (or it has uncommitted changes to
	// tracked files), the run continues in a detached git worktree of the
	// run's commit under the state dir, removed afterwards.
	Dir string
	// Actor resumes it, for the audit log (default: the OS user).
	Actor string
}

// Resume continues run id in this process: a run that waited for an
// approval (now decided), or one interrupted (its process killed) or
// cancelled. It runs the pipeline recorded with the run, never the file
// in the working tree now, validated again against this engine's
// registry. Stages and steps that ended (passed, cached, failed, skipped)
// stay as recorded; steps that were running, interrupted, cancelled or
// pending run again. The run's lock is taken again, so a second process
// resuming the same run gets an error wrapping store.ErrRunHeld.
func (e *Engine) Resume(ctx context.Context, id int64, req ResumeRequest) (*Result, error) {
	if _, err := e.approvalStore.ExpireApprovals(ctx, time.Now()); err != nil {
		return nil, fmt.Errorf("resume run %d: %w", id, err)
	}
	run, err := e.resumer.GetRun(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("resume run %d: %w", id, err)
	}
	switch run.Status {
	case store.StatusWaiting, store.StatusInterrupted, store.StatusCancelled, store.StatusRunning:
		// Running: ResumeRun below refuses it if its process is alive.
	case store.StatusRejected:
		return &Result{RunID: id, Status: run.Status, Message: run.Message}, nil
	default:
		return nil, fmt.Errorf("resume run %d: it ended %s: %w", id, run.Status, ErrNotResumable)
	}
	if run.PipelineSource == nil {
		return nil, fmt.Errorf("resume run %d: its pipeline was not recorded (run from an older gantry): %w", id, ErrNotResumable)
	}
	p, err := spec.Parse(run.PipelineFile, run.PipelineSource, e.Registry())
	if err != nil {
		return nil, fmt.Errorf("resume run %d: the pipeline recorded with the run no longer validates: %w", id, err)
	}
	if err := e.checkScripts(p); err != nil {
		return nil, fmt.Errorf("resume run %d: %w", id, err)
	}
	r0 := run.Request
	greq := Request{
		Dir:    run.Dir,
		Git:    step.Git{SHA: run.SHA, Branch: run.Branch, Event: run.Event, BaseRef: run.BaseRef},
		Stages: r0.Stages, From: r0.From, Until: r0.Until, NoCache: r0.NoCache,
		Trigger: run.Trigger, Actor: req.Actor, Vars: r0.Vars, Command: r0.Command,
	}
	if req.Dir != "" {
		greq.Dir = req.Dir
	}
	if greq.Actor == "" {
		greq.Actor = currentUser()
	}
	selected, err := selectStages(p, greq)
	if err != nil {
		return nil, fmt.Errorf("resume run %d: %w", id, err)
	}
	vars, err := spec.ResolveVars(p, greq.Vars)
	if err != nil {
		return nil, fmt.Errorf("resume run %d: %w", id, err)
	}
	masker, secrets, err := resolveSecrets(p, greq.Dir)
	if err != nil {
		return nil, fmt.Errorf("resume run %d: %w", id, err)
	}
	prior, err := loadPrior(ctx, e.resumer, id)
	if err != nil {
		return nil, fmt.Errorf("resume run %d: %w", id, err)
	}

	if err := e.resumer.ResumeRun(ctx, id); err != nil {
		return nil, fmt.Errorf("resume run %d: %w", id, err)
	}
	// From here the run is ours: every way out records its end.
	cctx := context.WithoutCancel(ctx)
	workDir, cleanup, err := e.checkout(ctx, greq.Dir, run.SHA, id)
	if err != nil {
		msg := fmt.Sprintf("check out commit %s: %v", run.SHA, err)
		if ferr := e.rec.FinishRun(cctx, id, store.StatusInterrupted, msg, time.Now()); ferr != nil {
			e.log.Error("record end of run", "run", id, "err", ferr)
		}
		return nil, fmt.Errorf("resume run %d: check out commit %s: %w", id, run.SHA, err)
	}
	defer cleanup()
	greq.Dir = workDir
	if err := e.journal.Audit(ctx, &store.AuditEntry{Actor: greq.Actor, Action: "run.resume",
		Subject: fmt.Sprintf("run %d", id), Detail: fmt.Sprintf("was %s; in %s", run.Status, workDir)}); err != nil {
		e.log.Error("audit run resume", "run", id, "err", err)
	}
	r := e.newRunner(p, greq, run, masker, secrets)
	r.prior = prior
	r.vars = vars
	r.restore()
	approvals, err := e.approvalStore.Approvals(ctx, id)
	if err != nil {
		msg := fmt.Sprintf("read approvals: %v", err)
		if ferr := e.rec.FinishRun(cctx, id, store.StatusInterrupted, msg, time.Now()); ferr != nil {
			e.log.Error("record end of run", "run", id, "err", ferr)
		}
		return nil, fmt.Errorf("resume run %d: read approvals: %w", id, err)
	}
	for _, a := range approvals {
		if a.Status == store.ApprovalApproved {
			r.granted(a)
		}
	}
	return e.drive(ctx, r, selected)
}

// priorState is what a run recorded before it was resumed.
type priorState struct {
	stages map[string]store.Stage
	steps  map[string]store.Step // by spec.ID(stage, step)
}

func loadPrior(ctx context.Context, rs RunResumer, id int64) (*priorState, error) {
	stages, err := rs.Stages(ctx, id)
	if err != nil {
		return nil, err
	}
	steps, err := rs.Steps(ctx, id)
	if err != nil {
		return nil, err
	}
	p := &priorState{stages: map[string]store.Stage{}, steps: map[string]store.Step{}}
	for _, st := range stages {
		p.stages[st.Name] = st
	}
	for _, s := range steps {
		p.steps[spec.ID(s.Stage, s.Name)] = s
	}
	return p, nil
}

// endedStage returns a stage that ended before the resumption and keeps
// its verdict.
func (p *priorState) endedStage(name string) (store.Stage, bool) {
	if p == nil {
		return store.Stage{}, false
	}
	st, ok := p.stages[name]
	return st, ok && slices.Contains([]store.Status{store.StatusPassed, store.StatusFailed, store.StatusSkipped}, st.Status)
}

func (p *priorState) endedStep(stage, name string) bool {
	if p == nil {
		return false
	}
	s, ok := p.steps[spec.ID(stage, name)]
	return ok && slices.Contains([]store.Status{store.StatusPassed, store.StatusCached, store.StatusFailed, store.StatusSkipped}, s.Status)
}

// keepsStep reports whether s keeps its recorded outcome: it ended, and
// if it was skipped, so did every step it waited for (a step skipped
// because a need was interrupted runs again with that need).
func (p *priorState) keepsStep(st *spec.Stage, s *spec.Step) bool {
	if !p.endedStep(st.Name, s.Name) {
		return false
	}
	if p.steps[spec.ID(st.Name, s.Name)].Status != store.StatusSkipped {
		return true
	}
	for _, d := range slices.Concat(s.Needs, s.After) {
		i := slices.IndexFunc(st.Steps, func(o spec.Step) bool { return o.Name == d.Value })
		if i < 0 || !p.keepsStep(st, &st.Steps[i]) {
			return false
		}
	}
	return true
}

// restore rebuilds the in-memory state (stages, gate verdicts, ended
// steps and their outputs) that expressions and Env.Run read.
func (r *runner) restore() {
	for i := range r.p.Stages {
		st := &r.p.Stages[i]
		rec, ok := r.prior.stages[st.Name]
		if !ok {
			continue
		}
		r.setStage(st.Name, rec.Status, rec.GateResult)
		for j := range st.Steps {
			s := &st.Steps[j]
			if !r.prior.keepsStep(st, s) {
				continue
			}
			rs := r.prior.steps[spec.ID(st.Name, s.Name)]
			r.setStep(st.Name, s.Name, &stepState{Status: rs.Status, Summary: rs.Summary, Message: rs.Message, Outputs: rs.Outputs})
		}
	}
}
