package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/artifact"
	"github.com/gantry-ci/gantry/internal/mask"
	"github.com/gantry-ci/gantry/internal/service"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/store"
)

// serviceStopTimeout bounds tearing a service down.
const serviceStopTimeout = 30 * time.Second

func (r *runner) skipStep(ctx context.Context, st *spec.Stage, s *spec.Step, status store.Status, reason string) store.Status {
	now := time.Now()
	rec := &store.Step{RunID: r.run.ID, Stage: st.Name, Name: s.Name, Kind: r.e.kindOf(s), Status: status, Message: reason, Started: now, Finished: now}
	if err := r.e.rec.PutStep(context.WithoutCancel(ctx), rec); err != nil {
		r.e.log.Error("record step", "step", spec.ID(st.Name, s.Name), "err", err)
	}
	r.setStep(st.Name, s.Name, &stepState{Status: status, Message: reason})
	r.e.obs.Observe(Event{Type: StepFinished, Stage: st.Name, Step: s.Name, Status: status, Message: reason, Time: now})
	return status
}

// kindOf is the name s is recorded under: its `uses:`, or the script
// kind's name for a run: step.
func (e *Engine) kindOf(s *spec.Step) string {
	if s.Uses != "" {
		return s.Uses
	}
	return e.script.Name
}

func (r *runner) setStep(stage, name string, st *stepState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stages[stage]
	if s == nil {
		s = &stageState{Steps: map[string]*stepState{}}
		r.stages[stage] = s
	}
	s.Steps[name] = st
}

func (r *runner) stepOutputs(stage, name string) (map[string]any, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stages[stage]
	if s == nil || s.Steps[name] == nil {
		return nil, false
	}
	return s.Steps[name].Outputs, true
}

// runStep runs one step with its services, cache, timeout and retries, and
// records the outcome.
func (r *runner) runStep(ctx context.Context, st *spec.Stage, s *spec.Step) store.Status {
	rec := &store.Step{RunID: r.run.ID, Stage: st.Name, Name: s.Name, Kind: r.e.kindOf(s), Status: store.StatusRunning, Attempt: 1, Started: time.Now()}
	if err := r.e.rec.PutStep(ctx, rec); err != nil {
		r.e.log.Error("record step", "step", spec.ID(st.Name, s.Name), "err", err)
	}
	r.setStep(st.Name, s.Name, &stepState{Status: store.StatusRunning})
	r.e.obs.Observe(Event{Type: StepStarted, Stage: st.Name, Step: s.Name, Time: rec.Started})

	logs := r.newLogSink(ctx, st.Name, s.Name)
	res, err := r.execute(ctx, st, s, rec, logs)
	if err != nil {
		logs.sys("error: " + err.Error())
	}
	logs.Close()

	rec.Finished = time.Now()
	switch {
	case rec.Status == store.StatusCached || rec.Status == store.StatusSkipped:
		// Decided inside execute.
	case err == nil:
		rec.Status = store.StatusPassed
	case ctx.Err() != nil:
		rec.Status = store.StatusCancelled
	default:
		rec.Status = store.StatusFailed
	}
	if err != nil {
		rec.Message = r.masker.Mask(err.Error())
		rec.CacheKey = ""
	}
	if res != nil {
		rec.Summary = r.masker.Mask(res.Summary)
		rec.Outputs = r.masker.Outputs(res.Outputs)
	}
	if rec.Status == store.StatusSkipped && rec.Message == "" {
		rec.Message = rec.Summary
	}
	if perr := r.e.rec.PutStep(context.WithoutCancel(ctx), rec); perr != nil {
		r.e.log.Error("record step", "step", spec.ID(st.Name, s.Name), "err", perr)
	}
	r.setStep(st.Name, s.Name, &stepState{Status: rec.Status, Summary: rec.Summary, Message: rec.Message, Outputs: rec.Outputs})
	msg := rec.Message
	if msg == "" {
		msg = rec.Summary
	}
	r.e.obs.Observe(Event{Type: StepFinished, Stage: st.Name, Step: s.Name, Status: rec.Status, Message: msg, Time: rec.Finished, Elapsed: rec.Finished.Sub(rec.Started)})
	return rec.Status
}

// execute does the work of runStep; rec.Status is set to cached or skipped
// when the step did not run.
func (r *runner) execute(ctx context.Context, st *spec.Stage, s *spec.Step, rec *store.Step, logs *logSink) (*step.Result, error) {
	ctx = r.trackProcs(ctx, st.Name, s.Name)
	env := r.exprEnv(st.Name)
	if s.If != "" {
		ok, err := r.evalBool(s.If, env)
		if err != nil {
			return nil, fmt.Errorf("if: %w", err)
		}
		if !ok {
			rec.Status = store.StatusSkipped
			return &step.Result{Summary: "if: " + s.If + " is false"}, nil
		}
	}
	rs, err := r.resolve(s, env)
	if err != nil {
		return nil, err
	}
	impl, err := r.build(s, rs)
	if err != nil {
		return nil, err
	}
	vars := r.stepVars(st, s, rs)
	senv := &step.Env{
		RunID: fmt.Sprint(r.run.ID), Stage: st.Name, Step: s.Name,
		Dir: r.req.Dir, TempDir: r.tmp, StateDir: r.e.stateDir,
		Vars: vars, Stdout: logs, Log: mask.Logger(r.masker, r.e.log).With("step", spec.ID(st.Name, s.Name)),
		Git:       r.req.Git,
		Artifacts: &artifactSink{r: r, stage: st.Name, step: s.Name},
		Outputs:   r.stepOutputs,
		Run:       r.runView,
	}
	senv.PipelineFile, senv.PipelineSource = r.p.File, r.p.Source

	if res, ok := r.fromCache(ctx, s, rs, impl, senv, rec, logs); ok {
		return res, nil
	}

	stop, err := r.startServices(ctx, s, senv, logs)
	defer stop()
	if err != nil {
		return nil, err
	}

	if s.Run != "" {
		logs.sys("$ " + firstLine(s.Run))
	}
	var res *step.Result
	for attempt := 1; ; attempt++ {
		rec.Attempt = attempt
		res, err = r.attempt(ctx, s, impl, senv)
		if err == nil || ctx.Err() != nil || attempt > s.Retries {
			break
		}
		logs.sys(fmt.Sprintf("attempt %d failed: %v; retrying (%d left)", attempt, err, s.Retries-attempt+1))
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt) * time.Second):
		}
	}
	if cerr := r.collectArtifacts(ctx, st, s); cerr != nil {
		if err == nil {
			err = cerr
		} else {
			logs.sys("artifacts: " + cerr.Error())
		}
	}
	return res, err
}

func (r *runner) attempt(ctx context.Context, s *spec.Step, impl step.Step, env *step.Env) (*step.Result, error) {
	actx := ctx
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	res, err := impl.Run(actx, env)
	if err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		return res, fmt.Errorf("timed out after %s", s.Timeout)
	}
	return res, err
}

// resolvedStep is a step's configuration with every ${...} evaluated,
// computed once and used both to build the step and for its cache key.
type resolvedStep struct {
	script string     // run steps
	with   *yaml.Node // uses steps
	env    []string   // KEY=VALUE of the pipeline's, then the step's env
}

// resolve evaluates the expressions in s's script, with: block and env.
func (r *runner) resolve(s *spec.Step, env map[string]any) (*resolvedStep, error) {
	rs := &resolvedStep{}
	var err error
	if rs.env, env, err = r.stepEnv(s, env); err != nil {
		return nil, err
	}
	if s.Run != "" {
		if rs.script, err = scriptText(s.Run); err != nil {
			return nil, fmt.Errorf("run: %w", err)
		}
	} else if rs.with, err = resolveNode(&s.With, env); err != nil {
		return nil, fmt.Errorf("with: %w", err)
	}
	return rs, nil
}

// build makes the step.Step for s from its resolved configuration.
func (r *runner) build(s *spec.Step, rs *resolvedStep) (step.Step, error) {
	if s.Run != "" {
		return r.e.script.New(spec.Inputs(r.p.File, scriptNode(s, rs.script), true))
	}
	kind, ok := r.e.kinds[s.Uses]
	if !ok {
		return nil, fmt.Errorf("unknown step kind %q", s.Uses)
	}
	in := spec.Inputs(r.p.File, rs.with, true)
	st, err := kind.New(in)
	if err != nil {
		return nil, err
	}
	// Paths that held ${...} are checked now that they are resolved.
	if errs := spec.CheckPaths(r.req.Dir, st, in); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return st, nil
}

// gateOf is the evidence gate s's kind attests, or "".
func (e *Engine) gateOf(s *spec.Step) string {
	if s.Uses != "" {
		return e.kinds[s.Uses].Gate
	}
	return e.script.Gate
}

// scriptNode is the inputs the script kind decodes into a step.Script:
// a mapping of run (the resolved script), shell and inputs, located at the
// step's run: so that the kind's errors point there.
func scriptNode(s *spec.Step, script string) *yaml.Node {
	at := s.At["run"]
	str := func(v string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v, Line: at.Line, Column: at.Column}
	}
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: at.Line, Column: at.Column, Content: []*yaml.Node{
		str("run"), str(script),
		str("shell"), str(s.Shell),
	}}
	if len(s.Inputs) > 0 {
		inputs := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: at.Line, Column: at.Column}
		for _, in := range s.Inputs {
			inputs.Content = append(inputs.Content, str(in))
		}
		n.Content = append(n.Content, str("inputs"), inputs)
	}
	return n
}

// stepVars is the environment of the step's processes: gantry's own
// environment without the variables that secrets are read from, then
// gantry's variables, the env blocks and the secrets the step lists.
func (r *runner) stepVars(st *spec.Stage, s *spec.Step, rs *resolvedStep) []string {
	sources := map[string]bool{}
	for _, sec := range r.p.Secrets {
		if sec.Env != "" {
			sources[sec.Env] = true
		}
	}
	var vars []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !sources[name] {
			vars = append(vars, kv)
		}
	}
	add := func(k, v string) { vars = append(vars, k+"="+v) }
	g := r.req.Git
	add("CI", "true")
	add("GANTRY", "true")
	add("GANTRY_RUN_ID", fmt.Sprint(r.run.ID))
	add("GANTRY_PIPELINE", r.p.Name)
	add("GANTRY_STAGE", st.Name)
	add("GANTRY_STEP", s.Name)
	add("GANTRY_SHA", g.SHA)
	add("GANTRY_BRANCH", g.Branch)
	add("GANTRY_EVENT", g.Event)
	add("GANTRY_WORKSPACE", r.req.Dir)
	vars = append(vars, rs.env...)
	for _, sec := range s.Secrets {
		add(sec.Value, r.secrets[sec.Value])
	}
	return vars
}

// startServices starts the step's services and adds their settings to
// env.Vars. The returned stop function always tears down what started.
func (r *runner) startServices(ctx context.Context, s *spec.Step, env *step.Env, logs *logSink) (func(), error) {
	var running []service.Instance
	stop := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), serviceStopTimeout)
		defer cancel()
		for i := len(running) - 1; i >= 0; i-- {
			if err := running[i].Stop(sctx); err != nil {
				logs.sys("stop service: " + err.Error())
			}
		}
	}
	for _, name := range s.Services {
		p, ok := r.e.services[name.Value]
		if !ok {
			return stop, fmt.Errorf("unknown service %q", name.Value)
		}
		dir, err := os.MkdirTemp(r.tmp, "svc-"+name.Value+"-*")
		if err != nil {
			return stop, fmt.Errorf("service %s: %w", name.Value, err)
		}
		logs.sys("starting service " + name.Value)
		started := time.Now()
		inst, err := p.Start(ctx, dir)
		if err != nil {
			return stop, fmt.Errorf("start service %s: %w", name.Value, err)
		}
		running = append(running, inst)
		keys := make([]string, 0)
		svcEnv := inst.Env()
		for k := range svcEnv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env.Vars = append(env.Vars, k+"="+svcEnv[k])
		}
		logs.sys(fmt.Sprintf("service %s ready in %s (%v)", name.Value, time.Since(started).Round(time.Millisecond), keys))
	}
	return stop, nil
}

// collectArtifacts stores the files the step declared.
func (r *runner) collectArtifacts(ctx context.Context, st *spec.Stage, s *spec.Step) error {
	if len(s.Artifacts) == 0 {
		return nil
	}
	files, err := artifact.Collect(r.req.Dir, s.Artifacts)
	if err != nil {
		return err
	}
	sink := &artifactSink{r: r, stage: st.Name, step: s.Name}
	for _, f := range files {
		rel, err := filepath.Rel(r.req.Dir, f)
		if err != nil {
			return err
		}
		if err := sink.Put(context.WithoutCancel(ctx), filepath.ToSlash(rel), f, ""); err != nil {
			return err
		}
	}
	return nil
}

func maskOutputs(maskFn func(string) string, in map[string]any) map[string]any {
	if in == nil {
		return nil
	}
	out := make(map[string]any, len(in))
	for k, v := range in {
		out[k] = maskValue(maskFn, v)
	}
	return out
}

func maskValue(maskFn func(string) string, v any) any {
	switch x := v.(type) {
	case string:
		return maskFn(x)
	case map[string]any:
		return maskOutputs(maskFn, x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = maskValue(maskFn, e)
		}
		return out
	case []string:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = maskFn(e)
		}
		return out
	}
	return v
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i] + " …"
		}
	}
	return s
}
