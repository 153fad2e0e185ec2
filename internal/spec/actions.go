package spec

import (
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/yamlx"
)

// checkRollback refuses a rollback action for an environment that no
// registered handler can roll back: it would only fail at run time.
func (v *validator) checkRollback(a Action) {
	if _, declared := v.p.Environments[a.Rollback]; declared || slices.Contains(v.reg.Rollbacks, a.Rollback) {
		return
	}
	have := "none is registered"
	if len(v.reg.Rollbacks) > 0 {
		have = "handlers exist for " + strings.Join(v.reg.Rollbacks, ", ")
	}
	v.errAt(a.Pos, "no rollback handler is registered for environment %q (%s; declare it in the pipeline's environments: block)", a.Rollback, have)
}

// checkActionStep checks a `uses:` failure action as a step's `with:` is
// checked, by the kind's New. Its with: block is taken as written: ${...}
// is refused there (the engine does not expand it in failure actions).
func (v *validator) checkActionStep(a Action) {
	if a.Uses == "" {
		v.errAt(a.Pos, "a failure action with with: needs uses: (a step kind)")
		return
	}
	kind, ok := v.reg.Kinds[a.Uses]
	if !ok {
		v.errAt(a.Pos, "unknown step kind %q in on_failure (known: %s)", a.Uses, strings.Join(v.kindNames(), ", "))
		return
	}
	if n := templateNode(&a.With); n != nil {
		v.errAt(yamlx.PosOf(n), "${...} is not expanded in an on_failure action's with:; give the value as written")
		return
	}
	if _, err := kind.New(Inputs(v.p.File, &a.With, true)); err != nil {
		v.addErr(locate(err, v.p.File, a.Pos, a.Pos))
	}
}

// templateNode returns the first scalar of n holding ${, or nil.
func templateNode(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		return n
	}
	for _, c := range n.Content {
		if t := templateNode(c); t != nil {
			return t
		}
	}
	return nil
}

// checkApproval checks a stage's approval block.
func (v *validator) checkApproval(st *Stage) {
	a := st.Approval
	if a == nil {
		return
	}
	if !a.Required && (len(a.Roles) > 0 || a.Timeout != 0) {
		v.errAt(st.At["approval"], "approval lists roles or a timeout but required is false")
	}
	if a.Timeout < 0 {
		v.errAt(st.At["approval"], "approval timeout must be positive, got %s", a.Timeout)
	}
	for _, r := range a.Roles {
		if !nameRE.MatchString(r) {
			v.errAt(st.At["approval"], "approval role %q must start with a letter and hold only letters, digits, - and _", r)
		}
	}
}
