package serve

import (
	"net/http"

	"github.com/gantry-ci/gantry/internal/auth"

	"github.com/gantry-ci/gantry/docs"
)

// getOpenAPI answers the OpenAPI 3.1 document of this API. It describes
// the API; reading it is reading.
func (a *API) getOpenAPI(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.authorize(w, r, auth.ActionRead); !ok {
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(docs.OpenAPI)
}
