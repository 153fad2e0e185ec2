package envctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/proxy"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/store"
)

// This file is the blue/green rollout state machine (Argo Rollouts'
// blueGreen strategy on the local runtime; see docs/environments.md,
// "Blue/green rollouts"). The store's rollout record is the truth: every
// transition is written before it takes effect outside, and one driver
// goroutine per environment moves the record on (driver.go), so that a
// serve process killed at any step carries on from the record.

var _ runtime.Roller = (*Controller)(nil)

// Defaults of the strategy's durations, as Argo has them.
const (
	defaultScaleDownDelay      = 30 * time.Second
	defaultAbortScaleDownDelay = 30 * time.Second
)

// record is the controller's rollout record, kept as JSON in the store.
type record struct {
	Status   runtime.RolloutStatus `json:"status"`
	Strategy runtime.BlueGreen     `json:"strategy"`
	Monitors []runtime.Monitor     `json:"monitors,omitempty"`
	// Blue is the revision that served when the cycle started: the one an
	// abort goes back to.
	Blue int `json:"blue"`
	// Retiring are old revisions kept running (not serving) until their
	// scale-down deadline.
	Retiring []retiring `json:"retiring,omitempty"`
	// GreenDownAt is when an aborted green stops (zero: kept until the
	// next rollout); GreenDown says it has stopped.
	GreenDownAt time.Time `json:"greenDownAt,omitzero"`
	GreenDown   bool      `json:"greenDown,omitempty"`
	// PromoteAsked ends the pause as soon as the analysis allows (a
	// promote during the analysis); Full skips what analysis remains.
	PromoteAsked bool `json:"promoteAsked,omitempty"`
	Full         bool `json:"full,omitempty"`
	// Cycle counts the attempts at this revision (retry adds one).
	Cycle int `json:"cycle"`
}

type retiring struct {
	Revision int       `json:"revision"`
	At       time.Time `json:"at"`
}

// active says whether the record's cycle still runs (a driver has work).
func (r *record) active() bool {
	switch r.Status.Step {
	case runtime.StepCompleted:
		return false
	case runtime.StepAborted:
		return !r.GreenDown && !r.GreenDownAt.IsZero()
	}
	return true
}

// busy says whether a deploy or a new rollout must wait for the cycle:
// until promotion has completed, or it was aborted.
func (r *record) busy() bool {
	switch r.Status.Step {
	case runtime.StepCompleted, runtime.StepAborted, runtime.StepScaleDown:
		return false
	}
	return true
}

// blueGreen is an environment's rollout machinery in this process.
type blueGreen struct {
	mu      sync.Mutex
	rec     *record // the record as last written or read (nil: not loaded)
	ver     uint64  // bumped at every change of rec
	changed chan struct{}
	// recent are the last statuses written, for Watch to show every
	// change (the oldest are dropped past maxRecent).
	recent []versioned
	// running: a driver goroutine runs; cancel ends its current step (a
	// verb changed the record).
	running bool
	cancel  context.CancelFunc

	// With env.op held:
	preview  *proxy.Proxy
	greenRev int
	green    []runtime.Instance
	// activeDrain, when set, is the drain of green's requests through the
	// active proxy (green served, then an abort switched back to blue).
	activeDrain func(context.Context) error
	retiring    map[int][]runtime.Instance

	// watching is when this process's driver began the post-promotion
	// window of revision watchRev's cycle watchCycle (guarded by mu): probe agents' results
	// count from then on only, as the local monitors' do (results from
	// before, such as those of a serve restart, when the instances were
	// down, say nothing of the release).
	watching   time.Time
	watchCycle int
	watchRev   int
}

func (en *env) bg() *blueGreen {
	en.bgOnce.Do(func() {
		en.bgState = &blueGreen{changed: make(chan struct{}), retiring: map[int][]runtime.Instance{}}
	})
	return en.bgState
}

type versioned struct {
	ver    uint64
	status runtime.RolloutStatus
}

// maxRecent bounds the statuses kept for a slow watcher.
const maxRecent = 1024

// load returns a copy of the environment's record (nil if it never had a
// rollout) and its version.
func (c *Controller) load(ctx context.Context, en *env) (*record, uint64, error) {
	b := en.bg()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rec == nil {
		r, err := c.cfg.Store.Rollout(ctx, en.name)
		if errors.Is(err, store.ErrNotFound) {
			return nil, b.ver, nil
		}
		if err != nil {
			return nil, 0, err
		}
		var rec record
		if err := json.Unmarshal(r.State, &rec); err != nil {
			return nil, 0, fmt.Errorf("rollout of %s: decode its record: %w", en.name, err)
		}
		b.rec = &rec
	}
	return copyRecord(b.rec), b.ver, nil
}

func copyRecord(r *record) *record {
	// A JSON round trip: the record is what the store keeps anyway.
	data, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("rollout record does not encode: %v", err)) // a programming error
	}
	var out record
	if err := json.Unmarshal(data, &out); err != nil {
		panic(fmt.Sprintf("rollout record does not decode: %v", err))
	}
	return &out
}

// update applies f to the record and writes it; f's error leaves the
// record as it was. With interrupt, the driver's current step is ended
// (it reads the record again).
func (c *Controller) update(ctx context.Context, en *env, interrupt bool, f func(r *record) error) (*record, error) {
	if _, _, err := c.load(ctx, en); err != nil {
		return nil, err
	}
	b := en.bg()
	b.mu.Lock()
	defer b.mu.Unlock()
	var r *record
	if b.rec == nil {
		r = &record{}
	} else {
		r = copyRecord(b.rec)
	}
	if err := f(r); err != nil {
		return nil, err
	}
	r.Status.Environment = en.name
	r.Status.Updated = time.Now().UTC()
	setConditions(&r.Status)
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("rollout of %s: encode its record: %w", en.name, err)
	}
	sr := &store.Rollout{Environment: en.name, Step: string(r.Status.Step), Phase: string(r.Status.Phase),
		Stable: r.Status.Stable, Desired: r.Status.Desired, State: data}
	if err := c.cfg.Store.PutRollout(context.WithoutCancel(ctx), sr); err != nil {
		return nil, fmt.Errorf("rollout of %s: %w", en.name, err)
	}
	b.rec = r
	b.ver++
	b.recent = append(b.recent, versioned{b.ver, r.Status})
	if len(b.recent) > maxRecent {
		b.recent = slices.Delete(b.recent, 0, len(b.recent)-maxRecent)
	}
	close(b.changed)
	b.changed = make(chan struct{})
	if interrupt && b.cancel != nil {
		b.cancel()
	}
	return copyRecord(r), nil
}

// event appends to the environment's audit trail; a failure is logged.
func (c *Controller) event(ctx context.Context, en *env, rev int, verb, who, msg string) {
	e := &store.RolloutEvent{Environment: en.name, Revision: rev, Verb: verb, Who: who, Message: msg}
	if err := c.cfg.Store.AddRolloutEvent(context.WithoutCancel(ctx), e); err != nil {
		c.log.Error("rollout audit event", "environment", en.name, "verb", verb, "err", err)
	}
	c.log.Info("rollout", "environment", en.name, "revision", rev, "verb", verb, "who", who, "message", msg)
}

// setConditions derives Argo's conditions from the phase and step,
// keeping the time of those that did not change.
func setConditions(st *runtime.RolloutStatus) {
	type cond struct{ typ, status, reason string }
	var want []cond
	switch st.Phase {
	case runtime.RolloutHealthy:
		want = []cond{{"Progressing", "True", "NewReplicaSetAvailable"}, {"Available", "True", "AvailableReason"}, {"Healthy", "True", "RolloutHealthy"}, {"Paused", "False", ""}}
	case runtime.RolloutPaused:
		want = []cond{{"Progressing", "Unknown", "RolloutPaused"}, {"Available", "True", "AvailableReason"}, {"Healthy", "False", "RolloutPaused"}, {"Paused", "True", "BlueGreenPause"}}
	case runtime.RolloutDegraded:
		reason := "RolloutAborted"
		if st.Step != runtime.StepAborted {
			reason = "AnalysisCutShort"
		}
		want = []cond{{"Progressing", "False", reason}, {"Available", "True", "AvailableReason"}, {"Healthy", "False", reason}, {"Paused", "False", ""}}
	default:
		want = []cond{{"Progressing", "True", "ReplicaSetUpdated"}, {"Available", "True", "AvailableReason"}, {"Healthy", "False", "RolloutProgressing"}, {"Paused", "False", ""}}
	}
	now := time.Now().UTC()
	out := make([]runtime.RolloutCondition, 0, len(want))
	for _, w := range want {
		c := runtime.RolloutCondition{Type: w.typ, Status: w.status, Reason: w.reason, Changed: now}
		for _, old := range st.Conditions {
			if old.Type == w.typ && old.Status == w.status && old.Reason == w.reason {
				c.Changed = old.Changed
			}
		}
		if w.typ == "Progressing" || w.typ == "Healthy" {
			c.Message = st.Message
		}
		out = append(out, c)
	}
	st.Conditions = out
}

// rolloutBusy refuses a deploy while a blue/green cycle has not reached
// promotion's end or an abort.
func (c *Controller) rolloutBusy(ctx context.Context, name string) error {
	c.mu.Lock()
	en := c.envs[name]
	c.mu.Unlock()
	if en == nil {
		return nil
	}
	r, _, err := c.load(ctx, en)
	if err != nil {
		return err
	}
	if r != nil && r.busy() {
		return fmt.Errorf("rollout of revision %d is at step %s (promote, abort or wait for it): %w", r.Status.Desired, r.Status.Step, runtime.ErrDeployInProgress)
	}
	return nil
}

// envFor returns the recorded environment (ErrNoRollout wrapped with
// store.ErrNotFound for an unknown one).
func (c *Controller) envFor(ctx context.Context, name string) (*env, error) {
	e, err := c.cfg.Store.Environment(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("environment %s: %w (%w)", name, runtime.ErrNoRollout, err)
	}
	if err != nil {
		return nil, err
	}
	return c.env(e)
}

// previewURL is the environment's preview URL ("" before its first
// rollout).
func (c *Controller) previewURL(ctx context.Context, en *env) string {
	en.mu.Lock()
	port := en.previewPort
	en.mu.Unlock()
	if port == 0 {
		return ""
	}
	return c.url(port)
}

// ensurePreview records the environment's preview port (once for its
// life) and starts its preview proxy if it does not run.
func (c *Controller) ensurePreview(ctx context.Context, en *env) error {
	b := en.bg()
	if b.preview != nil {
		return nil
	}
	fresh, err := c.freePort()
	if err != nil {
		return err
	}
	port, err := c.cfg.Store.PreviewPort(ctx, en.name, fresh)
	if err != nil {
		return fmt.Errorf("environment %s: preview port: %w", en.name, err)
	}
	p := proxy.New(en.name+"-preview", c.log)
	if err := p.Listen(net.JoinHostPort(c.cfg.ProxyHost, strconv.Itoa(port))); err != nil {
		return &PortError{Environment: en.name + " (preview)", Port: port, Err: err}
	}
	b.preview = p
	en.mu.Lock()
	en.previewPort = port
	en.mu.Unlock()
	return nil
}

// Rollout implements runtime.Roller.
func (c *Controller) Rollout(ctx context.Context, req runtime.RolloutRequest) (runtime.RolloutStatus, error) {
	dreq := req.Deploy
	dreq.Workloads = append([]runtime.Workload(nil), dreq.Workloads...)
	if err := checkRequest(&dreq); err != nil {
		return runtime.RolloutStatus{}, err
	}
	if dreq.Reason == "" {
		dreq.Reason = "rollout"
	}
	if err := checkStrategy(&req.Strategy); err != nil {
		return runtime.RolloutStatus{}, fmt.Errorf("%w: rollout %s: %w", runtime.ErrInvalidRequest, dreq.Environment, err)
	}
	if len(req.Monitors) > 0 && c.cfg.Monitor == nil {
		return runtime.RolloutStatus{}, fmt.Errorf("%w: rollout %s: %d monitors but this controller runs none (no monitor runner configured)", runtime.ErrInvalidRequest, dreq.Environment, len(req.Monitors))
	}
	e, err := c.cfg.Store.Environment(ctx, dreq.Environment)
	if errors.Is(err, store.ErrNotFound) {
		port, perr := c.freePort()
		if perr != nil {
			return runtime.RolloutStatus{}, fmt.Errorf("rollout %s: %w", dreq.Environment, perr)
		}
		e, err = c.cfg.Store.CreateEnvironment(ctx, dreq.Environment, port)
	}
	if err != nil {
		return runtime.RolloutStatus{}, fmt.Errorf("rollout %s: %w", dreq.Environment, err)
	}
	en, err := c.env(e)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	unlock, err := c.lock(ctx, en, true)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	defer unlock()
	ctx = proc.WithTracker(ctx, nil)
	if err := c.rolloutBusy(ctx, en.name); err != nil {
		return runtime.RolloutStatus{}, fmt.Errorf("rollout %s: %w", en.name, err)
	}
	if err := c.ensurePreview(ctx, en); err != nil {
		return runtime.RolloutStatus{}, err
	}
	old, _, err := c.load(ctx, en)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	revs, err := c.cfg.Store.EnvRevisions(ctx, en.name)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	blue := desired(revs)
	if blue == nil {
		// Nothing serves: deployed at once, Healthy (as Argo does).
		rev, err := c.deploy(ctx, en, dreq)
		if err != nil {
			return runtime.RolloutStatus{}, err
		}
		r, err := c.update(ctx, en, false, func(r *record) error {
			*r = record{Strategy: req.Strategy, Monitors: req.Monitors, Blue: 0, Cycle: 1,
				Status: runtime.RolloutStatus{Phase: runtime.RolloutHealthy, Step: runtime.StepCompleted, Stable: rev.Number, Desired: rev.Number,
					Digest: rev.Digest, Message: "first revision: deployed at once"}}
			if old != nil {
				r.Retiring = old.Retiring
			}
			return nil
		})
		if err != nil {
			return runtime.RolloutStatus{}, err
		}
		c.event(ctx, en, rev.Number, "rollout", dreq.Who, "first revision: deployed at once")
		return c.statusOf(ctx, en, r), nil
	}
	if rev, err := c.admit(ctx, en, &dreq); err != nil {
		return runtime.RolloutStatus{}, fmt.Errorf("rollout %s: %w (revision %d)", en.name, err, rev.Number)
	}
	if err := c.ensureServices(ctx, en, dreq.Spec); err != nil {
		return runtime.RolloutStatus{}, err
	}
	// An aborted green of the cycle before gives way.
	c.stopGreen(ctx, en)
	if old != nil && old.Status.Step == runtime.StepAborted && !old.GreenDown {
		_ = c.cfg.Store.SetEnvRevisionStatus(ctx, en.name, old.Status.Desired, store.RevisionAborted, old.Status.Message)
	}
	rec, err := c.record(ctx, en.name, dreq, store.RevisionPreview, "")
	if err != nil {
		return runtime.RolloutStatus{}, fmt.Errorf("rollout %s: %w", en.name, err)
	}
	r, err := c.update(ctx, en, true, func(r *record) error {
		var keep []retiring
		if old != nil {
			keep = old.Retiring
		}
		*r = record{Strategy: req.Strategy, Monitors: req.Monitors, Blue: blue.Number, Cycle: 1, Retiring: keep,
			Status: runtime.RolloutStatus{Phase: runtime.RolloutProgressing, Step: runtime.StepPreview, Stable: blue.Number, Desired: rec.Number,
				Digest: rec.Digest, Message: "starting green"}}
		return nil
	})
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	c.event(ctx, en, rec.Number, "rollout", dreq.Who, fmt.Sprintf("revision %d (%s) beside revision %d", rec.Number, rec.Digest, blue.Number))
	c.kick(en)
	return c.statusOf(ctx, en, r), nil
}

// checkStrategy refuses what cannot run.
func checkStrategy(s *runtime.BlueGreen) error {
	if s.ActiveService == "" {
		return errors.New("strategy: no activeService")
	}
	if s.PreviewReplicaCount != nil && *s.PreviewReplicaCount < 1 {
		return fmt.Errorf("strategy: previewReplicaCount %d: want at least 1 on the local runtime", *s.PreviewReplicaCount)
	}
	for _, d := range []struct {
		name string
		v    *int
	}{{"scaleDownDelaySeconds", s.ScaleDownDelaySeconds}, {"abortScaleDownDelaySeconds", s.AbortScaleDownDelaySeconds}, {"scaleDownDelayRevisionLimit", s.ScaleDownDelayRevisionLimit}} {
		if d.v != nil && *d.v < 0 {
			return fmt.Errorf("strategy: %s %d < 0", d.name, *d.v)
		}
	}
	if s.AutoPromotionSeconds < 0 {
		return fmt.Errorf("strategy: autoPromotionSeconds %d < 0", s.AutoPromotionSeconds)
	}
	if t := s.PreviewTraffic; t != nil {
		if t.Header == "" && (t.Percent < 0 || t.Percent > 100) {
			return fmt.Errorf("strategy: previewTraffic percent %d: want 0 to 100", t.Percent)
		}
	}
	for _, a := range []*runtime.RolloutAnalysis{s.PrePromotionAnalysis, s.PostPromotionAnalysis} {
		if a == nil {
			continue
		}
		for i, t := range a.Templates {
			if t == nil {
				return fmt.Errorf("strategy: analysis template %d is empty", i)
			}
		}
	}
	return nil
}

// Promote implements runtime.Roller.
func (c *Controller) Promote(ctx context.Context, environment string, full bool, who string) (runtime.RolloutStatus, error) {
	en, err := c.envFor(ctx, environment)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	cur, _, err := c.load(ctx, en)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	// A promote during the analysis lets it finish (the pause is skipped
	// after it); a full one, or one of a paused rollout, acts at once.
	interrupt := full || (cur != nil && cur.Status.Step != runtime.StepPrePromotion)
	r, err := c.update(ctx, en, interrupt, func(r *record) error {
		switch st := r.Status.Step; {
		case st == "":
			return fmt.Errorf("promote %s: %w", environment, runtime.ErrNoRollout)
		case st == runtime.StepPreview || st == runtime.StepPrePromotion || st == runtime.StepPaused:
			r.PromoteAsked = true
			r.Full = r.Full || full
		case st == runtime.StepPostPromotion && full:
			r.Full = true
		default:
			return fmt.Errorf("promote %s: the rollout is at step %s: %w", environment, st, runtime.ErrRolloutState)
		}
		r.Status.PromotedBy = who
		return nil
	})
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	verb := "promote"
	if full {
		verb = "promote --full"
	}
	c.event(ctx, en, r.Status.Desired, verb, who, "")
	c.kick(en)
	return c.statusOf(ctx, en, r), nil
}

// Abort implements runtime.Roller: active traffic is back on blue when it
// returns.
func (c *Controller) Abort(ctx context.Context, environment, who, reason string) (runtime.RolloutStatus, error) {
	en, err := c.envFor(ctx, environment)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	if reason == "" {
		reason = "aborted by " + who
	}
	r, err := c.abort(ctx, en, who, reason, 0)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	return c.statusOf(ctx, en, r), nil
}

// Retry implements runtime.Roller: an aborted cycle starts again with a
// fresh analysis.
func (c *Controller) Retry(ctx context.Context, environment, who string) (runtime.RolloutStatus, error) {
	en, err := c.envFor(ctx, environment)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	unlock, err := c.opLock(ctx, en)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	defer unlock()
	r, err := c.update(ctx, en, true, func(r *record) error {
		switch r.Status.Step {
		case "":
			return fmt.Errorf("retry %s: %w", environment, runtime.ErrNoRollout)
		case runtime.StepAborted:
		default:
			return fmt.Errorf("retry %s: the rollout is at step %s, not aborted: %w", environment, r.Status.Step, runtime.ErrRolloutState)
		}
		r.Cycle++
		r.Status.Step, r.Status.Phase, r.Status.Message = runtime.StepPreview, runtime.RolloutProgressing, fmt.Sprintf("retry %d", r.Cycle-1)
		r.Status.AbortedBy, r.Status.PromotedBy = "", ""
		r.PromoteAsked, r.Full, r.GreenDown, r.GreenDownAt = false, false, false, time.Time{}
		r.Status.PauseUntil = time.Time{}
		return nil
	})
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	if err := c.cfg.Store.SetEnvRevisionStatus(ctx, en.name, r.Status.Desired, store.RevisionPreview, ""); err != nil {
		c.log.Error("retry: record the revision", "environment", en.name, "err", err)
	}
	c.event(ctx, en, r.Status.Desired, "retry", who, "")
	c.kick(en)
	return c.statusOf(ctx, en, r), nil
}

// Undo implements runtime.Roller: a new blue/green cycle for an earlier
// revision's workloads, through admission.
func (c *Controller) Undo(ctx context.Context, environment string, toRevision int, who string) (runtime.RolloutStatus, error) {
	en, err := c.envFor(ctx, environment)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	r, _, err := c.load(ctx, en)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	if r == nil {
		return runtime.RolloutStatus{}, fmt.Errorf("undo %s: %w", environment, runtime.ErrNoRollout)
	}
	revs, err := c.cfg.Store.EnvRevisions(ctx, environment)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	cur := desired(revs)
	var target *store.EnvRevision
	for i := len(revs) - 1; i >= 0; i-- {
		rv := &revs[i]
		if toRevision != 0 {
			if rv.Number == toRevision {
				target = rv
				break
			}
			continue
		}
		if cur != nil && rv.Number < cur.Number && rv.Status == store.RevisionSuperseded {
			target = rv
			break
		}
	}
	switch {
	case target == nil && toRevision == 0:
		return runtime.RolloutStatus{}, fmt.Errorf("undo %s: no earlier revision served: %w", environment, ErrNoRollbackTarget)
	case target == nil:
		return runtime.RolloutStatus{}, fmt.Errorf("undo %s to revision %d: it does not exist: %w (%w)", environment, toRevision, ErrNoRollbackTarget, store.ErrNotFound)
	case target.Status != store.RevisionSuperseded && target.Status != store.RevisionServing:
		return runtime.RolloutStatus{}, fmt.Errorf("undo %s to revision %d: it never served (%s): %w", environment, target.Number, target.Status, ErrNoRollbackTarget)
	case cur != nil && target.Number == cur.Number:
		return runtime.RolloutStatus{}, fmt.Errorf("undo %s to revision %d: it serves already: %w", environment, target.Number, runtime.ErrRolloutState)
	}
	req := runtime.RolloutRequest{Strategy: r.Strategy, Monitors: r.Monitors,
		Deploy: runtime.DeployRequest{Environment: environment, Who: who, Reason: fmt.Sprintf("undo to %d", target.Number)}}
	if err := json.Unmarshal(target.Workloads, &req.Deploy.Workloads); err != nil {
		return runtime.RolloutStatus{}, fmt.Errorf("undo %s: decode revision %d's workloads: %w", environment, target.Number, err)
	}
	if err := json.Unmarshal(target.Spec, &req.Deploy.Spec); err != nil {
		return runtime.RolloutStatus{}, fmt.Errorf("undo %s: decode revision %d's spec: %w", environment, target.Number, err)
	}
	return c.Rollout(ctx, req)
}

// RolloutStatus implements runtime.Roller.
func (c *Controller) RolloutStatus(ctx context.Context, environment string) (runtime.RolloutStatus, error) {
	en, err := c.envFor(ctx, environment)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	r, _, err := c.load(ctx, en)
	if err != nil {
		return runtime.RolloutStatus{}, err
	}
	if r == nil {
		return runtime.RolloutStatus{}, fmt.Errorf("environment %s: %w", environment, runtime.ErrNoRollout)
	}
	return c.statusOf(ctx, en, r), nil
}

// Watch implements runtime.Roller.
func (c *Controller) Watch(ctx context.Context, environment string, f func(runtime.RolloutStatus) bool) error {
	en, err := c.envFor(ctx, environment)
	if err != nil {
		return err
	}
	r, seen, err := c.load(ctx, en)
	if err != nil {
		return err
	}
	if r == nil {
		return fmt.Errorf("environment %s: %w", environment, runtime.ErrNoRollout)
	}
	if !f(c.statusOf(ctx, en, r)) {
		return nil
	}
	b := en.bg()
	for {
		b.mu.Lock()
		changed := b.changed
		var next []runtime.RolloutStatus
		for _, v := range b.recent {
			if v.ver > seen {
				next = append(next, v.status)
			}
		}
		if b.ver > seen && len(next) == 0 && b.rec != nil {
			next = append(next, b.rec.Status) // fell off recent: the latest
		}
		seen = b.ver
		b.mu.Unlock()
		for _, st := range next {
			if !f(c.statusOf(ctx, en, &record{Status: st})) {
				return nil
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("watch the rollout of %s: %w", environment, ctx.Err())
		case <-c.stopping.Done():
			return ErrClosed
		}
	}
}

// RolloutEvents is the environment's rollout audit trail.
func (c *Controller) RolloutEvents(ctx context.Context, environment string) ([]store.RolloutEvent, error) {
	return c.cfg.Store.RolloutEvents(ctx, environment)
}

func (c *Controller) statusOf(ctx context.Context, en *env, r *record) runtime.RolloutStatus {
	st := r.Status
	st.Environment = en.name
	st.ActiveURL = c.url(en.port)
	st.PreviewURL = c.previewURL(ctx, en)
	return st
}

// kick starts the environment's driver if none runs.
func (c *Controller) kick(en *env) {
	b := en.bg()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running {
		return
	}
	c.mu.Lock()
	closed := c.closed
	if !closed {
		c.drivers.Add(1)
	}
	c.mu.Unlock()
	if closed {
		return
	}
	b.running = true
	go c.drive(en) // owned by Controller: Close waits for c.drivers
}

// opLock takes the environment for a change of its instances or proxies,
// waiting for a deploy or a reconcile in progress in this process, and
// for another process's lock to go.
func (c *Controller) opLock(ctx context.Context, en *env) (func(), error) {
	select {
	case en.op <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("environment %s: %w", en.name, ctx.Err())
	}
	for {
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed {
			<-en.op
			return nil, ErrClosed
		}
		unlock, err := c.cfg.Store.LockEnvironment(en.name)
		if err == nil {
			return func() { unlock(); <-en.op }, nil
		}
		if !errors.Is(err, store.ErrEnvLocked) {
			<-en.op
			return nil, err
		}
		select {
		case <-ctx.Done():
			<-en.op
			return nil, fmt.Errorf("environment %s: %w", en.name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// revisionOf decodes a recorded revision's workloads and spec.
func (c *Controller) revisionOf(ctx context.Context, en *env, number int) ([]runtime.Workload, runtime.EnvironmentSpec, error) {
	var ws []runtime.Workload
	var spec runtime.EnvironmentSpec
	rev, err := c.cfg.Store.EnvRevision(ctx, en.name, number)
	if err != nil {
		return nil, spec, err
	}
	if err := json.Unmarshal(rev.Workloads, &ws); err != nil {
		return nil, spec, fmt.Errorf("revision %d: decode its workloads: %w", number, err)
	}
	if err := json.Unmarshal(rev.Spec, &spec); err != nil {
		return nil, spec, fmt.Errorf("revision %d: decode its spec: %w", number, err)
	}
	return ws, spec, nil
}

// greenWorkloads is the revision's workloads with the preview replica
// count.
func greenWorkloads(ws []runtime.Workload, s *runtime.BlueGreen) []runtime.Workload {
	out := slices.Clone(ws)
	if s.PreviewReplicaCount != nil {
		for i := range out {
			out[i].Replicas = *s.PreviewReplicaCount
		}
	}
	return out
}

// ensureGreen starts the desired revision's green instances if they do
// not run here (a new cycle, or a restart of the serve process); with op
// held. It returns them.
func (c *Controller) ensureGreen(ctx context.Context, en *env, r *record, replicas bool) ([]runtime.Instance, []runtime.Workload, error) {
	b := en.bg()
	ws, _, err := c.revisionOf(ctx, en, r.Status.Desired)
	if err != nil {
		return nil, nil, err
	}
	if replicas {
		ws = greenWorkloads(ws, &r.Strategy)
	}
	if b.greenRev == r.Status.Desired && len(b.green) > 0 {
		return b.green, ws, nil
	}
	c.stopGreen(ctx, en)
	if err := c.ensurePreview(ctx, en); err != nil {
		return nil, nil, err
	}
	insts, err := c.startAll(ctx, en, r.Status.Desired, ws)
	if err != nil {
		return nil, nil, err
	}
	b.green, b.greenRev = insts, r.Status.Desired
	return insts, ws, nil
}

// stopGreen stops the green instances (the preview URL answers 503 from
// then on), with op held.
func (c *Controller) stopGreen(ctx context.Context, en *env) {
	b := en.bg()
	if len(b.green) == 0 {
		return
	}
	en.mu.Lock()
	p := en.proxy
	en.mu.Unlock()
	if p != nil {
		p.SetSplit(nil)
	}
	drain := func(context.Context) error { return nil }
	if b.preview != nil {
		drain = b.preview.Switch(nil)
	}
	if active := b.activeDrain; active != nil {
		preview := drain
		drain = func(ctx context.Context) error { return errors.Join(preview(ctx), active(ctx)) }
	}
	green := b.green
	b.green, b.greenRev, b.activeDrain = nil, 0, nil
	c.retire(context.WithoutCancel(ctx), drain, green)
}

// routeGreen points the preview proxy at green's ready instances and, with
// previewTraffic, sends that share of active traffic to them; with op
// held.
func (c *Controller) routeGreen(en *env, r *record, split bool) {
	b := en.bg()
	if b.preview == nil {
		return
	}
	var ready []runtime.Instance
	for _, inst := range b.green {
		if inst.Ready() {
			ready = append(ready, inst)
		}
	}
	if want := backends(ready); !slices.Equal(want, b.preview.Backends()) {
		b.preview.Switch(want)
	}
	en.mu.Lock()
	p := en.proxy
	en.mu.Unlock()
	if p == nil {
		return
	}
	t := r.Strategy.PreviewTraffic
	if !split || t == nil || (t.Header == "" && t.Percent == 0) {
		p.SetSplit(nil)
		return
	}
	if cur := p.CurrentSplit(); cur == nil || cur.To != b.preview || cur.Header != t.Header || cur.Value != t.Value || cur.Percent != t.Percent {
		p.SetSplit(&proxy.Split{Header: t.Header, Value: t.Value, Percent: t.Percent, To: b.preview})
	}
}

// closeBlueGreen stops what the rollout machinery runs for en (Close).
func (c *Controller) closeBlueGreen(ctx context.Context, en *env) error {
	b := en.bg()
	var err error
	if b.preview != nil {
		err = b.preview.Close(ctx)
		b.preview = nil
	}
	c.stopAll(ctx, b.green)
	b.green, b.greenRev = nil, 0
	for rev, insts := range b.retiring {
		c.stopAll(ctx, insts)
		delete(b.retiring, rev)
	}
	return err
}
