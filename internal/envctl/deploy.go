package envctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/proxy"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/store"
)

var workloadName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// checkRequest refuses a malformed request; the error wraps
// runtime.ErrInvalidRequest.
func checkRequest(req *runtime.DeployRequest) error {
	if err := checkFields(req); err != nil {
		return fmt.Errorf("%w: %w", runtime.ErrInvalidRequest, err)
	}
	return nil
}

func checkFields(req *runtime.DeployRequest) error {
	if err := store.CheckEnvName(req.Environment); err != nil {
		return err
	}
	if len(req.Workloads) == 0 {
		return fmt.Errorf("deploy %s: no workload", req.Environment)
	}
	seen := map[string]bool{}
	for i := range req.Workloads {
		w := &req.Workloads[i]
		if !workloadName.MatchString(w.Name) {
			return fmt.Errorf("deploy %s: workload %d: name %q is not a DNS label", req.Environment, i, w.Name)
		}
		if seen[w.Name] {
			return fmt.Errorf("deploy %s: workload %q appears twice", req.Environment, w.Name)
		}
		seen[w.Name] = true
		if w.Image == "" {
			return fmt.Errorf("deploy %s: workload %s: no image", req.Environment, w.Name)
		}
		if w.Replicas < 0 {
			return fmt.Errorf("deploy %s: workload %s: replicas %d < 0", req.Environment, w.Name, w.Replicas)
		}
		if w.Replicas == 0 {
			w.Replicas = 1 // as a Kubernetes Deployment defaults it
		}
		// The runtime takes IDs of at most 128 characters; count revision
		// and replica numbers of six digits.
		if n := len(instanceID(req.Environment, 999999, w.Name, 999999)); n > 128 {
			return fmt.Errorf("deploy %s: workload %s: environment and workload names too long for instance IDs (%d characters, at most 128)", req.Environment, w.Name, n)
		}
	}
	return nil
}

// Deploy implements runtime.Deployer.
func (c *Controller) Deploy(ctx context.Context, req runtime.DeployRequest) (runtime.Revision, error) {
	req.Workloads = append([]runtime.Workload(nil), req.Workloads...)
	if err := checkRequest(&req); err != nil {
		return runtime.Revision{}, err
	}
	if req.Reason == "" {
		req.Reason = "deploy"
	}
	// The environment is recorded (with its port) before the lock, so
	// that the lock and the in-memory state have one name to hang on.
	e, err := c.cfg.Store.Environment(ctx, req.Environment)
	if errors.Is(err, store.ErrNotFound) {
		port, perr := c.freePort()
		if perr != nil {
			return runtime.Revision{}, fmt.Errorf("deploy %s: %w", req.Environment, perr)
		}
		e, err = c.cfg.Store.CreateEnvironment(ctx, req.Environment, port)
	}
	if err != nil {
		return runtime.Revision{}, fmt.Errorf("deploy %s: %w", req.Environment, err)
	}
	en, err := c.env(e)
	if err != nil {
		return runtime.Revision{}, err
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	unlock, err := c.lock(ctx, en, true)
	if err != nil {
		return runtime.Revision{}, err
	}
	defer unlock()
	return c.deploy(ctx, en, req)
}

func (c *Controller) deploy(ctx context.Context, en *env, req runtime.DeployRequest) (runtime.Revision, error) {
	// What a deploy starts belongs to the environment, not to the caller:
	// a run step's process tracker (which ends its processes with the
	// run) must not see the services or the instances.
	ctx = proc.WithTracker(ctx, nil)
	if err := c.rolloutBusy(ctx, en.name); err != nil {
		return runtime.Revision{}, fmt.Errorf("deploy %s: %w", en.name, err)
	}
	if rec, err := c.admit(ctx, en, &req); err != nil {
		return rec, err
	}
	rec, err := c.record(ctx, en.name, req, store.RevisionDeploying, "")
	if err != nil {
		return runtime.Revision{}, fmt.Errorf("deploy %s: %w", en.name, err)
	}
	c.log.Info("deploying", "environment", en.name, "revision", rec.Number, "digest", rec.Digest, "who", req.Who)

	fail := func(msg string, cause error) (runtime.Revision, error) {
		rec.Status, rec.Message = store.RevisionFailed, msg
		if err := c.cfg.Store.SetEnvRevisionStatus(context.WithoutCancel(ctx), en.name, rec.Number, rec.Status, msg); err != nil {
			cause = errors.Join(cause, err)
		}
		return toRevision(rec), fmt.Errorf("deploy %s revision %d: %w", en.name, rec.Number, cause)
	}
	if err := c.ensureProxy(en); err != nil {
		return fail(err.Error(), err)
	}
	if err := c.ensureServices(ctx, en, req.Spec); err != nil {
		return fail(err.Error(), err)
	}
	insts, err := c.startAll(ctx, en, rec.Number, req.Workloads)
	if err != nil {
		return fail(err.Error(), err)
	}
	if err := c.waitReady(ctx, req.Workloads, insts); err != nil {
		msg := err.Error()
		if errors.Is(err, runtime.ErrNotReady) {
			// What they answered, read before they stop (stopped, they
			// answer no probe).
			msg = probeAnswers(insts)
		}
		c.stopAll(context.WithoutCancel(ctx), insts)
		return fail(msg, err)
	}
	// Switch: the proxy sends new requests to the new instances, the record
	// says so, then the old instances drain and stop.
	en.mu.Lock()
	old := en.instances
	drain := en.proxy.Switch(backends(insts))
	en.instances, en.rev = insts, rec.Number
	en.mu.Unlock()
	if err := c.cfg.Store.ServeEnvRevision(context.WithoutCancel(ctx), en.name, rec.Number); err != nil {
		c.retire(context.WithoutCancel(ctx), drain, old)
		return toRevision(rec), fmt.Errorf("deploy %s revision %d: it serves but its record failed: %w", en.name, rec.Number, err)
	}
	rec.Status, rec.Message = store.RevisionServing, ""
	c.serving(ctx, en, req.Spec)
	c.retire(context.WithoutCancel(ctx), drain, old)
	c.log.Info("serving", "environment", en.name, "revision", rec.Number)
	return toRevision(rec), nil
}

// admit puts every workload's image through admission, rewriting it to
// the admitted reference. A refusal (or an admitter that cannot decide) is
// recorded as a revision and returned with an error; nothing starts.
func (c *Controller) admit(ctx context.Context, en *env, reqp *runtime.DeployRequest) (runtime.Revision, error) {
	req := *reqp
	// Admission first: a refusal is recorded and nothing starts. An
	// admitter that cannot decide (a registry out of reach) refuses
	// nothing: the revision fails, nothing starts either.
	var refusals, failures []error
	for i := range req.Workloads {
		w := &req.Workloads[i]
		ref, err := c.cfg.Admitter.Admit(ctx, en.name, req.Spec, w.Image)
		switch {
		case errors.Is(err, runtime.ErrAdmission):
			refusals = append(refusals, fmt.Errorf("workload %s (%s): %w", w.Name, w.Image, err))
		case err != nil:
			failures = append(failures, fmt.Errorf("workload %s (%s): admission could not decide: %w", w.Name, w.Image, err))
		default:
			w.Image = ref
		}
	}
	if len(refusals)+len(failures) > 0 {
		status, why := store.RevisionRefused, errors.Join(refusals...)
		if len(failures) > 0 {
			status, why = store.RevisionFailed, errors.Join(append(refusals, failures...)...)
		}
		msg := strings.ReplaceAll(why.Error(), "\n", "; ")
		rec, err := c.record(ctx, en.name, req, status, msg)
		if err != nil {
			return runtime.Revision{}, fmt.Errorf("deploy %s: record the admission's answer (%s): %w", en.name, msg, err)
		}
		c.log.Warn("deploy not admitted", "environment", en.name, "revision", rec.Number, "status", status, "why", msg)
		return toRevision(rec), fmt.Errorf("deploy %s revision %d: %w", en.name, rec.Number, why)
	}
	return runtime.Revision{}, nil
}

// record adds the revision to the store.
func (c *Controller) record(ctx context.Context, name string, req runtime.DeployRequest, status, msg string) (*store.EnvRevision, error) {
	workloads, err := json.Marshal(req.Workloads)
	if err != nil {
		return nil, fmt.Errorf("encode workloads: %w", err)
	}
	spec, err := json.Marshal(req.Spec)
	if err != nil {
		return nil, fmt.Errorf("encode environment spec: %w", err)
	}
	rec := &store.EnvRevision{
		Environment: name, Digest: digestOf(req.Workloads[0].Image), Workloads: workloads, Spec: spec,
		RunID: req.Run, Who: req.Who, Reason: req.Reason, Status: status, Message: msg,
	}
	if err := c.cfg.Store.AddEnvRevision(ctx, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// digestOf is the digest part of an image reference ("" without one).
func digestOf(ref string) string {
	if _, d, ok := strings.Cut(ref, "@"); ok {
		return d
	}
	return ""
}

func toRevision(r *store.EnvRevision) runtime.Revision {
	rev := runtime.Revision{
		Environment: r.Environment, Number: r.Number, Digest: r.Digest, Run: r.RunID, Who: r.Who,
		Reason: r.Reason, Status: r.Status, Message: r.Message, Created: r.Created,
	}
	_ = json.Unmarshal(r.Workloads, &rev.Workloads) // written by record
	for i := range rev.Workloads {
		rev.Workloads[i].Env = maskEnv(rev.Workloads[i].Env)
	}
	return rev
}

// Masked stands for the value of every workload variable the controller
// shows: the store keeps the values (a rollback runs them again), but they
// may be secrets, and what leaves the controller reaches terminals and
// logs.
const Masked = "***"

// maskEnv returns env's KEY=VALUE pairs as KEY=***.
func maskEnv(env []string) []string {
	if env == nil {
		return nil
	}
	out := make([]string, len(env))
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		out[i] = k + "=" + Masked
	}
	return out
}

// instanceID names replica i of workload w of revision rev: stable across
// restarts of the serve process.
func instanceID(envName string, rev int, w string, i int) string {
	return fmt.Sprintf("%s-r%d-%s-%d", envName, rev, w, i)
}

// instanceDir is where an instance's files (its log among them) live.
func (c *Controller) instanceDir(envName, id string) string {
	return filepath.Join(c.cfg.Dir, envName, "instances", id)
}

// startAll starts every replica of the revision; on an error it stops
// those it started.
func (c *Controller) startAll(ctx context.Context, en *env, rev int, workloads []runtime.Workload) ([]runtime.Instance, error) {
	svcEnv, err := c.instanceEnv(ctx, en)
	if err != nil {
		return nil, err
	}
	var insts []runtime.Instance
	for _, w := range workloads {
		for i := range w.Replicas {
			id := instanceID(en.name, rev, w.Name, i)
			inst, err := c.cfg.Runtime.Start(ctx, runtime.InstanceSpec{ID: id, Workload: w, Env: svcEnv, Dir: c.instanceDir(en.name, id)})
			if err != nil {
				c.stopAll(context.WithoutCancel(ctx), insts)
				return nil, fmt.Errorf("start instance %s: %w", id, err)
			}
			insts = append(insts, inst)
		}
	}
	return insts, nil
}

// serving tells Config.ServingServices (or Config.Serving) the addresses
// of en's ready instances.
func (c *Controller) serving(ctx context.Context, en *env, spec runtime.EnvironmentSpec) {
	if c.cfg.ServingServices != nil {
		if err := c.cfg.ServingServices(ctx, en.name, spec, c.serviceTargets(ctx, en)); err != nil {
			c.log.Warn("serving hook", "environment", en.name, "err", err)
		}
		return
	}
	if c.cfg.Serving == nil {
		return
	}
	en.mu.Lock()
	insts := append([]runtime.Instance(nil), en.instances...)
	en.mu.Unlock()
	if err := c.cfg.Serving(ctx, en.name, spec, readyAddrs(insts)); err != nil {
		c.log.Warn("serving hook", "environment", en.name, "err", err)
	}
}

// instanceEnv is what every instance of en gets added to its workload's
// environment: the services' connection settings, then Config.InstanceEnv.
func (c *Controller) instanceEnv(ctx context.Context, en *env) ([]string, error) {
	vars := en.svcEnvCopy()
	if c.cfg.InstanceEnv == nil {
		return vars, nil
	}
	more, err := c.cfg.InstanceEnv(ctx, en.name)
	if err != nil {
		return nil, fmt.Errorf("environment %s: the instances' environment: %w", en.name, err)
	}
	return append(vars, more...), nil
}

func (c *Controller) stopAll(ctx context.Context, insts []runtime.Instance) {
	for _, inst := range insts {
		if err := inst.Stop(ctx); err != nil {
			c.log.Warn("stop instance", "instance", inst.ID(), "err", err)
		}
	}
}

// retire waits until the old instances have no request in flight through
// the proxy, then stops them.
func (c *Controller) retire(ctx context.Context, drain func(context.Context) error, old []runtime.Instance) {
	dctx, cancel := context.WithTimeout(ctx, drainTimeout)
	defer cancel()
	if err := drain(dctx); err != nil {
		c.log.Warn("drain", "err", err)
	}
	c.stopAll(ctx, old)
}

// drainTimeout bounds the wait for requests in flight to old instances.
const drainTimeout = 30 * time.Second

// Readiness deadline bounds.
const (
	minReadyWait = 3 * time.Second
	maxReadyWait = 10 * time.Minute
)

// readyDeadline is how long a revision gets to become ready: the longest
// initial delay plus failure threshold × period (+ timeout) of its
// readiness probes, within [minReadyWait, maxReadyWait].
func readyDeadline(workloads []runtime.Workload) time.Duration {
	d := minReadyWait
	for _, w := range workloads {
		p := w.Readiness
		if p == nil {
			continue
		}
		period, timeout, failures := p.Period, p.Timeout, p.FailureThreshold
		if period <= 0 {
			period = 10 * time.Second
		}
		if timeout <= 0 {
			timeout = time.Second
		}
		if failures <= 0 {
			failures = 3
		}
		if x := p.InitialDelay + time.Duration(failures)*period + timeout; x > d {
			d = x
		}
	}
	return min(d, maxReadyWait)
}

// waitReady waits until every instance is ready, the readiness deadline
// passes (ErrNotReady) or ctx ends.
func (c *Controller) waitReady(ctx context.Context, workloads []runtime.Workload, insts []runtime.Instance) error {
	wait := readyDeadline(workloads)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		all := true
		for _, inst := range insts {
			if !inst.Ready() {
				all = false
				break
			}
		}
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the instances to be ready: %w", ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("%w within %s: %s", runtime.ErrNotReady, wait, probeAnswers(insts))
		case <-tick.C:
		}
	}
}

// probeAnswers lists each instance's last probe answer.
func probeAnswers(insts []runtime.Instance) string {
	var parts []string
	for _, inst := range insts {
		st := inst.Status()
		probe := st.LastProbe
		if probe == "" {
			probe = "no probe answer"
		}
		parts = append(parts, fmt.Sprintf("%s %s: %s", inst.ID(), st.State, probe))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

func backends(insts []runtime.Instance) []proxy.Backend {
	out := make([]proxy.Backend, 0, len(insts))
	for _, inst := range insts {
		out = append(out, proxy.Backend{ID: inst.ID(), Addr: inst.Addr()})
	}
	return out
}
