package serve

import (
	"context"
	"net/http"
	"time"
)

// probeTimeout bounds the store's answer to a readiness probe.
const probeTimeout = 2 * time.Second

// Probes answers the orchestrator's probes without a login, on the TCP
// listener: GET /healthz is 200 while the process serves HTTP (liveness),
// GET /readyz is 200 while it is not stopping and its store answers
// within probeTimeout (readiness), 503 otherwise. Neither says more than
// "ok" or which check failed: the store's error (it names the database's
// host) goes to the server's log only.
func (a *API) Probes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		probeAnswer(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if a.stopping.Err() != nil {
			probeAnswer(w, http.StatusServiceUnavailable, "stopping")
			return
		}
		if a.runs != nil && a.runs.Store != nil {
			ctx, cancel := context.WithTimeout(r.Context(), probeTimeout)
			defer cancel()
			if err := a.runs.Store.Ping(ctx); err != nil {
				a.logger.Warn("readiness probe: the store does not answer", "err", err)
				probeAnswer(w, http.StatusServiceUnavailable, "store unavailable")
				return
			}
		}
		probeAnswer(w, http.StatusOK, "ok")
	})
	return mux
}

func probeAnswer(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}
