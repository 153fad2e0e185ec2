package spec

import (
	"slices"
	"strings"
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
