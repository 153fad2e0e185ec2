package serve

import (
	"errors"
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
