package envctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/store"
)

// InterruptedMessage is the message of a revision whose deploy was cut
// short by the end of the gantry process that ran it.
const InterruptedMessage = "interrupted: the gantry process deploying it stopped before it served; the previous revision serves"

// Run reconciles every recorded environment to its desired state, then
// keeps doing so every Config.Interval until ctx ends. An environment
// whose proxy port is taken at start makes Run return a *PortError naming
// the environment and the port; other failures (an instance or a service
// that does not start) are logged and retried at every pass, so that one
// broken environment does not keep the others down.
func (c *Controller) Run(ctx context.Context) error {
	if err := c.reconcileAll(ctx); err != nil {
		if pe := (*PortError)(nil); errors.As(err, &pe) {
			return err
		}
		c.log.Error("reconcile", "err", err)
	}
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := c.reconcileAll(ctx); err != nil && ctx.Err() == nil {
			c.log.Error("reconcile", "err", err)
		}
	}
}

func (c *Controller) reconcileAll(ctx context.Context) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	envs, err := c.cfg.Store.Environments(ctx)
	if err != nil {
		return fmt.Errorf("reconcile environments: %w", err)
	}
	var errs []error
	for _, e := range envs {
		if err := c.reconcile(ctx, e); err != nil && !errors.Is(err, ErrClosed) {
			errs = append(errs, fmt.Errorf("reconcile environment %s: %w", e.Name, err))
		}
	}
	return errors.Join(errs...)
}

// desired is the revision an environment should run: its newest serving
// one (nil if none).
func desired(revs []store.EnvRevision) *store.EnvRevision {
	for i := len(revs) - 1; i >= 0; i-- {
		if revs[i].Status == store.RevisionServing {
			return &revs[i]
		}
	}
	return nil
}

// reconcile brings one environment to its record. A deploy in progress
// (here or in another process) is left alone.
func (c *Controller) reconcile(ctx context.Context, e store.Environment) error {
	en, err := c.env(e)
	if err != nil {
		return err
	}
	unlock, err := c.lock(ctx, en, false)
	if errors.Is(err, errBusy) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unlock()
	revs, err := c.cfg.Store.EnvRevisions(ctx, en.name)
	if err != nil {
		return err
	}
	// Nobody deploys now (we hold the lock): a revision still deploying
	// belongs to a process that died. It is failed, not retried: a
	// revision that brought its process down would otherwise do it again.
	for _, r := range revs {
		if r.Status == store.RevisionDeploying {
			if err := c.cfg.Store.SetEnvRevisionStatus(ctx, en.name, r.Number, store.RevisionFailed, InterruptedMessage); err != nil {
				return err
			}
			c.log.Warn("deploy interrupted", "environment", en.name, "revision", r.Number)
		}
	}
	if err := c.ensureProxy(en); err != nil {
		return err
	}
	want := desired(revs)
	if want == nil {
		return c.resumeRollout(ctx, en)
	}
	var spec runtime.EnvironmentSpec
	var workloads []runtime.Workload
	if err := json.Unmarshal(want.Spec, &spec); err != nil {
		return fmt.Errorf("revision %d: decode its environment spec: %w", want.Number, err)
	}
	if err := json.Unmarshal(want.Workloads, &workloads); err != nil {
		return fmt.Errorf("revision %d: decode its workloads: %w", want.Number, err)
	}
	before := en.svcEnvCopy()
	c.dropExited(ctx, en)
	if err := c.ensureServices(ctx, en, spec); err != nil {
		return err
	}
	en.mu.Lock()
	rev, insts := en.rev, en.instances
	en.mu.Unlock()
	if rev == want.Number && !slices.Equal(before, en.svcEnvCopy()) {
		// A service came back on another address: the instances hold the
		// old one in their environment, so they start again.
		c.log.Warn("services moved; restarting instances", "environment", en.name, "revision", rev)
		en.mu.Lock()
		en.rev, en.instances = 0, nil
		en.mu.Unlock()
		drain := c.syncBackends(en)
		c.retire(context.WithoutCancel(ctx), drain, insts)
		rev, insts = 0, nil
	}
	if rev != want.Number {
		// After a restart nothing runs (or another process recorded a new
		// revision): start the desired revision's instances under their
		// stable IDs.
		c.log.Info("starting environment", "environment", en.name, "revision", want.Number)
		started, err := c.startAll(ctx, en, want.Number, workloads)
		if err != nil {
			return err
		}
		if err := c.waitReady(ctx, workloads, started); err != nil {
			c.log.Warn("environment not ready yet", "environment", en.name, "revision", want.Number, "err", err)
		}
		en.mu.Lock()
		en.rev, en.instances = want.Number, started
		en.mu.Unlock()
		if len(insts) > 0 {
			drain := c.syncBackends(en)
			c.retire(context.WithoutCancel(ctx), drain, insts)
		}
	} else {
		c.replaceStopped(ctx, en, rev, workloads)
	}
	c.syncBackends(en)
	c.serving(ctx, en, spec)
	return c.resumeRollout(ctx, en)
}

// replaceStopped starts again the instances that the runtime no longer
// supervises (state "stopped": it gave up on them).
func (c *Controller) replaceStopped(ctx context.Context, en *env, rev int, workloads []runtime.Workload) {
	en.mu.Lock()
	insts := slices.Clone(en.instances)
	en.mu.Unlock()
	for i, inst := range insts {
		if inst.Status().State != "stopped" {
			continue
		}
		w := workloadOf(en.name, rev, workloads, inst.ID())
		if w == nil {
			continue
		}
		vars, err := c.instanceEnv(ctx, en)
		if err != nil {
			c.log.Error("replace instance", "instance", inst.ID(), "err", err)
			continue
		}
		_ = inst.Stop(ctx)
		again, err := c.cfg.Runtime.Start(ctx, runtime.InstanceSpec{ID: inst.ID(), Workload: *w, Env: vars, Dir: c.instanceDir(en.name, inst.ID())})
		if err != nil {
			c.log.Error("replace instance", "instance", inst.ID(), "err", err)
			continue
		}
		c.log.Warn("instance replaced", "instance", inst.ID())
		insts[i] = again
	}
	en.mu.Lock()
	en.instances = insts
	en.mu.Unlock()
}

// workloadOf finds the workload of revision rev that instance id runs.
func workloadOf(envName string, rev int, workloads []runtime.Workload, id string) *runtime.Workload {
	for j := range workloads {
		for i := range workloads[j].Replicas {
			if instanceID(envName, rev, workloads[j].Name, i) == id {
				return &workloads[j]
			}
		}
	}
	return nil
}

func (en *env) svcEnvCopy() []string {
	en.mu.Lock()
	defer en.mu.Unlock()
	return slices.Clone(en.svcEnv)
}

// syncBackends points the proxy at the ready instances of the revision
// that serves: an instance failing readiness leaves the rotation until it
// passes again.
// It returns the drain of the previous set (a no-op when nothing changed).
func (c *Controller) syncBackends(en *env) (drain func(context.Context) error) {
	drain = func(context.Context) error { return nil }
	// Ready may take a moment: it is asked without the lock that Status
	// takes. The instances only change with op held, which the caller
	// holds.
	en.mu.Lock()
	insts, p := slices.Clone(en.instances), en.proxy
	en.mu.Unlock()
	if p == nil {
		return drain
	}
	var ready []runtime.Instance
	for _, inst := range insts {
		if inst.Ready() {
			ready = append(ready, inst)
		}
	}
	if want := backends(ready); !slices.Equal(want, p.Backends()) {
		drain = p.Switch(want)
	}
	return drain
}

// Close stops every environment: its proxy first (no new request is
// accepted, those in flight finish), then its instances, then its
// services. A deploy in progress gives up first (its revision fails, the
// previous one is what the next Run starts). The record is kept: the next
// Run starts everything again.
func (c *Controller) Close(ctx context.Context) error {
	c.stop()
	c.mu.Lock()
	c.closed = true
	envs := make([]*env, 0, len(c.envs))
	for _, en := range c.envs {
		envs = append(envs, en)
	}
	c.mu.Unlock()
	c.drivers.Wait()
	var errs []error
	for _, en := range envs {
		en.op <- struct{}{} // deploys and reconciles in progress finish first
		en.mu.Lock()
		p, insts := en.proxy, en.instances
		en.proxy, en.instances, en.rev = nil, nil, 0
		en.mu.Unlock()
		if p != nil {
			if err := p.Close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		c.stopAll(ctx, insts)
		if err := c.closeBlueGreen(ctx, en); err != nil {
			errs = append(errs, err)
		}
		if err := c.stopServices(ctx, en); err != nil {
			errs = append(errs, err)
		}
		<-en.op
	}
	return errors.Join(errs...)
}
