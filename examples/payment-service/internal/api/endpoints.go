package api

import (
	"net/http"
	"net/url"

	"github.com/examplepay/payment-service/internal/webhook"
)

var knownEvents = map[string]bool{
	"*": true, webhook.EventIntentCreated: true, webhook.EventIntentSucceeded: true, webhook.EventIntentFailed: true,
}

type createEndpointRequest struct {
	URL           string   `json:"url"`
	EnabledEvents []string `json:"enabled_events"`
}

// endpointResponse shows the secret; it is returned only at creation.
type endpointResponse struct {
	webhook.Endpoint
	Secret string `json:"secret"`
}

func (s *Server) createEndpoint(w http.ResponseWriter, r *http.Request) {
	var req createEndpointRequest
	if !decode(w, r, &req) {
		return
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", "url", "url must be an absolute http or https URL")
		return
	}
	if len(req.EnabledEvents) == 0 {
		req.EnabledEvents = []string{"*"}
	}
	for _, e := range req.EnabledEvents {
		if !knownEvents[e] {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", "enabled_events", "unknown event type "+e)
			return
		}
	}
	ep := webhook.Endpoint{ID: webhook.NewEndpointID(), URL: u.String(), Secret: webhook.NewSecret(), EnabledEvents: req.EnabledEvents, CreatedAt: s.now().UTC()}
	if err := s.d.Repo.CreateEndpoint(r.Context(), ep); err != nil {
		s.internalError(w, r, "create webhook endpoint", err)
		return
	}
	writeJSON(w, http.StatusCreated, endpointResponse{Endpoint: ep, Secret: ep.Secret})
}
