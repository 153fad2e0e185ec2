package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/internal/expression"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/store"
)

// runStage runs one stage's steps as a DAG, then its gate and, if it
// failed, its failure actions.
func (r *runner) runStage(ctx context.Context, index int, st *spec.Stage) store.Status {
	started := time.Now()
	rec := &store.Stage{RunID: r.run.ID, Name: st.Name, Index: index, Status: store.StatusRunning, Started: started}
	if err := r.e.rec.PutStage(ctx, rec); err != nil {
		r.e.log.Error("record stage", "stage", st.Name, "err", err)
	}
	r.setStage(st.Name, store.StatusRunning, nil)
	r.e.obs.Observe(Event{Type: StageStarted, Stage: st.Name, Time: started})

	results := r.runSteps(ctx, st)

	status, msg := store.StatusPassed, ""
	var failedSteps []string
	for _, s := range st.Steps {
		res := results[s.Name]
		if res.status == store.StatusFailed && !s.AllowFailure {
			failedSteps = append(failedSteps, s.Name)
		}
	}
	switch {
	case ctx.Err() != nil:
		status, msg = store.StatusCancelled, "the run was cancelled"
	case len(failedSteps) > 0:
		status, msg = store.StatusFailed, "failed steps: "+strings.Join(failedSteps, ", ")
	default:
		if ok, gmsg := r.checkGate(st); !ok {
			status, msg = store.StatusFailed, gmsg
		}
	}
	if !st.Gate.IsAllPassed() {
		rec.Gate = gateString(st.Gate)
		passed := status == store.StatusPassed
		if status != store.StatusCancelled && len(failedSteps) == 0 {
			rec.GateResult = &passed
		}
	}
	r.setStage(st.Name, status, rec.GateResult)
	if status == store.StatusFailed {
		r.runFailureActions(ctx, st, msg, failedSteps)
	}
	rec.Status, rec.Message, rec.Finished = status, r.masker.Mask(msg), time.Now()
	if err := r.e.rec.PutStage(context.WithoutCancel(ctx), rec); err != nil {
		r.e.log.Error("record stage", "stage", st.Name, "err", err)
	}
	r.e.obs.Observe(Event{Type: StageFinished, Stage: st.Name, Status: status, Message: rec.Message, Time: rec.Finished, Elapsed: rec.Finished.Sub(started)})
	return status
}

func gateString(g spec.Gate) string {
	parts := make([]string, len(g.Exprs))
	for i, e := range g.Exprs {
		parts[i] = e.Value
	}
	return strings.Join(parts, " && ")
}

// stepOutcome is how a step ended, for its dependents.
type stepOutcome struct {
	status store.Status
}

// runSteps runs the steps of st in dependency order, at most r.jobs at a
// time. A step waits for its needs and its after steps to end; it is
// skipped when one of its needs did not pass. Every goroutine is waited
// for before it returns.
func (r *runner) runSteps(ctx context.Context, st *spec.Stage) map[string]stepOutcome {
	done := make(map[string]chan struct{}, len(st.Steps))
	for _, s := range st.Steps {
		done[s.Name] = make(chan struct{})
	}
	var (
		mu      sync.Mutex
		results = make(map[string]stepOutcome, len(st.Steps))
		wg      sync.WaitGroup
		sem     = make(chan struct{}, r.jobs)
	)
	for i := range st.Steps {
		s := &st.Steps[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[s.Name])
			for _, a := range s.After {
				<-done[a.Value]
			}
			var blocked []string
			for _, n := range s.Needs {
				<-done[n.Value]
				mu.Lock()
				res := results[n.Value]
				mu.Unlock()
				if res.status != store.StatusPassed && res.status != store.StatusCached {
					blocked = append(blocked, n.Value+" "+string(res.status))
				}
			}
			var status store.Status
			switch {
			case r.prior.keepsStep(st, s):
				// Resumed: the step ended before the interruption.
				status = r.prior.steps[spec.ID(st.Name, s.Name)].Status
			case ctx.Err() != nil:
				status = r.skipStep(ctx, st, s, store.StatusCancelled, "the run was cancelled")
			case len(blocked) > 0:
				sort.Strings(blocked)
				status = r.skipStep(ctx, st, s, store.StatusSkipped, "needs: "+strings.Join(blocked, ", "))
			default:
				select {
				case sem <- struct{}{}:
					status = r.runStep(ctx, st, s)
					<-sem
				case <-ctx.Done():
					status = r.skipStep(ctx, st, s, store.StatusCancelled, "the run was cancelled")
				}
			}
			mu.Lock()
			results[s.Name] = stepOutcome{status: status}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return results
}

// checkGate evaluates the stage's gate after its steps passed.
func (r *runner) checkGate(st *spec.Stage) (bool, string) {
	if st.Gate.IsAllPassed() {
		return true, ""
	}
	env := r.exprEnv(st.Name)
	for _, g := range st.Gate.Exprs {
		if g.Value == spec.AllPassed {
			continue
		}
		ok, err := r.evalBool(g.Value, env)
		if err != nil {
			return false, fmt.Sprintf("gate %s: %v", g.Value, err)
		}
		if !ok {
			return false, fmt.Sprintf("gate %s failed%s", g.Value, explainRefs(g.Value, env))
		}
	}
	return true, ""
}

// explainRefs lists the values an expression read, e.g.
// " (steps.unit.outputs.coverage = 79.9)".
func explainRefs(src string, env map[string]any) string {
	refs, err := expression.Refs(src)
	if err != nil {
		return ""
	}
	seen := map[string]bool{}
	var parts []string
	for _, ref := range refs {
		key := ref.String()
		if len(ref) < 2 || seen[key] {
			continue
		}
		// Only the longest chain of each path is interesting.
		longer := false
		for _, other := range refs {
			if len(other) > len(ref) && strings.HasPrefix(other.String(), key+".") {
				longer = true
			}
		}
		if longer {
			continue
		}
		seen[key] = true
		prog, err := expression.Compile(key)
		if err != nil {
			continue
		}
		v, err := prog.Eval(env)
		if err != nil {
			v = "<unset>"
		}
		if v == nil {
			v = "<unset>"
		}
		parts = append(parts, fmt.Sprintf("%s = %s", key, expression.Format(v)))
	}
	if len(parts) == 0 {
		return ""
	}
	sort.Strings(parts)
	return " (" + strings.Join(parts, ", ") + ")"
}

// runFailureActions performs a failed stage's on_failure actions. They run
// with a context that survives cancellation, bounded in time.
func (r *runner) runFailureActions(ctx context.Context, st *spec.Stage, msg string, failedSteps []string) {
	if len(st.OnFailure) == 0 {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	for i, a := range st.OnFailure {
		var (
			name string
			err  error
			more map[string]any
		)
		switch {
		case a.Notify != "":
			name = "notify " + a.Notify
			err = r.notify(actx, a.Notify, st.Name, msg, failedSteps)
		case a.Rollback != "":
			name = "rollback " + a.Rollback
			if rb, ok := r.e.rollbacks[a.Rollback]; ok {
				err = rb.Rollback(actx, a.Rollback)
			} else {
				// Validation refuses this; a pipeline parsed against
				// another registry can still get here.
				err = fmt.Errorf("no rollback handler is registered for environment %q", a.Rollback)
			}
		case a.Uses != "":
			name = "uses " + a.Uses
			more, err = r.runActionStep(actx, st, i, a)
		case a.Stop:
			name = "stop"
			// runStages ends the run once this stage is recorded.
		}
		data := map[string]any{"action": name, "ok": err == nil}
		for k, v := range more {
			data[k] = v
		}
		if err != nil {
			data["error"] = r.masker.Mask(err.Error())
			r.e.log.Warn("failure action failed", "stage", st.Name, "action", name, "err", r.masker.Mask(err.Error()))
		}
		if rerr := r.e.journal.AddEvent(actx, &store.Event{RunID: r.run.ID, Time: time.Now(), Type: "failure_action", Stage: st.Name, Data: data}); rerr != nil {
			r.e.log.Error("record failure action", "err", rerr)
		}
		msgLine := fmt.Sprintf("on_failure: %s: done", name)
		if err != nil {
			msgLine = fmt.Sprintf("on_failure: %s: %s", name, r.masker.Mask(err.Error()))
		}
		r.e.obs.Observe(Event{Type: StepLog, Stage: st.Name, Step: "on_failure", Line: msgLine, Time: time.Now()})
	}
}

func (r *runner) notify(ctx context.Context, target, stage, msg string, failedSteps []string) error {
	if r.e.notifier == nil {
		return fmt.Errorf("no notifier is configured")
	}
	t, ok := r.p.Notify[target]
	if !ok {
		return fmt.Errorf("notify target %q is not defined", target)
	}
	url, err := render(t.Webhook, r.notifyEnv(stage))
	if err != nil {
		return fmt.Errorf("webhook of %q: %w", target, err)
	}
	if url == "" {
		return fmt.Errorf("webhook of %q is empty (is its secret set?)", target)
	}
	return r.e.notifier.Notify(ctx, url, Notification{
		Pipeline: r.p.Name, Stage: stage, Message: r.masker.Mask(msg), RunID: r.run.ID,
		SHA: r.req.Git.SHA, Branch: r.req.Git.Branch, FailedSteps: r.whyFailed(stage, failedSteps),
	})
}

// maxWhy bounds one failed step's message in a notification (Slack's
// section text holds 3000 characters).
const maxWhy = 1500

// whyFailed names each failed step with its recorded message (masked):
// what the reader of a notification needs, e.g. the failing metric of an
// aborted rollout and its measured values.
func (r *runner) whyFailed(stage string, names []string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(names))
	for _, n := range names {
		line := n
		if s := r.stages[stage]; s != nil && s.Steps[n] != nil && s.Steps[n].Message != "" {
			m := s.Steps[n].Message
			if len(m) > maxWhy {
				m = strings.ToValidUTF8(m[:maxWhy], "") + "…"
			}
			line += ": " + r.masker.Mask(m)
		}
		out = append(out, line)
	}
	return out
}
