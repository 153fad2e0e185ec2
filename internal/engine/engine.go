// Package engine runs a pipeline: stages in order, the steps of a stage as
// a DAG with bounded parallelism, gates, failure actions, the step cache and
// cancellation. It records everything in a Store (the run store)
// and reports progress to an Observer; it never prints and never names a
// step kind.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/internal/artifact"
	"github.com/gantry-ci/gantry/internal/mask"
	"github.com/gantry-ci/gantry/internal/service"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/store"
)

// Notifier delivers failure notifications (`on_failure: [{notify: NAME}]`).
type Notifier interface {
	Notify(ctx context.Context, webhook string, n Notification) error
}

// Notification describes a failed stage.
type Notification struct {
	Pipeline, Stage, Message string
	RunID                    int64
	SHA, Branch              string
	FailedSteps              []string
}

// Rollbacker rolls an environment back (`on_failure: [{rollback: ENV}]`).
// Handlers are registered per environment name with WithRollbacker; a
// pipeline naming an environment without one fails validation.
type Rollbacker interface {
	Rollback(ctx context.Context, environment string) error
}

// Engine runs pipelines. Build one with New.
type Engine struct {
	kinds         map[string]step.Kind
	script        step.Kind
	services      map[string]service.Provider
	rec           RunRecorder
	resumer       RunResumer
	logStore      LogAppender
	artIndex      ArtifactIndex
	cache         CacheLookup
	approvalStore ApprovalStore
	journal       Journal
	procs         procTracking // nil: the store does not track processes
	artifacts     *artifact.Store
	log           *slog.Logger
	obs           Observer
	notifier      Notifier
	rollbacks     map[string]Rollbacker
	jobs          int
	version       string
	stateDir      string
	logLimit      int64 // bytes of a step's stored log; see WithStepLogLimit
}

// Option configures an Engine.
type Option func(*Engine) error

// WithKinds sets the step kinds `uses:` may name.
func WithKinds(kinds []step.Kind) Option {
	return func(e *Engine) error {
		for _, k := range kinds {
			if k.Name == "" || k.New == nil {
				return fmt.Errorf("step kind %q needs a name and a constructor", k.Name)
			}
			e.kinds[k.Name] = k
		}
		return nil
	}
}

// WithScriptKind sets the kind that builds `run:` steps (default: none,
// and Run refuses a pipeline with run: steps with ErrNoScriptKind). The
// engine hands it each run: step's script, shell: and inputs: as a
// step.Script for its New to decode; steps are recorded under its name.
func WithScriptKind(k step.Kind) Option {
	return func(e *Engine) error {
		if k.Name == "" || k.New == nil {
			return fmt.Errorf("script kind %q needs a name and a constructor", k.Name)
		}
		e.script = k
		return nil
	}
}

// WithServices sets the services `services:` may name.
func WithServices(s map[string]service.Provider) Option {
	return func(e *Engine) error {
		for name, p := range s {
			e.services[name] = p
		}
		return nil
	}
}

// WithLogger sets the logger for the engine's own diagnostics (default:
// discard).
func WithLogger(l *slog.Logger) Option {
	return func(e *Engine) error {
		if l == nil {
			return errors.New("nil logger")
		}
		e.log = l
		return nil
	}
}

// WithObserver receives progress events (default: none).
func WithObserver(o Observer) Option {
	return func(e *Engine) error { e.obs = o; return nil }
}

// WithJobs bounds how many steps run at once (default: number of CPUs;
// the pipeline's jobs: overrides it).
func WithJobs(n int) Option {
	return func(e *Engine) error {
		if n <= 0 {
			return fmt.Errorf("jobs must be at least 1, got %d", n)
		}
		e.jobs = n
		return nil
	}
}

// WithNotifier delivers failure notifications (default: none; a notify
// action then fails with a clear message).
func WithNotifier(n Notifier) Option {
	return func(e *Engine) error { e.notifier = n; return nil }
}

// WithRollbacker registers the handler of `rollback: ENVIRONMENT` actions
// (default: none, and pipelines with such an action fail validation).
func WithRollbacker(environment string, r Rollbacker) Option {
	return func(e *Engine) error {
		if environment == "" || r == nil {
			return errors.New("a rollback handler needs an environment name and a handler")
		}
		if _, dup := e.rollbacks[environment]; dup {
			return fmt.Errorf("a rollback handler for environment %q is registered twice", environment)
		}
		e.rollbacks[environment] = r
		return nil
	}
}

// WithVersion is gantry's version, part of every cache key.
func WithVersion(v string) Option {
	return func(e *Engine) error { e.version = v; return nil }
}

// New returns an engine that records into st, keeps artifacts in arts and
// keeps tool caches under stateDir.
func New(st Store, arts *artifact.Store, stateDir string, opts ...Option) (*Engine, error) {
	if st == nil || arts == nil {
		return nil, errors.New("engine needs a run store and an artifact store")
	}
	procs, _ := st.(procTracking)
	e := &Engine{
		kinds:         map[string]step.Kind{},
		services:      map[string]service.Provider{},
		rollbacks:     map[string]Rollbacker{},
		rec:           st,
		resumer:       st,
		logStore:      st,
		artIndex:      st,
		cache:         st,
		approvalStore: st,
		journal:       st,
		procs:         procs,
		artifacts:     arts,
		log:           slog.New(slog.DiscardHandler),
		obs:           nopObserver{},
		jobs:          runtime.NumCPU(),
		stateDir:      stateDir,
	}
	for _, o := range opts {
		if err := o(e); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Registry returns what pipeline files run by this engine may refer to.
func (e *Engine) Registry() spec.Registry {
	kinds := make([]step.Kind, 0, len(e.kinds))
	for _, k := range e.kinds {
		kinds = append(kinds, k)
	}
	names := make([]string, 0, len(e.services))
	for n := range e.services {
		names = append(names, n)
	}
	slices.Sort(names)
	reg := spec.NewRegistry(kinds, names)
	for env := range e.rollbacks {
		reg.Rollbacks = append(reg.Rollbacks, env)
	}
	slices.Sort(reg.Rollbacks)
	return reg
}

// Request says what to run.
type Request struct {
	// Dir is the workspace (the repository).
	Dir string
	Git step.Git
	// Stages, if set, runs only these stages; From and Until bound the
	// range of stages run (inclusive).
	Stages      []string
	From, Until string
	NoCache     bool
	// Trigger says how the run started ("cli", "webhook", ...).
	Trigger string
	// Actor is who started it, for the audit log (default: the OS user).
	Actor string
	// Vars set pipeline variables (vars:) for this run; a name the
	// pipeline does not declare is an error wrapping spec.ErrUnknownVar.
	Vars map[string]string
	// Command names the gantry command that ran a one-step pipeline of
	// its own ("scan", "check golangci-lint"); empty for a pipeline file.
	Command string
}

// Result is the outcome of a run.
type Result struct {
	RunID   int64
	Status  store.Status
	Message string
	// Waiting describes the approval a waiting run needs.
	Waiting *Waiting
}

// Waiting is the approval a run waits for.
type Waiting struct {
	Stage string
	// Roles may decide; empty: anyone.
	Roles []string
	// Deadline is when the approval times out; zero: never.
	Deadline time.Time
}

// ErrNoScriptKind is returned by Run and Resume for a pipeline with run:
// steps when the engine has no script kind (see WithScriptKind).
var ErrNoScriptKind = errors.New("no script kind runs run: steps")

// checkScripts refuses p when it has run: steps and the engine has no
// script kind to build them, naming the first one.
func (e *Engine) checkScripts(p *spec.Pipeline) error {
	if e.script.New != nil {
		return nil
	}
	for _, st := range p.Stages {
		for _, s := range st.Steps {
			if s.Run != "" {
				at := s.At["run"]
				return fmt.Errorf("%s:%d:%d: step %s: %w", p.File, at.Line, at.Column, spec.ID(st.Name, s.Name), ErrNoScriptKind)
			}
		}
	}
	return nil
}

// ErrStageNotFound is returned for --stage/--from/--until names that the
// pipeline lacks.
var ErrStageNotFound = errors.New("no such stage")

// Run runs p. The returned error is for problems that prevented running at
// all; a failed pipeline is a Result with Status failed. The run records
// p's file and exact bytes and req, so that Resume can continue it in
// another process.
func (e *Engine) Run(ctx context.Context, p *spec.Pipeline, req Request) (*Result, error) {
	if err := e.checkScripts(p); err != nil {
		return nil, err
	}
	selected, err := selectStages(p, req)
	if err != nil {
		return nil, err
	}
	vars, err := spec.ResolveVars(p, req.Vars)
	if err != nil {
		return nil, err
	}
	masker, secrets, err := resolveSecrets(p, req.Dir)
	if err != nil {
		return nil, err
	}
	if req.Actor == "" {
		req.Actor = currentUser()
	}
	run := &store.Run{
		Pipeline: p.Name, Dir: req.Dir, Event: req.Git.Event, Branch: req.Git.Branch,
		SHA: req.Git.SHA, BaseRef: req.Git.BaseRef, Trigger: req.Trigger,
		Status: store.StatusRunning, Started: time.Now(),
		PipelineFile: p.File, PipelineSource: p.Source,
		Request: store.RunRequest{Stages: req.Stages, From: req.From, Until: req.Until, NoCache: req.NoCache, Actor: req.Actor,
			Vars: req.Vars, Command: req.Command},
	}
	if err := e.rec.CreateRun(ctx, run); err != nil {
		return nil, fmt.Errorf("record run: %w", err)
	}
	if err := e.journal.Audit(ctx, &store.AuditEntry{Time: run.Started, Actor: req.Actor, Action: "run.start",
		Subject: fmt.Sprintf("run %d", run.ID), Detail: fmt.Sprintf("pipeline %s, %s on %s at %s", p.Name, req.Git.Event, req.Git.Branch, req.Git.SHA)}); err != nil {
		e.log.Error("audit run start", "run", run.ID, "err", err)
	}
	r := e.newRunner(p, req, run, masker, secrets)
	r.vars = vars
	return e.drive(ctx, r, selected)
}

func (e *Engine) newRunner(p *spec.Pipeline, req Request, run *store.Run, masker *mask.Masker, secrets map[string]string) *runner {
	r := &runner{
		e: e, p: p, req: req, run: run, masker: masker, secrets: secrets,
		stages: map[string]*stageState{},
		jobs:   e.jobs,
	}
	if p.Jobs > 0 {
		r.jobs = p.Jobs
	}
	return r
}

// drive walks the stages of a created (or resumed) run and records its
// end. The run's lock is held on entry and released by FinishRun.
func (e *Engine) drive(ctx context.Context, r *runner, selected []bool) (*Result, error) {
	run := r.run
	cctx := context.WithoutCancel(ctx)
	tmp, err := os.MkdirTemp("", "gantry-run-*")
	if err != nil {
		msg := fmt.Sprintf("create run temp dir: %v", err)
		if ferr := e.rec.FinishRun(cctx, run.ID, store.StatusFailed, msg, time.Now()); ferr != nil {
			e.log.Error("record end of run", "run", run.ID, "err", ferr)
		}
		return nil, fmt.Errorf("create run temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	r.tmp = tmp
	e.obs.Observe(Event{Type: RunStarted, RunID: run.ID, Time: time.Now()})

	status, msg := r.runStages(ctx, selected)

	// Record the end even when ctx was cancelled.
	msg = r.masker.Mask(msg)
	now := time.Now()
	if err := e.rec.FinishRun(cctx, run.ID, status, msg, now); err != nil {
		return nil, fmt.Errorf("record end of run %d: %w", run.ID, err)
	}
	e.obs.Observe(Event{Type: RunFinished, RunID: run.ID, Status: status, Message: msg, Time: now, Elapsed: now.Sub(run.Started)})
	return &Result{RunID: run.ID, Status: status, Message: msg, Waiting: r.waiting}, nil
}

func selectStages(p *spec.Pipeline, req Request) ([]bool, error) {
	index := map[string]int{}
	for i, st := range p.Stages {
		index[st.Name] = i
	}
	lookup := func(flag, name string) (int, error) {
		i, ok := index[name]
		if !ok {
			return 0, fmt.Errorf("%s %q: %w in pipeline %q", flag, name, ErrStageNotFound, p.Name)
		}
		return i, nil
	}
	sel := make([]bool, len(p.Stages))
	from, until := 0, len(p.Stages)-1
	if req.From != "" {
		i, err := lookup("--from", req.From)
		if err != nil {
			return nil, err
		}
		from = i
	}
	if req.Until != "" {
		i, err := lookup("--until", req.Until)
		if err != nil {
			return nil, err
		}
		until = i
	}
	only := map[int]bool{}
	for _, name := range req.Stages {
		i, err := lookup("--stage", name)
		if err != nil {
			return nil, err
		}
		only[i] = true
	}
	for i := range sel {
		sel[i] = i >= from && i <= until && (len(only) == 0 || only[i])
	}
	return sel, nil
}

// runner is the state of one run.
type runner struct {
	e       *Engine
	p       *spec.Pipeline
	req     Request
	run     *store.Run
	masker  *mask.Masker
	secrets map[string]string
	// vars are the pipeline variables' values for this run.
	vars map[string]string
	tmp  string
	jobs int

	mu     sync.Mutex
	stages map[string]*stageState

	// prior holds what a resumed run recorded before: stages and steps
	// that ended stay as they are. Nil for a new run.
	prior *priorState
	// waiting is set when the run stops for an approval.
	waiting *Waiting
	// approvals are the granted approvals, for Env.Run (under mu).
	approvals []step.ApprovalView

	fileCache
}

// stageState is what expressions and Env.Run see of a stage.
type stageState struct {
	Status store.Status
	// GatePassed is the gate's verdict, as recorded in store.Stage.GateResult.
	GatePassed *bool
	Steps      map[string]*stepState
}

type stepState struct {
	Status  store.Status
	Summary string
	// Message says why the step failed or was skipped.
	Message string
	Outputs map[string]any
}

func (r *runner) runStages(ctx context.Context, selected []bool) (store.Status, string) {
	var failedStage string
	for i := range r.p.Stages {
		st := &r.p.Stages[i]
		if ctx.Err() != nil {
			r.endStage(ctx, i, st, store.StatusCancelled, "the run was cancelled")
			continue
		}
		if !selected[i] {
			continue
		}
		if rec, ok := r.prior.endedStage(st.Name); ok {
			// Resumed: the stage ended before; its verdict stands.
			if rec.Status == store.StatusFailed {
				failedStage = st.Name
				if stops(st) {
					return r.stopRun(ctx, i, st)
				}
			}
			continue
		}
		run, reason, err := r.shouldRun(st, failedStage)
		if err != nil {
			r.failStage(ctx, i, st, err.Error())
			failedStage = st.Name
			continue
		}
		if !run {
			kind := SkipWhen
			if st.When == "" {
				kind = SkipAfterFailure
			}
			r.skipStageFor(ctx, i, st, kind, reason)
			continue
		}
		if st.Approval != nil && st.Approval.Required {
			verdict, msg, err := r.approval(ctx, i, st)
			if err != nil {
				r.failStage(ctx, i, st, err.Error())
				return store.StatusFailed, err.Error()
			}
			switch verdict {
			case store.StatusWaiting, store.StatusRejected:
				return verdict, msg
			}
		}
		status := r.runStage(ctx, i, st)
		switch status {
		case store.StatusCancelled:
			return store.StatusCancelled, "the run was cancelled"
		case store.StatusFailed:
			failedStage = st.Name
			if stops(st) {
				return r.stopRun(ctx, i, st)
			}
		}
	}
	if ctx.Err() != nil {
		return store.StatusCancelled, "the run was cancelled"
	}
	if failedStage != "" {
		return store.StatusFailed, fmt.Sprintf("stage %q failed", failedStage)
	}
	return store.StatusPassed, ""
}

// stops reports whether a failed st ends the run (`on_failure: [{stop: true}]`).
func stops(st *spec.Stage) bool {
	return slices.ContainsFunc(st.OnFailure, func(a spec.Action) bool { return a.Stop })
}

// stopRun ends the run after stage i failed with a stop action: every
// later stage is recorded as skipped, whatever its when: says.
func (r *runner) stopRun(ctx context.Context, i int, st *spec.Stage) (store.Status, string) {
	msg := fmt.Sprintf("stopped by stage %q's failure (on_failure: stop)", st.Name)
	for j := i + 1; j < len(r.p.Stages); j++ {
		r.skipStage(ctx, j, &r.p.Stages[j], msg)
	}
	return store.StatusFailed, msg
}

// shouldRun decides a stage's trigger: its when: expression, or by default
// that no earlier stage failed.
func (r *runner) shouldRun(st *spec.Stage, failedStage string) (bool, string, error) {
	if st.When == "" {
		if failedStage != "" {
			return false, fmt.Sprintf("stage %q failed", failedStage), nil
		}
		return true, "", nil
	}
	ok, err := r.evalBool(st.When, nil)
	if err != nil {
		return false, "", fmt.Errorf("when: %w", err)
	}
	if !ok {
		return false, fmt.Sprintf("when: %s is false", st.When), nil
	}
	return true, "", nil
}

// approval decides whether stage i may run: passed (approved), waiting
// (no decision yet: a request is recorded once) or rejected (refused or
// timed out). The message says why the run stops.
func (r *runner) approval(ctx context.Context, i int, st *spec.Stage) (store.Status, string, error) {
	approvals, err := r.e.approvalStore.Approvals(ctx, r.run.ID)
	if err != nil {
		return "", "", fmt.Errorf("read approvals: %w", err)
	}
	var pending *store.Approval
	for j := range approvals {
		a := &approvals[j]
		if a.Stage != st.Name {
			continue
		}
		switch a.Status {
		case store.ApprovalApproved:
			r.granted(*a)
			return store.StatusPassed, "", nil
		case store.ApprovalRejected:
			msg := rejectionMessage(a)
			r.endStage(ctx, i, st, store.StatusRejected, msg)
			return store.StatusRejected, msg, nil
		case store.ApprovalPending:
			pending = a
		}
	}
	now := time.Now()
	if pending != nil && !pending.Deadline.IsZero() && !now.Before(pending.Deadline) {
		// Timed out while nobody looked: reject it now.
		if _, err := r.e.approvalStore.ExpireApprovals(ctx, now); err != nil {
			return "", "", fmt.Errorf("expire approvals: %w", err)
		}
		pending.Status, pending.Comment = store.ApprovalRejected, fmt.Sprintf("approval timed out at %s", pending.Deadline.UTC().Format(time.RFC3339))
		msg := rejectionMessage(pending)
		r.endStage(ctx, i, st, store.StatusRejected, msg)
		return store.StatusRejected, msg, nil
	}
	if pending == nil {
		pending = &store.Approval{
			RunID: r.run.ID, Stage: st.Name, Status: store.ApprovalPending,
			RequestedRoles: joinComma(st.Approval.Roles), Requested: now,
		}
		if st.Approval.Timeout > 0 {
			pending.Deadline = now.Add(st.Approval.Timeout)
		}
		if err := r.e.approvalStore.RequestApproval(ctx, pending); err != nil {
			return "", "", fmt.Errorf("request approval: %w", err)
		}
	}
	msg := "waiting for approval by " + orAnyone(st.Approval.Roles)
	if !pending.Deadline.IsZero() {
		msg += " until " + pending.Deadline.UTC().Format(time.RFC3339)
	}
	r.endStage(ctx, i, st, store.StatusWaiting, msg)
	r.waiting = &Waiting{Stage: st.Name, Roles: st.Approval.Roles, Deadline: pending.Deadline}
	return store.StatusWaiting, fmt.Sprintf("stage %q waits for approval", st.Name), nil
}

// granted adds a granted approval to what Env.Run shows, once per stage.
func (r *runner) granted(a store.Approval) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.approvals {
		if g.Stage == a.Stage {
			return
		}
	}
	r.approvals = append(r.approvals, step.ApprovalView{Stage: a.Stage, Actor: a.Actor,
		Roles: splitComma(a.RequestedRoles), Comment: a.Comment, Decided: a.Decided})
}

func rejectionMessage(a *store.Approval) string {
	msg := fmt.Sprintf("stage %q rejected", a.Stage)
	if a.Actor != "" {
		msg += " by " + a.Actor
	}
	if a.Comment != "" {
		msg += ": " + a.Comment
	}
	return msg
}

// endStage records a stage that ends without running (waiting, rejected).
func (r *runner) endStage(ctx context.Context, i int, st *spec.Stage, status store.Status, msg string) {
	r.setStage(st.Name, status, nil)
	stage := &store.Stage{RunID: r.run.ID, Name: st.Name, Index: i, Status: status, Message: msg}
	if status.Done() {
		stage.Finished = time.Now()
	}
	if err := r.e.rec.PutStage(context.WithoutCancel(ctx), stage); err != nil {
		r.e.log.Error("record stage", "stage", st.Name, "err", err)
	}
	r.e.obs.Observe(Event{Type: StageFinished, Stage: st.Name, Status: status, Message: msg, Time: time.Now()})
}

func (r *runner) skipStage(ctx context.Context, i int, st *spec.Stage, reason string) {
	// Skipped because the run was cancelled, or an earlier stage failed;
	// a when: that is false goes through skipStageFor.
	kind := SkipAfterFailure
	if ctx.Err() != nil {
		kind = SkipCancelled
	}
	r.skipStageFor(ctx, i, st, kind, reason)
}

// skipStageFor records stage i as skipped, saying why in the event.
func (r *runner) skipStageFor(ctx context.Context, i int, st *spec.Stage, kind SkipKind, reason string) {
	r.setStage(st.Name, store.StatusSkipped, nil)
	cctx := context.WithoutCancel(ctx)
	if err := r.e.rec.PutStage(cctx, &store.Stage{RunID: r.run.ID, Name: st.Name, Index: i, Status: store.StatusSkipped, Message: reason}); err != nil {
		r.e.log.Error("record skipped stage", "stage", st.Name, "err", err)
	}
	r.e.obs.Observe(Event{Type: StageFinished, Stage: st.Name, Status: store.StatusSkipped, Message: reason, Time: time.Now(), Skip: kind})
}

func (r *runner) failStage(ctx context.Context, i int, st *spec.Stage, msg string) {
	r.setStage(st.Name, store.StatusFailed, nil)
	msg = r.masker.Mask(msg)
	now := time.Now()
	if err := r.e.rec.PutStage(context.WithoutCancel(ctx), &store.Stage{RunID: r.run.ID, Name: st.Name, Index: i, Status: store.StatusFailed, Message: msg, Started: now, Finished: now}); err != nil {
		r.e.log.Error("record failed stage", "stage", st.Name, "err", err)
	}
	r.e.obs.Observe(Event{Type: StageFinished, Stage: st.Name, Status: store.StatusFailed, Message: msg, Time: now})
}

// setStage sets a stage's status and its gate verdict (nil: none yet).
func (r *runner) setStage(name string, status store.Status, gatePassed *bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stages[name]
	if s == nil {
		s = &stageState{Steps: map[string]*stepState{}}
		r.stages[name] = s
	}
	s.Status, s.GatePassed = status, gatePassed
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}

func joinComma(xs []string) string {
	out := ""
	for i, x := range xs {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

func orAnyone(roles []string) string {
	if len(roles) == 0 {
		return "anyone"
	}
	return "role " + joinComma(roles)
}
