package engine

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/expression"
	"github.com/gantry-ci/gantry/internal/mask"
	"github.com/gantry-ci/gantry/internal/spec"
)

// resolveSecrets reads every declared secret and returns a masker hiding
// them.
func resolveSecrets(p *spec.Pipeline, dir string) (*mask.Masker, map[string]string, error) {
	vals, err := spec.ResolveSecrets(p, dir)
	if err != nil {
		return nil, nil, err
	}
	m := mask.New()
	for _, v := range vals {
		m.Add(v)
	}
	return m, vals, nil
}

// exprEnv builds what expressions see. stage is the current stage, or ""
// at pipeline level. It holds no secrets: stepEnv adds the ones a step
// lists, notifyEnv all of them for gantry's own webhooks.
func (r *runner) exprEnv(stage string) map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.req.Git
	short := g.SHA
	if len(short) > 12 {
		short = short[:12]
	}
	stages := map[string]any{}
	for name, s := range r.stages {
		stages[name] = stageView(s)
	}
	env := map[string]any{
		"event":  g.Event,
		"branch": g.Branch,
		"base":   g.BaseRef,
		"sha":    g.SHA,
		"git": map[string]any{
			"sha": g.SHA, "short_sha": short, "branch": g.Branch, "event": g.Event, "base": g.BaseRef, "time": g.Time,
		},
		"stages":   stages,
		"steps":    map[string]any{},
		"secrets":  map[string]any{},
		"run":      map[string]any{"id": r.run.ID},
		"pipeline": map[string]any{"name": r.p.Name},
		"vars":     stringMap(r.vars),
	}
	if s := r.stages[stage]; s != nil {
		env["steps"] = stageView(s)["steps"]
	}
	// A value that fails is kept as its error, which reading it returns.
	env["env"], _ = resolveEnv(r.p.Env, nil, env, true)
	return env
}

// notifyEnv is exprEnv with every secret, for the notify webhooks gantry
// itself posts to.
func (r *runner) notifyEnv(stage string) map[string]any {
	env := r.exprEnv(stage)
	env["secrets"] = stringMap(r.secrets)
	return env
}

// stepEnv evaluates the pipeline's env and then s's, each in the order
// their values read each other, and returns them as KEY=VALUE (the
// pipeline's first, so the step's win) with the expression environment
// for s's with: block: env holds both, secrets only those s lists.
func (r *runner) stepEnv(s *spec.Step, base map[string]any) ([]string, map[string]any, error) {
	env := maps.Clone(base)
	listed := map[string]any{}
	for _, sec := range s.Secrets {
		if v, ok := r.secrets[sec.Value]; ok {
			listed[sec.Value] = v
		}
	}
	env["secrets"] = listed
	pipe, err := resolveEnv(r.p.Env, nil, env, false)
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline env: %w", err)
	}
	own, err := resolveEnv(s.Env, pipe, env, false)
	if err != nil {
		return nil, nil, err
	}
	var vars []string
	for _, k := range slices.Sorted(maps.Keys(r.p.Env)) {
		vars = append(vars, k+"="+expression.Format(pipe[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		vars = append(vars, k+"="+expression.Format(own[k]))
	}
	env["env"] = own
	return vars, env, nil
}

// resolveEnv evaluates block on top of outer, each value after the values
// of block it reads (spec.EnvOrder); a value reading its own name reads
// outer's. With keepErrors, a value that fails is stored as its error and
// the rest go on; otherwise the first failure is returned.
func resolveEnv(block map[string]string, outer, exprEnv map[string]any, keepErrors bool) (map[string]any, error) {
	cur := maps.Clone(outer)
	if cur == nil {
		cur = map[string]any{}
	}
	order, err := spec.EnvOrder(block)
	if err != nil {
		if !keepErrors {
			return nil, err
		}
		for k := range block {
			cur[k] = err
		}
		return cur, err
	}
	env := maps.Clone(exprEnv)
	env["env"] = cur
	for _, k := range order {
		v, err := render(block[k], env)
		if err != nil {
			err = fmt.Errorf("env %s: %w", k, err)
			if !keepErrors {
				return nil, err
			}
			cur[k] = err
			continue
		}
		cur[k] = v
	}
	return cur, nil
}

func stageView(s *stageState) map[string]any {
	steps := map[string]any{}
	for name, st := range s.Steps {
		outputs := st.Outputs
		if outputs == nil {
			outputs = map[string]any{}
		}
		steps[name] = map[string]any{"status": string(st.Status), "summary": st.Summary, "outputs": outputs}
	}
	return map[string]any{
		"status": string(s.Status),
		"passed": s.Status == "passed",
		"steps":  steps,
	}
}

func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (r *runner) evalBool(src string, env map[string]any) (bool, error) {
	prog, err := expression.Compile(src)
	if err != nil {
		return false, err
	}
	if env == nil {
		env = r.exprEnv("")
	}
	return prog.EvalBool(env)
}

// errExprInScript refuses a run: script holding ${...}: pasted into shell
// code, a pipeline value such as a branch name would run as commands.
var errExprInScript = errors.New("${...} in run: is refused (pipeline values reach scripts only through env:)")

// scriptText returns a run: script as the shell gets it: "$${" stands for
// "${", and nothing is evaluated. spec.Parse refuses ${...} in run:; this
// is the engine's own guard for pipelines that did not come through it.
func scriptText(s string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	t, err := expression.ParseTemplate(s)
	if err != nil {
		return "", err
	}
	if t.HasExpr() {
		return "", errExprInScript
	}
	return t.EvalString(nil)
}

// render expands ${...} in s.
func render(s string, env map[string]any) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	t, err := expression.ParseTemplate(s)
	if err != nil {
		return "", err
	}
	return t.EvalString(env)
}

// resolveNode returns a copy of n with ${...} expanded in every scalar. A
// scalar that is exactly one expression takes the type of its value.
func resolveNode(n *yaml.Node, env map[string]any) (*yaml.Node, error) {
	if n == nil || n.Kind == 0 {
		return n, nil
	}
	c := *n
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return &c, nil
		}
		t, err := expression.ParseTemplate(n.Value)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		v, err := t.Eval(env)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		c.Style = 0
		switch x := v.(type) {
		case bool:
			c.Tag, c.Value = "!!bool", fmt.Sprint(x)
		case int, int64, uint64:
			c.Tag, c.Value = "!!int", fmt.Sprint(x)
		case float64:
			c.Tag, c.Value = "!!float", expression.Format(x)
		case nil:
			c.Tag, c.Value = "!!str", ""
		default:
			c.Tag, c.Value = "!!str", expression.Format(x)
		}
		return &c, nil
	case yaml.MappingNode, yaml.SequenceNode, yaml.DocumentNode:
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, child := range n.Content {
			rc, err := resolveNode(child, env)
			if err != nil {
				return nil, err
			}
			c.Content[i] = rc
		}
	}
	return &c, nil
}
