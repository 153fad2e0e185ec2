package spec

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/expression"
	"github.com/gantry-ci/gantry/internal/yamlx"
)

// EnvCycleError is an env block whose values read each other in a circle.
type EnvCycleError struct {
	Keys []string // the cycle, its first key repeated at the end
}

func (e *EnvCycleError) Error() string {
	return "env values read each other in a cycle: " + strings.Join(e.Keys, " -> ")
}

// EnvOrder returns the keys of an env block in an order where every value
// comes after the values of the same block it reads as env.NAME. A value
// reading its own name reads the env it overlays (the pipeline's, for a
// step's env).
func EnvOrder(block map[string]string) ([]string, error) {
	keys := make([]string, 0, len(block))
	for k := range block {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var order, stack []string
	var visit func(k string) error
	visit = func(k string) error {
		color[k] = grey
		stack = append(stack, k)
		for _, d := range envDeps(block, k) {
			switch color[d] {
			case grey:
				start := slices.Index(stack, d)
				return &EnvCycleError{Keys: append(slices.Clone(stack[start:]), d)}
			case white:
				if err := visit(d); err != nil {
					return err
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[k] = black
		order = append(order, k)
		return nil
	}
	for _, k := range keys {
		if color[k] == white {
			if err := visit(k); err != nil {
				return nil, err
			}
		}
	}
	return order, nil
}

// envDeps returns the other keys of block that block[k] reads, sorted.
func envDeps(block map[string]string, k string) []string {
	var deps []string
	for _, r := range envRefs(block[k]) {
		if len(r) >= 2 && r[1] != k {
			if _, ok := block[r[1]]; ok && !slices.Contains(deps, r[1]) {
				deps = append(deps, r[1])
			}
		}
	}
	sort.Strings(deps)
	return deps
}

// envRefs returns the env.* references of a template; a template that
// does not parse has none (validation reports it elsewhere).
func envRefs(s string) []expression.Ref {
	if !strings.Contains(s, "${") {
		return nil
	}
	t, err := expression.ParseTemplate(s)
	if err != nil {
		return nil
	}
	var out []expression.Ref
	for _, prog := range t.Programs() {
		refs, err := expression.Refs(prog.String())
		if err != nil {
			continue
		}
		for _, r := range refs {
			if r[0] == "env" {
				out = append(out, r)
			}
		}
	}
	return out
}

// checkEnvBlock validates one env block: names, templates, and the order
// its values read each other in.
func (v *validator) checkEnvBlock(block map[string]string, at map[string]yamlx.Pos, fallback yamlx.Pos, sc scope) {
	keys := make([]string, 0, len(block))
	for k := range block {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	posOf := func(k string) yamlx.Pos {
		if p, ok := at[k]; ok {
			return p
		}
		return fallback
	}
	for _, k := range keys {
		if !envNameRE.MatchString(k) {
			v.errAt(posOf(k), "env name %q is not a valid variable name", k)
		}
		ksc := sc
		ksc.key = k
		v.checkTemplate(block[k], posOf(k), ksc)
	}
	if _, err := EnvOrder(block); err != nil {
		var ce *EnvCycleError
		if errors.As(err, &ce) {
			var where []string
			for _, k := range ce.Keys[:len(ce.Keys)-1] {
				p := posOf(k)
				where = append(where, fmt.Sprintf("%s at %d:%d", k, p.Line, p.Column))
			}
			v.errAt(posOf(ce.Keys[0]), "%v (%s)", err, strings.Join(where, ", "))
		}
	}
}

// checkEnvRef checks env.NAME against the env the expression sees: a
// step's with: and env: see the pipeline's env with the step's on top;
// everything else sees the pipeline's.
func (v *validator) checkEnvRef(r expression.Ref, sc scope) string {
	if len(r) < 2 {
		return ""
	}
	name := r[1]
	_, inPipeline := v.p.Env[name]
	switch sc.field {
	case fieldPipelineEnv:
		if name == sc.key {
			return fmt.Sprintf("env.%s reads itself", name)
		}
		if !inPipeline {
			return fmt.Sprintf("env.%s is not set (the pipeline's env has no %s)", name, name)
		}
	case fieldStepEnv, fieldWith:
		_, inStep := sc.step.Env[name]
		if name == sc.key && sc.field == fieldStepEnv {
			inStep = false // reads the pipeline's value it overrides
		}
		if !inPipeline && !inStep {
			if name == sc.key {
				return fmt.Sprintf("env.%s reads itself, and the pipeline's env has no %s", name, name)
			}
			return fmt.Sprintf("env.%s is not set (neither the pipeline's env nor step %q's has %s)", name, sc.step.Name, name)
		}
	default:
		if !inPipeline {
			return fmt.Sprintf("env.%s is not set (the pipeline's env has no %s)", name, name)
		}
	}
	return ""
}

// envPositions returns the position of each value of the env mapping of
// n, a mapping node holding an env: key.
func envPositions(n *yaml.Node) map[string]yamlx.Pos {
	env := mapValue(n, "env")
	if env == nil || env.Kind != yaml.MappingNode {
		return nil
	}
	out := map[string]yamlx.Pos{}
	for i := 0; i+1 < len(env.Content); i += 2 {
		out[env.Content[i].Value] = yamlx.PosOf(resolve(env.Content[i+1]))
	}
	return out
}

// fillEnvPositions records the env value positions of the pipeline and of
// every step from the document root.
func fillEnvPositions(p *Pipeline, root *yaml.Node) {
	p.EnvAt = envPositions(root)
	stages := mapValue(root, "stages")
	if stages == nil || stages.Kind != yaml.SequenceNode {
		return
	}
	for i, sn := range stages.Content {
		if i >= len(p.Stages) {
			break
		}
		steps := mapValue(resolve(sn), "steps")
		if steps == nil || steps.Kind != yaml.SequenceNode {
			continue
		}
		for j, stn := range steps.Content {
			if j < len(p.Stages[i].Steps) {
				p.Stages[i].Steps[j].EnvAt = envPositions(resolve(stn))
			}
		}
	}
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return resolve(n.Content[i+1])
		}
	}
	return nil
}
