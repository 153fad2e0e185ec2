package serve

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gantry-ci/gantry/internal/auth"
)

// Codes of the API's authorisation errors.
const (
	CodeUnauthenticated = "unauthenticated" // auth.ErrUnauthenticated, 401
)

// authorize asks auth.Authorize whether the request's identity may do
// action, answering 401 or 403 itself when not.
func (a *API) authorize(w http.ResponseWriter, r *http.Request, action auth.Action) (auth.Identity, bool) {
	id, err := auth.Authorize(r.Context(), action)
	if err == nil {
		return id, true
	}
	var forbidden *auth.ForbiddenError
	switch {
	case errors.As(err, &forbidden):
		writeErrorBody(w, http.StatusForbidden, CodeForbidden, err.Error())
	case errors.Is(err, auth.ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", `Bearer realm="gantry"`)
		writeErrorBody(w, http.StatusUnauthorized, CodeUnauthenticated, "log in first: "+err.Error())
	default:
		a.writeError(w, r, "authorise "+string(action), err)
	}
	return auth.Identity{}, false
}

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

// allow serves h to identities whose role may do action.
func (a *API) allow(action auth.Action, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := a.authorize(w, r, action); !ok {
			return
		}
		h(w, r)
	}
}

// ErrRemoteRolloutVerb is what the rollout verbs answer (501) to a
// caller that did not come through the socket: their check of the
// approvers file runs in the CLI on the server's host, and the server
// does not yet run it itself.
var ErrRemoteRolloutVerb = fmt.Errorf("promote, abort, retry and undo are only taken on the server's host (gantry rollout over the socket): the server does not check the approvers file for them yet: %w", errors.ErrUnsupported)

// rolloutVerb serves h to the socket's identity when its role may
// operate rollouts; other callers get 501 (ErrRemoteRolloutVerb).
func (a *API) rolloutVerb(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := a.authorize(w, r, auth.ActionRollout)
		if !ok {
			return
		}
		if id.Method != auth.MethodSocket {
			a.writeError(w, r, "rollout verb", ErrRemoteRolloutVerb)
			return
		}
		h(w, r)
	}
}

// callerName is who a request acts as: over the socket, the name the
// local CLI sends (it identified the local user itself); from any other
// caller, the authenticated name, whatever the body claims.
func callerName(r *http.Request, claimed string) string {
	id, ok := auth.FromContext(r.Context())
	if !ok || id.Method == auth.MethodSocket && claimed != "" {
		return claimed
	}
	return id.Name
}
