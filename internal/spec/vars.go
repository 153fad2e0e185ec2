package spec

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/expression"
	"github.com/gantry-ci/gantry/internal/yamlx"
)

// varNameRE is what a pipeline variable may be called.
var varNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// ErrUnknownVar is wrapped by the errors of a value given for a variable
// the pipeline does not declare in its vars: block.
var ErrUnknownVar = errors.New("unknown pipeline variable")

// UnknownVarError names a variable given a value (gantry run --var) that
// the pipeline does not declare.
type UnknownVarError struct {
	Name string
	// Declared are the variables the pipeline declares, sorted.
	Declared []string
}

func (e *UnknownVarError) Error() string {
	have := "it declares none"
	if len(e.Declared) > 0 {
		have = "it declares " + strings.Join(e.Declared, ", ")
	}
	return fmt.Sprintf("variable %q is not declared in the pipeline's vars: block (%s)", e.Name, have)
}

// Unwrap makes errors.Is(err, ErrUnknownVar) true.
func (e *UnknownVarError) Unwrap() error { return ErrUnknownVar }

// ResolveVars returns the values of p's variables for one run: each
// declared default, replaced by the value in overrides when there is one.
// A name in overrides that p does not declare is an *UnknownVarError.
func ResolveVars(p *Pipeline, overrides map[string]string) (map[string]string, error) {
	out := maps.Clone(p.Vars)
	if out == nil {
		out = map[string]string{}
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(overrides)) {
		if _, ok := p.Vars[name]; !ok {
			errs = append(errs, &UnknownVarError{Name: name, Declared: slices.Sorted(maps.Keys(p.Vars))})
			continue
		}
		out[name] = overrides[name]
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// varPositions returns the position of each key of the root's vars:
// mapping, where a bad name is reported.
func varPositions(root *yaml.Node) map[string]yamlx.Pos {
	doc := resolve(root)
	if doc != nil && doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	vars := mapValue(doc, "vars")
	if vars == nil || vars.Kind != yaml.MappingNode {
		return nil
	}
	out := map[string]yamlx.Pos{}
	for i := 0; i+1 < len(vars.Content); i += 2 {
		out[vars.Content[i].Value] = yamlx.PosOf(vars.Content[i])
	}
	return out
}

// checkVars checks the vars: block: names, and values that are plain
// text (a default is not a template).
func (v *validator) checkVars() {
	p := v.p
	for _, name := range slices.Sorted(maps.Keys(p.Vars)) {
		at, ok := p.VarsAt[name]
		if !ok {
			at = p.At["vars"]
		}
		if !varNameRE.MatchString(name) {
			v.errAt(at, "variable name %q must match [a-z_][a-z0-9_]* (lower-case letters, digits and _, not starting with a digit)", name)
		}
		if strings.Contains(p.Vars[name], "${") {
			v.errAt(at, "the default of variable %q is plain text; ${...} is not evaluated in vars:", name)
		}
	}
}

// checkVarRef returns a message when r (a reference starting with vars)
// names no declared variable.
func (v *validator) checkVarRef(r expression.Ref) string {
	if len(r) < 2 {
		return "read a variable by its name (vars.NAME)"
	}
	if len(r) > 2 {
		return fmt.Sprintf("vars.%s is a string and has no field %q", r[1], r[2])
	}
	if _, ok := v.p.Vars[r[1]]; !ok {
		declared := slices.Sorted(maps.Keys(v.p.Vars))
		if len(declared) == 0 {
			return fmt.Sprintf("variable %q is not declared: the pipeline has no vars: block", r[1])
		}
		return fmt.Sprintf("variable %q is not declared in the pipeline's vars: block (declared: %s)", r[1], strings.Join(declared, ", "))
	}
	return ""
}
