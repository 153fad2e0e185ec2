package serve

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/store"
)

// router is a ServeMux that remembers its patterns, so tests can check
// them against the OpenAPI document.
type router struct {
	*http.ServeMux
	patterns []string
}

func newRouter() *router { return &router{ServeMux: http.NewServeMux()} }

// HandleFunc registers h for pattern.
func (m *router) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.HandleFunc(pattern, h)
}

// Handle registers h for pattern.
func (m *router) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

// ErrRemoteRolloutVerb is what the rollout verbs answer (501) to a
// caller that did not come through the socket when the server has no
// run history to read the roles guarding the environment from.
var ErrRemoteRolloutVerb = fmt.Errorf("this gantry serve serves no run history, so it cannot check who may operate rollouts: promote, abort, retry and undo are only taken on the server's host: %w", errors.ErrUnsupported)

// rolloutVerb serves h to identities whose role may operate rollouts.
// The socket's peer (the CLI on the server's host) checked the
// approvers file itself; any other caller is checked here, as gantry
// rollout checks it (checkRolloutRoles).
func (a *API) rolloutVerb(verb string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := a.authorize(w, r, auth.ActionRollout)
		if !ok {
			return
		}
		if id.Method != auth.MethodSocket {
			if a.runs == nil {
				a.writeError(w, r, "rollout "+verb, ErrRemoteRolloutVerb)
				return
			}
			env, ok := a.env(w, r)
			if !ok {
				return
			}
			if !a.checkRolloutRoles(w, r, id, env, verb) {
				return
			}
		}
		h(w, r)
	}
}

// checkRolloutRoles checks that id holds one of the roles guarding env:
// the approval roles of the stages with a blue-green step on env in the
// pipeline of the run that deployed the rollout's desired revision (the
// pipeline bytes recorded with the run), held according to the approvers
// file of that run's repository's default branch (or
// STATE_DIR/approvers.yaml). Without such roles the server role
// suffices. Each outcome is audited, as gantry rollout does; a refusal
// answers 403 not_approver.
func (a *API) checkRolloutRoles(w http.ResponseWriter, r *http.Request, id auth.Identity, env, verb string) bool {
	ctx := r.Context()
	st := a.runs.Store
	subject := "environment " + env + ": rollout " + verb
	via := string(id.Method)
	var roles []string
	var from, repo string
	ro, err := st.Rollout(ctx, env)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// No rollout: the roller answers no_rollout.
	case err != nil:
		a.writeError(w, r, "rollout of "+env, err)
		return false
	default:
		rev, err := st.EnvRevision(ctx, env, ro.Desired)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			a.writeError(w, r, "revision of "+env, err)
			return false
		}
		if rev.RunID != 0 {
			run, err := st.GetRun(ctx, rev.RunID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				a.writeError(w, r, "run of "+env, err)
				return false
			}
			if run != nil && len(run.PipelineSource) > 0 {
				file := cmpOr(run.PipelineFile, "the pipeline of run "+strconv.FormatInt(run.ID, 10))
				if roles, from, err = engine.RolloutRoles(run.PipelineSource, file, env); err != nil {
					writeErrorBody(w, http.StatusUnprocessableEntity, CodeInvalidRequest, err.Error())
					return false
				}
				repo = run.Dir
			}
		}
	}
	if len(roles) == 0 {
		if err := st.Audit(ctx, &store.AuditEntry{Actor: id.Name, Action: "rollout." + verb, Subject: subject,
			Detail: fmt.Sprintf("by %s (%s); no role guards %s", id.Name, via, env)}); err != nil {
			a.writeError(w, r, "audit", err)
			return false
		}
		return true
	}
	approvers, source, err := engine.LoadApprovers(ctx, repo, a.runs.StateDir)
	if errors.Is(err, engine.ErrNoDefaultBranch) {
		approvers, source, err = nil, err.Error(), nil
	}
	if err != nil {
		writeErrorBody(w, http.StatusUnprocessableEntity, CodeInvalidRequest, fmt.Sprintf("read the approvers file for %s: %v", env, err))
		return false
	}
	if !approvers.Holds(id.Name, roles) {
		why := fmt.Sprintf("%s (%s) holds none of the roles %s (from %s) in %s", id.Name, via, strings.Join(roles, ", "), from, source)
		if err := st.Audit(ctx, &store.AuditEntry{Actor: id.Name, Action: "rollout.refused", Subject: subject, Detail: why}); err != nil {
			a.writeError(w, r, "audit", err)
			return false
		}
		writeErrorBody(w, http.StatusForbidden, CodeNotApprover, fmt.Sprintf("rollout %s of %s: %v: %s", verb, env, engine.ErrForbidden, why))
		return false
	}
	detail := fmt.Sprintf("by %s (%s), roles %s, from %s in %s", id.Name, via, strings.Join(approvers.RolesOf(id.Name), ","), from, source)
	if err := st.Audit(ctx, &store.AuditEntry{Actor: id.Name, Action: "rollout." + verb, Subject: subject, Detail: detail}); err != nil {
		a.writeError(w, r, "audit", err)
		return false
	}
	return true
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
