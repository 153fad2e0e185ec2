package engine

import (
	"context"
	"fmt"

	"github.com/gantry-ci/gantry/internal/mask"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/step"
)

// actionStepName is the log name of the i-th (0-based) on_failure action
// of a stage when it runs a step kind: its logs are recorded under it.
func actionStepName(i int, kind string) string {
	return fmt.Sprintf("on_failure-%d-%s", i+1, kind)
}

// runActionStep runs a `uses: KIND` failure action: the kind's step is
// built from the action's with: block (taken as written; validation
// refuses ${...} there) and run with the stage's view of the run (earlier
// steps' outputs, the pipeline's env) under the failure actions' context.
// Its output goes to the run's logs under actionStepName; the step's
// summary and outputs, masked, are returned for the failure_action event.
func (r *runner) runActionStep(ctx context.Context, st *spec.Stage, i int, a spec.Action) (map[string]any, error) {
	kind, ok := r.e.kinds[a.Uses]
	if !ok {
		return nil, fmt.Errorf("unknown step kind %q", a.Uses)
	}
	impl, err := kind.New(spec.Inputs(r.p.File, &a.With, true))
	if err != nil {
		return nil, err
	}
	name := actionStepName(i, a.Uses)
	vars, _, err := r.stepEnv(&spec.Step{Name: name, Uses: a.Uses}, r.exprEnv(st.Name))
	if err != nil {
		return nil, err
	}
	logs := r.newLogSink(ctx, st.Name, name)
	defer logs.Close()
	env := &step.Env{
		RunID: fmt.Sprint(r.run.ID), Stage: st.Name, Step: name,
		Dir: r.req.Dir, TempDir: r.tmp, StateDir: r.e.stateDir,
		Vars: vars, Stdout: logs, Log: mask.Logger(r.masker, r.e.log).With("step", spec.ID(st.Name, name)),
		Git:       r.req.Git,
		Artifacts: &artifactSink{r: r, stage: st.Name, step: name},
		Outputs:   r.stepOutputs,
		Run:       r.runView,
	}
	logs.sys("on_failure: uses " + a.Uses)
	res, err := impl.Run(ctx, env)
	if err != nil {
		logs.sys("error: " + err.Error())
	}
	if res == nil {
		return map[string]any{"step": name}, err
	}
	if err == nil && res.Summary != "" {
		logs.sys(res.Summary)
	}
	more := map[string]any{"step": name, "summary": r.masker.Mask(res.Summary)}
	if len(res.Outputs) > 0 {
		more["outputs"] = r.masker.Outputs(res.Outputs)
	}
	return more, err
}
