package engine

import (
	"errors"
	"fmt"
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
// at pipeline level.
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
		"env":      r.pipelineEnvLocked(),
		"secrets":  stringMap(r.secrets),
		"run":      map[string]any{"id": r.run.ID},
		"pipeline": map[string]any{"name": r.p.Name},
	}
	if s := r.stages[stage]; s != nil {
		env["steps"] = stageView(s)["steps"]
	}
	return env
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

func (r *runner) pipelineEnvLocked() map[string]any {
	out := make(map[string]any, len(r.p.Env))
	for k, v := range r.p.Env {
		out[k] = v
	}
	return out
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
