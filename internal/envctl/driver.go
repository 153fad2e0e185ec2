package envctl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/store"
)

// errStale is returned by a transition whose record changed under it (a
// verb came first): the driver reads the record again.
var errStale = errors.New("the rollout record changed")

// drive moves the environment's rollout on, one step at a time, until its
// cycle ends or the controller closes. A verb that changes the record
// ends the step in progress; the loop then reads the record again.
func (c *Controller) drive(en *env) {
	defer c.drivers.Done()
	b := en.bg()
	for {
		b.mu.Lock()
		if c.stopping.Err() != nil || b.rec == nil || !b.rec.active() {
			b.running, b.cancel = false, nil
			b.mu.Unlock()
			return
		}
		r := copyRecord(b.rec)
		ctx, cancel := context.WithCancel(c.stopping)
		b.cancel = cancel
		b.mu.Unlock()
		err := c.step(proc.WithTracker(ctx, nil), en, r)
		interrupted := ctx.Err() != nil
		cancel()
		if err != nil && !errors.Is(err, errStale) && !interrupted {
			c.log.Error("rollout step", "environment", en.name, "step", r.Status.Step, "err", err)
			select {
			case <-c.stopping.Done():
			case <-time.After(c.cfg.Interval):
			}
		}
	}
}

func (c *Controller) step(ctx context.Context, en *env, r *record) error {
	switch r.Status.Step {
	case runtime.StepPreview, runtime.StepPrePromotion:
		return c.stepPreview(ctx, en, r)
	case runtime.StepPaused:
		return c.stepPaused(ctx, en, r)
	case runtime.StepPostPromotion, runtime.StepScaleDown:
		return c.stepPromoted(ctx, en, r)
	case runtime.StepAborted:
		return c.stepAborted(ctx, en, r)
	}
	return fmt.Errorf("rollout of %s: unknown step %q", en.name, r.Status.Step)
}

// greenUp starts green if it does not run here, waits for it to be ready
// and routes the preview URL (and the preview traffic, with split) to it.
func (c *Controller) greenUp(ctx context.Context, en *env, r *record, split bool) ([]runtime.Instance, error) {
	unlock, err := c.opLock(ctx, en)
	if err != nil {
		return nil, err
	}
	insts, ws, err := c.ensureGreen(ctx, en, r, true)
	unlock()
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err() // a verb ended the step: not green's failure
	}
	if err != nil {
		return nil, &greenError{fmt.Sprintf("green did not start: %v", err)}
	}
	if err := c.waitReady(ctx, ws, insts); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if why, bad := crashed(insts, nil); bad {
			return nil, &greenError{"green crashed: " + why}
		}
		return nil, &greenError{fmt.Sprintf("green never became ready: %s", probeAnswers(insts))}
	}
	unlock, err = c.opLock(ctx, en)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// The record may have moved on while green started (an abort).
	b := en.bg()
	b.mu.Lock()
	same := b.rec != nil && b.rec.Status.Step == r.Status.Step && b.rec.Cycle == r.Cycle
	b.mu.Unlock()
	if !same {
		return nil, errStale
	}
	c.routeGreen(en, r, split)
	c.servingServices(ctx, en)
	return insts, nil
}

// greenError is green failing: the rollout aborts.
type greenError struct{ msg string }

func (e *greenError) Error() string { return e.msg }

// stepPreview brings green up, then runs the pre-promotion analysis.
func (c *Controller) stepPreview(ctx context.Context, en *env, r *record) error {
	green, err := c.greenUp(ctx, en, r, true)
	if ge := (*greenError)(nil); errors.As(err, &ge) {
		return c.autoAbort(en, r, ge.msg)
	}
	if err != nil {
		return err
	}
	if r.Status.Step == runtime.StepPreview {
		next := runtime.StepPrePromotion
		if r.Strategy.PrePromotionAnalysis == nil || r.Full {
			next = runtime.StepPaused
		}
		nr, err := c.transition(ctx, en, r, func(x *record) {
			x.Status.Step = next
			x.Status.Message = "green ready"
			if next == runtime.StepPrePromotion {
				x.Status.Message = "pre-promotion analysis"
			}
		})
		if err != nil {
			return err
		}
		r = nr
		if next == runtime.StepPaused {
			return c.pauseOrPromote(ctx, en, r)
		}
	}
	if r.Full {
		return c.pauseOrPromote(ctx, en, r)
	}
	phase, msg := c.analyze(ctx, en, r, "prePromotion", r.Strategy.PrePromotionAnalysis, green)
	if ctx.Err() != nil {
		return nil // a verb ended it; the analysis is recorded Stopped
	}
	switch phase {
	case analysis.PhaseSuccessful:
		return c.pauseOrPromote(ctx, en, r)
	case analysis.PhaseInconclusive:
		_, err := c.transition(ctx, en, r, func(x *record) {
			x.Status.Step, x.Status.Phase = runtime.StepPaused, runtime.RolloutPaused
			x.Status.Message = "pre-promotion analysis inconclusive: " + msg
		})
		return err
	}
	return c.autoAbort(en, r, fmt.Sprintf("pre-promotion analysis %s: %s", phase, msg))
}

// pauseOrPromote ends the analysis step: a pause without auto-promotion
// (unless a promote came already), the switch otherwise.
func (c *Controller) pauseOrPromote(ctx context.Context, en *env, r *record) error {
	if !r.Strategy.AutoPromotionEnabled && !r.PromoteAsked && !r.Full {
		_, err := c.transition(ctx, en, r, func(x *record) {
			x.Status.Step, x.Status.Phase = runtime.StepPaused, runtime.RolloutPaused
			x.Status.Message = "waiting for promotion"
			if s := x.Strategy.AutoPromotionSeconds; s > 0 {
				x.Status.PauseUntil = time.Now().UTC().Add(time.Duration(s) * time.Second)
			}
		})
		return err
	}
	return c.promote(ctx, en, r)
}

// transition writes f's change if the record is still r's step and cycle.
func (c *Controller) transition(ctx context.Context, en *env, r *record, f func(x *record)) (*record, error) {
	return c.update(ctx, en, false, func(x *record) error {
		if x.Status.Step != r.Status.Step || x.Cycle != r.Cycle || x.Status.Desired != r.Status.Desired {
			return errStale
		}
		f(x)
		return nil
	})
}

// stepPaused waits for a promote, the auto-promotion deadline, or green
// failing.
func (c *Controller) stepPaused(ctx context.Context, en *env, r *record) error {
	green, err := c.greenUp(ctx, en, r, true)
	if ge := (*greenError)(nil); errors.As(err, &ge) {
		return c.autoAbort(en, r, ge.msg)
	}
	if err != nil {
		return err
	}
	if r.PromoteAsked || r.Full {
		return c.promote(ctx, en, r)
	}
	if r.Status.Phase != runtime.RolloutPaused {
		// The step moved to paused but the pause itself (its phase, its
		// auto-promotion deadline, or the promotion when auto-promotion
		// is on) was never recorded: the process ended in between.
		return c.pauseOrPromote(ctx, en, r)
	}
	var deadline <-chan time.Time
	if !r.Status.PauseUntil.IsZero() {
		t := time.NewTimer(time.Until(r.Status.PauseUntil))
		defer t.Stop()
		deadline = t.C
	}
	base := restarts(green)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-deadline:
			return c.promote(ctx, en, r)
		case <-tick.C:
			if why, bad := crashed(green, base); bad {
				return c.autoAbort(en, r, "green crashed: "+why)
			}
		}
	}
}

func restarts(insts []runtime.Instance) map[string]int {
	m := map[string]int{}
	for _, inst := range insts {
		m[inst.ID()] = inst.Status().Restarts
	}
	return m
}

// crashed says whether one of insts exited or restarted since base.
func crashed(insts []runtime.Instance, base map[string]int) (string, bool) {
	for _, inst := range insts {
		st := inst.Status()
		if st.State == "crashed" || st.State == "stopped" || st.Restarts > base[inst.ID()] {
			return fmt.Sprintf("instance %s is %s (%d restarts)", inst.ID(), st.State, st.Restarts), true
		}
	}
	return "", false
}

// promote switches the active URL to green, atomically: the record first
// (green serves, blue retires at its deadline), then the proxy.
func (c *Controller) promote(ctx context.Context, en *env, r *record) error {
	unlock, err := c.opLock(ctx, en)
	if err != nil {
		return err
	}
	defer unlock()
	b := en.bg()
	if b.greenRev != r.Status.Desired || len(b.green) == 0 {
		return errStale // green is not up here: the step starts it again
	}
	delay := defaultScaleDownDelay
	if d := r.Strategy.ScaleDownDelaySeconds; d != nil {
		delay = time.Duration(*d) * time.Second
	}
	at := time.Now().UTC().Add(delay)
	en.mu.Lock()
	oldRev := en.rev
	en.mu.Unlock()
	nr, err := c.update(ctx, en, false, func(x *record) error {
		if x.Status.Step != r.Status.Step || x.Cycle != r.Cycle || x.Status.Desired != r.Status.Desired {
			return errStale
		}
		x.Status.Step, x.Status.Phase = runtime.StepPostPromotion, runtime.RolloutProgressing
		x.Status.Stable, x.Status.ScaleDownAt, x.Status.PauseUntil = x.Status.Desired, at, time.Time{}
		x.Status.Message = "promoted: active on green"
		// Monitors count from this promotion on (a retry's earlier
		// results say nothing of it).
		x.Status.PromotedAt, x.Status.Monitors = time.Now().UTC(), nil
		if oldRev != 0 {
			x.Retiring = append(x.Retiring, retiring{Revision: oldRev, At: at})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := c.cfg.Store.ServeEnvRevision(context.WithoutCancel(ctx), en.name, r.Status.Desired); err != nil {
		return err
	}
	en.mu.Lock()
	old := en.instances
	en.proxy.Switch(backends(b.green))
	en.proxy.SetSplit(nil)
	en.instances, en.rev = b.green, b.greenRev
	en.mu.Unlock()
	if oldRev != 0 {
		b.retiring[oldRev] = old
	}
	b.green, b.greenRev = nil, 0
	who := nr.Status.PromotedBy
	if who == "" {
		who = "gantry"
	}
	c.event(ctx, en, r.Status.Desired, "promoted", who, fmt.Sprintf("active on revision %d; revision %d scaled down at %s", r.Status.Desired, oldRev, at.Format(time.RFC3339)))
	c.enforceRevisionLimit(ctx, en)
	c.servingServices(ctx, en)
	return nil
}

// enforceRevisionLimit scales down at once the oldest retiring revisions
// beyond scaleDownDelayRevisionLimit; with op held.
func (c *Controller) enforceRevisionLimit(ctx context.Context, en *env) {
	var stop []int
	_, err := c.update(ctx, en, false, func(x *record) error {
		lim := x.Strategy.ScaleDownDelayRevisionLimit
		if lim == nil {
			return errStale
		}
		for len(x.Retiring) > *lim {
			stop = append(stop, x.Retiring[0].Revision)
			x.Retiring = x.Retiring[1:]
		}
		return nil
	})
	if err != nil {
		return
	}
	c.scaleDown(ctx, en, stop)
}

// scaleDown stops the retiring revisions' instances; with op held.
func (c *Controller) scaleDown(ctx context.Context, en *env, revs []int) {
	b := en.bg()
	for _, rev := range revs {
		insts := b.retiring[rev]
		delete(b.retiring, rev)
		c.stopAll(context.WithoutCancel(ctx), insts)
		c.event(ctx, en, rev, "scaled-down", "gantry", fmt.Sprintf("revision %d stopped (%d instances)", rev, len(insts)))
	}
}

// scaleDownDue scales down the retiring revisions whose deadline passed;
// with op held.
func (c *Controller) scaleDownDue(ctx context.Context, en *env) error {
	now := time.Now()
	var due []int
	_, err := c.update(ctx, en, false, func(x *record) error {
		keep := x.Retiring[:0:0]
		for _, rt := range x.Retiring {
			if !rt.At.After(now) {
				due = append(due, rt.Revision)
			} else {
				keep = append(keep, rt)
			}
		}
		if len(due) == 0 {
			return errStale
		}
		x.Retiring = keep
		return nil
	})
	if errors.Is(err, errStale) {
		return nil
	}
	if err != nil {
		return err
	}
	c.scaleDown(ctx, en, due)
	return nil
}

// ensureRetiring starts again (not serving) the retiring revisions that
// do not run here — after a restart of the serve process — so that an
// abort can still go back to blue; with op held.
func (c *Controller) ensureRetiring(ctx context.Context, en *env, r *record) error {
	b := en.bg()
	for _, rt := range r.Retiring {
		if len(b.retiring[rt.Revision]) > 0 || !rt.At.After(time.Now()) {
			continue
		}
		ws, _, err := c.revisionOf(ctx, en, rt.Revision)
		if err != nil {
			return err
		}
		insts, err := c.startAll(ctx, en, rt.Revision, ws)
		if err != nil {
			return err
		}
		b.retiring[rt.Revision] = insts
	}
	return nil
}

// stepPromoted runs the post-promotion analysis and the monitors while
// blue waits out its scale-down delay, then scales blue down.
func (c *Controller) stepPromoted(ctx context.Context, en *env, r *record) error {
	unlock, err := c.opLock(ctx, en)
	if err != nil {
		return err
	}
	err = c.ensureRetiring(ctx, en, r)
	unlock()
	if err != nil {
		return err
	}
	b := en.bg()
	b.mu.Lock()
	if b.watchCycle != r.Cycle || b.watchRev != r.Status.Desired || b.watching.IsZero() {
		b.watching, b.watchCycle, b.watchRev = time.Now().UTC(), r.Cycle, r.Status.Desired
	}
	b.mu.Unlock()
	mctx, stopMonitors := context.WithCancel(ctx)
	monitorFailed := make(chan string, 1)
	var wg sync.WaitGroup
	if len(r.Monitors) > 0 && c.cfg.Monitor != nil {
		mr := r // r moves on below; the monitors keep this cycle's
		wg.Go(func() { c.runMonitors(mctx, en, mr, monitorFailed) })
	}
	defer func() {
		stopMonitors()
		wg.Wait()
	}()
	deadline := time.NewTimer(time.Until(r.Status.ScaleDownAt))
	defer deadline.Stop()

	if r.Status.Step == runtime.StepPostPromotion {
		type result struct {
			phase analysis.Phase
			msg   string
		}
		done := make(chan result, 1)
		actx, cutShort := context.WithCancelCause(ctx)
		if r.Strategy.PostPromotionAnalysis != nil && !r.Full {
			go func() { // owned here: done is read below before returning
				p, m := c.analyze(actx, en, r, "postPromotion", r.Strategy.PostPromotionAnalysis, nil)
				done <- result{p, m}
			}()
		} else {
			done <- result{analysis.PhaseSuccessful, ""}
		}
		var res result
		select {
		case res = <-done: // an analysis over (or none) wins over the deadline
		default:
			select {
			case res = <-done:
			case <-deadline.C:
				cutShort(errCutShort)
				res = <-done
				if ctx.Err() != nil {
					return nil
				}
				return c.finish(ctx, en, r, runtime.RolloutDegraded,
					fmt.Sprintf("post-promotion analysis cut short by the scale-down delay (%s): not successful", res.phase))
			case why := <-monitorFailed:
				cutShort(errAborted)
				<-done
				return c.autoAbort(en, r, why)
			case <-ctx.Done():
				cutShort(ctx.Err())
				<-done
				return nil
			}
		}
		cutShort(nil)
		if ctx.Err() != nil {
			return nil
		}
		if res.phase != analysis.PhaseSuccessful {
			return c.autoAbort(en, r, fmt.Sprintf("post-promotion analysis %s: %s", res.phase, res.msg))
		}
		nr, err := c.transition(ctx, en, r, func(x *record) {
			x.Status.Step, x.Status.Phase = runtime.StepScaleDown, runtime.RolloutHealthy
			x.Status.Message = "promoted; the previous revision is scaled down at its deadline"
		})
		if err != nil {
			return err
		}
		r = nr
	}
	select {
	case <-deadline.C:
		return c.finish(ctx, en, r, runtime.RolloutHealthy, "")
	case why := <-monitorFailed:
		return c.autoAbort(en, r, why)
	case <-ctx.Done():
		return nil
	}
}

var (
	errDecided  = errors.New("another template decided the analysis")
	errCutShort = errors.New("cut short by the scale-down delay")
	errAborted  = errors.New("the rollout was aborted")
)

// finish scales blue down and completes the cycle.
func (c *Controller) finish(ctx context.Context, en *env, r *record, phase runtime.RolloutPhase, msg string) error {
	unlock, err := c.opLock(ctx, en)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := c.transition(ctx, en, r, func(x *record) {
		x.Status.Step, x.Status.Phase, x.Status.Message = runtime.StepCompleted, phase, msg
	}); err != nil {
		return err
	}
	if err := c.scaleDownDue(ctx, en); err != nil {
		return err
	}
	c.event(ctx, en, r.Status.Desired, "completed", "gantry", string(phase)+" "+msg)
	return nil
}

// runMonitors runs the rollout's monitors against the active URL until
// ctx ends; the first failing result is sent on failed.
func (c *Controller) runMonitors(ctx context.Context, en *env, r *record, failed chan<- string) {
	c.cfg.Monitor(ctx, c.url(en.port), r.Monitors, func(res runtime.MonitorResult) {
		if ctx.Err() != nil {
			return
		}
		_, err := c.update(ctx, en, false, func(x *record) error {
			if x.Cycle != r.Cycle || x.Status.Desired != r.Status.Desired {
				return errStale
			}
			i := slices.IndexFunc(x.Status.Monitors, func(m runtime.MonitorResult) bool {
				return m.Monitor == res.Monitor && m.Location == res.Location
			})
			if i < 0 {
				x.Status.Monitors = append(x.Status.Monitors, res)
			} else {
				x.Status.Monitors[i] = res
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStale) {
			c.log.Error("record a monitor result", "environment", en.name, "err", err)
		}
		if !res.OK {
			select {
			case failed <- fmt.Sprintf("monitor %s from %s failed: %s", res.Monitor, res.Location, res.Message):
			default:
			}
		}
	})
}

// stepAborted keeps green up for its abort scale-down delay (for ever
// with none), then stops it.
func (c *Controller) stepAborted(ctx context.Context, en *env, r *record) error {
	if !r.GreenDownAt.IsZero() && !r.GreenDownAt.After(time.Now()) {
		return c.greenDown(ctx, en, r)
	}
	if _, err := c.greenUp(ctx, en, r, false); err != nil {
		if ge := (*greenError)(nil); !errors.As(err, &ge) {
			return err
		}
		c.log.Warn("aborted green does not come up", "environment", en.name, "err", err)
	}
	if r.GreenDownAt.IsZero() {
		<-ctx.Done() // kept until the next rollout or retry
		return nil
	}
	t := time.NewTimer(time.Until(r.GreenDownAt))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil
	case <-t.C:
		return c.greenDown(ctx, en, r)
	}
}

func (c *Controller) greenDown(ctx context.Context, en *env, r *record) error {
	unlock, err := c.opLock(ctx, en)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := c.transition(ctx, en, r, func(x *record) { x.GreenDown = true }); err != nil {
		return err
	}
	c.stopGreen(ctx, en)
	c.event(ctx, en, r.Status.Desired, "scaled-down", "gantry", fmt.Sprintf("aborted revision %d stopped", r.Status.Desired))
	return nil
}

// autoAbort is the driver's abort of the cycle r (ignored if a verb moved
// the record on first).
func (c *Controller) autoAbort(en *env, r *record, why string) error {
	_, err := c.abort(c.stopping, en, "gantry", why, r.Cycle)
	if errors.Is(err, runtime.ErrRolloutState) {
		return errStale
	}
	return err
}

// abort sends active traffic back to blue and marks the rollout Degraded;
// cycle, when not 0, is the cycle the caller saw (a stale one is left
// alone).
func (c *Controller) abort(ctx context.Context, en *env, who, reason string, cycle int) (*record, error) {
	ctx = proc.WithTracker(ctx, nil)
	unlock, err := c.opLock(ctx, en)
	if err != nil {
		return nil, err
	}
	defer unlock()
	en.mu.Lock()
	p := en.proxy
	en.mu.Unlock()
	var promoted bool
	r, err := c.update(ctx, en, true, func(x *record) error {
		switch x.Status.Step {
		case "":
			return fmt.Errorf("abort %s: %w", en.name, runtime.ErrNoRollout)
		case runtime.StepPreview, runtime.StepPrePromotion, runtime.StepPaused:
		case runtime.StepPostPromotion, runtime.StepScaleDown:
			promoted = true
		default:
			return fmt.Errorf("abort %s: the rollout is at step %s: %w", en.name, x.Status.Step, runtime.ErrRolloutState)
		}
		if cycle != 0 && x.Cycle != cycle {
			return fmt.Errorf("abort %s: cycle %d is over: %w", en.name, cycle, runtime.ErrRolloutState)
		}
		if !promoted && p != nil {
			// Before the abort shows: whoever sees it finds no active
			// traffic going to green. (Should the record not be written,
			// the next reconcile routes the split again.)
			p.SetSplit(nil)
		}
		x.Status.Step, x.Status.Phase = runtime.StepAborted, runtime.RolloutDegraded
		x.Status.AbortedBy, x.Status.Message = who, reason
		x.Status.PauseUntil, x.Status.ScaleDownAt = time.Time{}, time.Time{}
		x.PromoteAsked, x.Full = false, false
		delay := defaultAbortScaleDownDelay
		if d := x.Strategy.AbortScaleDownDelaySeconds; d != nil {
			delay = time.Duration(*d) * time.Second
		}
		if promoted {
			x.Status.Stable = x.Blue
			x.Retiring = slices.DeleteFunc(x.Retiring, func(rt retiring) bool { return rt.Revision == x.Blue })
		}
		x.GreenDownAt, x.GreenDown = time.Time{}, false
		switch {
		case delay > 0:
			x.GreenDownAt = time.Now().UTC().Add(delay)
		case promoted:
			// Green served: it is the previous active revision now,
			// always scaled down (never kept as a preview): at once.
			x.GreenDownAt = time.Now().UTC()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	b := en.bg()
	if promoted {
		blue := b.retiring[r.Blue]
		if len(blue) == 0 {
			// Not running here (a restart): started again first.
			ws, _, err := c.revisionOf(ctx, en, r.Blue)
			if err == nil {
				blue, err = c.startAll(ctx, en, r.Blue, ws)
			}
			if err == nil {
				err = c.waitReady(ctx, ws, blue)
			}
			if err != nil {
				c.log.Error("abort: start blue again", "environment", en.name, "revision", r.Blue, "err", err)
			}
		}
		if err := c.cfg.Store.ServeEnvRevision(context.WithoutCancel(ctx), en.name, r.Blue); err != nil {
			c.log.Error("abort: record blue as serving", "environment", en.name, "err", err)
		}
		en.mu.Lock()
		green := en.instances
		if en.proxy != nil {
			// Green's requests in flight through the active URL finish
			// before it is stopped (stopGreen waits for this drain).
			b.activeDrain = en.proxy.Switch(backends(blue))
		}
		en.instances, en.rev = blue, r.Blue
		en.mu.Unlock()
		delete(b.retiring, r.Blue)
		drain := b.activeDrain
		b.activeDrain = nil
		c.stopGreen(ctx, en)
		b.green, b.greenRev, b.activeDrain = green, r.Status.Desired, drain
		if b.preview != nil {
			b.preview.Switch(backends(green))
		}
	}
	if err := c.cfg.Store.SetEnvRevisionStatus(context.WithoutCancel(ctx), en.name, r.Status.Desired, store.RevisionAborted, reason); err != nil {
		c.log.Error("abort: record the revision", "environment", en.name, "err", err)
	}
	c.event(ctx, en, r.Status.Desired, "abort", who, reason)
	c.servingServices(ctx, en)
	return r, nil
}

// analyze runs one analysis (every template of ra at once) against green,
// recording each measurement into the rollout status as it arrives. With
// green given, an instance of it that exits or restarts fails the
// analysis. An analysis ended early (ctx) is never Successful.
func (c *Controller) analyze(ctx context.Context, en *env, r *record, kind string, ra *runtime.RolloutAnalysis, green []runtime.Instance) (analysis.Phase, string) {
	idx := -1
	_, err := c.update(ctx, en, false, func(x *record) error {
		if x.Cycle != r.Cycle || x.Status.Desired != r.Status.Desired {
			return errStale
		}
		// A run left Running by a process that died is Stopped: it never
		// passes; this one starts fresh.
		for i := range x.Status.Analyses {
			if a := &x.Status.Analyses[i]; a.Phase == analysis.PhaseRunning || a.Phase == analysis.PhasePending {
				a.Phase = analysis.PhaseStopped
			}
		}
		st := runtime.AnalysisStatus{Kind: kind, Revision: x.Status.Desired, Phase: analysis.PhaseRunning}
		for _, t := range ra.Templates {
			st.Runs = append(st.Runs, &analysis.Run{Template: t.Metadata.Name, Phase: analysis.PhaseRunning, StartedAt: time.Now().UTC()})
		}
		x.Status.Analyses = append(x.Status.Analyses, st)
		idx = len(x.Status.Analyses) - 1
		return nil
	})
	if err != nil {
		return analysis.PhaseError, err.Error()
	}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var watcher, wg sync.WaitGroup
	if len(green) > 0 {
		base := restarts(green)
		watcher.Go(func() {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-actx.Done():
					return
				case <-tick.C:
					if why, bad := crashed(green, base); bad {
						cancel(&crashError{why})
						return
					}
				}
			}
		})
	}
	if ra.PrometheusURL != "" && len(green) > 0 && hasPrometheus(ra) && !awaitScrapes(actx, ra.PrometheusURL, green) && actx.Err() == nil {
		c.log.Warn("the analysis starts before its Prometheus scraped green twice", "environment", en.name, "prometheus", ra.PrometheusURL, "waited", scrapeWait)
	}
	args := map[string]string{}
	for _, a := range ra.Args {
		args[a.Name] = a.Value
	}
	runs := make([]*analysis.Run, len(ra.Templates))
	for i, t := range ra.Templates {
		// A Rollout's args go to every template it names; each template
		// takes the ones it declares, as Argo does.
		opts := analysis.Options{Args: args, SharedArgs: true, PrometheusURL: ra.PrometheusURL, Log: c.log, OnMeasurement: func(metric string, m analysis.Measurement) {
			c.measured(ctx, en, idx, i, metric, m)
		}, Secret: func(name, key string) (string, bool) {
			// valueFrom.secretKeyRef: the values the request carried
			// (the pipeline's secrets the step lists); the analysis
			// masks each one it resolves.
			v, ok := ra.Secrets[analysis.SecretEnvName(name, key)]
			return v, ok
		}}
		wg.Go(func() {
			run, err := analysis.Execute(actx, t, opts)
			if err != nil {
				run = &analysis.Run{Template: t.Metadata.Name, Phase: analysis.PhaseError, Message: err.Error(), FinishedAt: time.Now().UTC()}
			}
			runs[i] = run
			if run.Phase != analysis.PhaseSuccessful {
				cancel(errDecided) // one template decides the analysis
			}
		})
	}
	wg.Wait()
	cause := context.Cause(actx)
	cancel(nil)
	watcher.Wait()
	phase, msgs := analysis.PhaseSuccessful, []string{}
	for _, run := range runs {
		if run.Phase.Worse(phase) {
			phase = run.Phase
		}
		if run.Phase != analysis.PhaseSuccessful && run.Message != "" {
			msgs = append(msgs, run.Template+": "+run.Message)
		}
	}
	if ce := (*crashError)(nil); errors.As(cause, &ce) {
		phase = analysis.PhaseFailed
		msgs = append(msgs, "green "+ce.why+" during the analysis: its measurements do not count")
	} else if ctx.Err() != nil && phase == analysis.PhaseSuccessful {
		phase = analysis.PhaseStopped // cut short: never Successful
	}
	msg := strings.Join(msgs, "; ")
	_, err = c.update(context.WithoutCancel(ctx), en, false, func(x *record) error {
		if idx >= len(x.Status.Analyses) {
			return errStale
		}
		a := &x.Status.Analyses[idx]
		a.Runs, a.Phase = runs, phase
		return nil
	})
	if err != nil && !errors.Is(err, errStale) {
		c.log.Error("record an analysis", "environment", en.name, "err", err)
	}
	c.event(ctx, en, r.Status.Desired, kind+"-analysis", "gantry", string(phase)+" "+msg)
	return phase, msg
}

// hasPrometheus says whether a template of ra has a prometheus metric.
func hasPrometheus(ra *runtime.RolloutAnalysis) bool {
	for _, t := range ra.Templates {
		for _, m := range t.Spec.Metrics {
			if m.Provider.Prometheus != nil {
				return true
			}
		}
	}
	return false
}

type crashError struct{ why string }

func (e *crashError) Error() string { return e.why }

// measured records one measurement into the rollout status.
func (c *Controller) measured(ctx context.Context, en *env, idx, tpl int, metric string, m analysis.Measurement) {
	_, err := c.update(context.WithoutCancel(ctx), en, false, func(x *record) error {
		if idx >= len(x.Status.Analyses) || tpl >= len(x.Status.Analyses[idx].Runs) {
			return errStale
		}
		run := x.Status.Analyses[idx].Runs[tpl]
		i := slices.IndexFunc(run.Metrics, func(r analysis.MetricResult) bool { return r.Name == metric })
		if i < 0 {
			run.Metrics = append(run.Metrics, analysis.MetricResult{Name: metric, Phase: analysis.PhaseRunning})
			i = len(run.Metrics) - 1
		}
		mr := &run.Metrics[i]
		mr.Measurements = append(mr.Measurements, m)
		mr.Count++
		switch m.Phase {
		case analysis.PhaseSuccessful:
			mr.Successful++
		case analysis.PhaseFailed:
			mr.Failed++
		case analysis.PhaseInconclusive:
			mr.Inconclusive++
		case analysis.PhaseError:
			mr.Error++
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStale) {
		c.log.Error("record a measurement", "environment", en.name, "err", err)
	}
}

// resumeRollout is the reconcile pass's part for rollouts (op held): the
// preview proxy listens again, a cycle in progress gets its driver, and
// old revisions past their scale-down deadline stop.
func (c *Controller) resumeRollout(ctx context.Context, en *env) error {
	r, _, err := c.load(ctx, en)
	if err != nil || r == nil {
		return err
	}
	if err := c.ensurePreview(ctx, en); err != nil {
		return err
	}
	if r.Status.Step != runtime.StepScaleDown && r.Status.Step != runtime.StepPostPromotion {
		if err := c.scaleDownDue(ctx, en); err != nil {
			return err
		}
	}
	if r.active() {
		c.kick(en)
	}
	return nil
}
