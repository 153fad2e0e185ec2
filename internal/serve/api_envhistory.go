package serve

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gantry-ci/gantry/internal/auth"
)

// RolloutEvent is one entry of an environment's rollout trail: who
// started, promoted, aborted, retried or undid which revision, and what
// the controller did on its own.
type RolloutEvent struct {
	ID       int64     `json:"id"`
	Revision int       `json:"revision"`
	Verb     string    `json:"verb"`
	Who      string    `json:"who,omitempty"`
	Message  string    `json:"message,omitempty"`
	At       time.Time `json:"at"`
}

func (a *API) mountEnvHistory(mux *router) {
	mux.HandleFunc("GET /api/v1/environments/{env}/rollout/events", a.withRuns(auth.ActionRead, a.getRolloutEvents))
}

// getRolloutEvents answers the environment's rollout trail, oldest
// first, from the store.
func (a *API) getRolloutEvents(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	env, ok := a.env(w, r)
	if !ok {
		return
	}
	evs, err := a.runs.Store.RolloutEvents(r.Context(), env)
	if err != nil {
		a.writeError(w, r, fmt.Sprintf("rollout events of %s", env), err)
		return
	}
	page := Page[RolloutEvent]{Items: make([]RolloutEvent, len(evs))}
	for i, e := range evs {
		page.Items[i] = RolloutEvent{ID: e.ID, Revision: e.Revision, Verb: e.Verb, Who: e.Who, Message: e.Message, At: e.At.UTC()}
	}
	writeJSON(w, http.StatusOK, page)
}
