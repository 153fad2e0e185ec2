package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/store"
)

// maxSubmitBody bounds a submission's body.
const maxSubmitBody = 1 << 20

// SubmitRequest is the body of POST /api/v1/runs.
type SubmitRequest struct {
	// Repo is a repository the server is configured for (its clone URL),
	// or, from the server's own user on its machine (the Unix socket),
	// an absolute local path when the server allows local repositories.
	Repo string `json:"repo"`
	// Ref is the branch ("main" or "refs/heads/main").
	Ref string `json:"ref"`
	SHA string `json:"sha"`
	// Event is push (default) or pull_request; Base the target branch of
	// a pull request.
	Event string            `json:"event,omitempty"`
	Base  string            `json:"base,omitempty"`
	Vars  map[string]string `json:"vars,omitempty"`
}

// Item is a queue item as the API answers it.
type Item struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	State  string `json:"state"`
	Repo   string `json:"repo"`
	Event  string `json:"event"`
	Branch string `json:"branch"`
	Base   string `json:"base,omitempty"`
	SHA    string `json:"sha"`
	// RunID is the run executing the item, 0 until it started.
	RunID    int64      `json:"runId"`
	Trigger  string     `json:"trigger"`
	Actor    string     `json:"actor,omitempty"`
	ExitCode int        `json:"exitCode"`
	Message  string     `json:"message,omitempty"`
	Created  time.Time  `json:"created"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
}

// ItemOf is the API view of it.
func ItemOf(it store.QueueItem) Item {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		u := t.UTC()
		return &u
	}
	return Item{ID: it.ID, Kind: it.Kind, State: string(it.State), Repo: it.Repo, Event: it.Event, Branch: it.Branch, Base: it.Base,
		SHA: it.SHA, RunID: it.RunID, Trigger: it.Trigger, Actor: it.Actor, ExitCode: it.ExitCode, Message: it.Message,
		Created: it.Created.UTC(), Started: opt(it.Started), Finished: opt(it.Finished)}
}

// HTTP serves the queue's API endpoints (mounted in serve's API):
//
//	POST /api/v1/runs              submit a run (auth.ActionRunCreate), 202 with its Item
//	POST /api/v1/runs/{id}/cancel  cancel a run or queue item (auth.ActionRunCancel), 202
//	GET  /api/v1/queue/{id}        a queue item (auth.ActionRead)
//	POST /api/v1/queue/{id}/retry  queue an interrupted item again (auth.ActionRunRetry), 202
//
// repos are the configured repositories (clone URLs) a submission may
// name.
func (q *Queue) HTTP(repos []string, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &httpAPI{q: q, repos: repos, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/runs", h.submit)
	mux.HandleFunc("POST /api/v1/runs/{id}/cancel", h.cancel)
	mux.HandleFunc("GET /api/v1/queue/{id}", h.item)
	mux.HandleFunc("POST /api/v1/queue/{id}/retry", h.retry)
	return mux
}

type httpAPI struct {
	q     *Queue
	repos []string
	log   *slog.Logger
}

func (h *httpAPI) authorize(w http.ResponseWriter, r *http.Request, a auth.Action) (auth.Identity, bool) {
	id, err := auth.Authorize(r.Context(), a)
	if err == nil {
		return id, true
	}
	var forbidden *auth.ForbiddenError
	switch {
	case errors.As(err, &forbidden):
		writeError(w, http.StatusForbidden, "forbidden", err.Error())
	case errors.Is(err, auth.ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", `Bearer realm="gantry"`)
		writeError(w, http.StatusUnauthorized, "unauthenticated", "log in first: "+err.Error())
	default:
		writeError(w, http.StatusInternalServerError, "internal", "authorise: "+err.Error())
	}
	return auth.Identity{}, false
}

func (h *httpAPI) submit(w http.ResponseWriter, r *http.Request) {
	id, ok := h.authorize(w, r, auth.ActionRunCreate)
	if !ok {
		return
	}
	var req SubmitRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSubmitBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the JSON value")
		}
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("run request: body larger than %d bytes", tooLarge.Limit))
		return
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "bad_request", "decode the run request: empty body")
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "bad_request", "decode the run request: "+err.Error())
		return
	}
	if !h.allowed(req.Repo, id) {
		writeError(w, http.StatusForbidden, "forbidden", "repository "+clip(req.Repo)+" is not one this server builds (local paths: only from the server's own user over its socket, with --allow-local-repos)")
		return
	}
	branch := req.Ref
	if b, ok := strings.CutPrefix(req.Ref, "refs/heads/"); ok {
		branch = b
	}
	event := req.Event
	if event == "" {
		event = "push"
	}
	limit, err := h.q.concurrency(r.Context(), req.Repo)
	if err != nil {
		h.log.Error("read the default branch's pipeline", "repo", clip(req.Repo), "err", err)
		writeError(w, http.StatusBadGateway, "fetch_failed", "could not read on.concurrency of the default branch's pipeline file: "+err.Error())
		return
	}
	it, err := h.q.Submit(r.Context(), Request{Repo: req.Repo, Event: event, Branch: branch, Base: req.Base, SHA: req.SHA, Vars: req.Vars,
		Trigger: "api", Actor: id.Name, CancelPrevious: true, Concurrency: limit})
	if errors.Is(err, ErrInvalid) {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if err != nil {
		h.log.Error("queue a submitted run", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "queue the run: "+err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, ItemOf(it))
}

// concurrency is on.concurrency of the default branch's pipeline file
// of repo, when repo is a configured repository whose default branch the
// queue knows; 0 (no limit) for other repositories (local paths
// submitted over the socket) and when the default branch has no pipeline
// file.
func (q *Queue) concurrency(ctx context.Context, repo string) (int, error) {
	var url, branch string
	for u, b := range q.cfg.DefaultBranches {
		if SameRepo(u, repo) {
			url, branch = u, b
		}
	}
	if url == "" {
		return 0, nil
	}
	src, err := q.cfg.Fetcher.DefaultPipeline(ctx, url, branch, spec.DefaultPath)
	if errors.Is(err, ErrNoPipeline) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var doc struct {
		On spec.Triggers `yaml:"on"`
	}
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return 0, fmt.Errorf("%s on %s does not parse: %w", spec.DefaultPath, branch, err)
	}
	return doc.On.Limit(), nil
}

// allowed: a configured repository, or a local path from the socket's
// owner when local repositories are allowed.
func (h *httpAPI) allowed(repo string, id auth.Identity) bool {
	for _, r := range h.repos {
		if SameRepo(r, repo) {
			return true
		}
	}
	return h.q.cfg.Fetcher.AllowLocal && id.Method == auth.MethodSocket && CheckRepo(repo, true) == nil
}

func (h *httpAPI) cancel(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.authorize(w, r, auth.ActionRunCancel); !ok {
		return
	}
	err := h.q.Cancel(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no run "+clip(r.PathValue("id"))+" in this server's queue")
	case errors.Is(err, ErrNotCancellable):
		writeError(w, http.StatusConflict, "not_cancellable", err.Error())
	case err != nil:
		h.log.Error("cancel a run", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "cancel: "+err.Error())
	default:
		writeJSON(w, http.StatusAccepted, map[string]bool{"cancelling": true})
	}
}

func (h *httpAPI) retry(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.authorize(w, r, auth.ActionRunRetry); !ok {
		return
	}
	id := r.PathValue("id")
	err := h.q.Retry(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusConflict, "not_retryable", "queue item "+clip(id)+" does not exist or is not interrupted")
	case err != nil:
		h.log.Error("retry a run", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "retry: "+err.Error())
	default:
		it, err := h.q.Item(r.Context(), id)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal", err.Error())
			return
		}
		writeJSON(w, http.StatusAccepted, ItemOf(it))
	}
}

func (h *httpAPI) item(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.authorize(w, r, auth.ActionRead); !ok {
		return
	}
	it, err := h.q.Item(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	default:
		writeJSON(w, http.StatusOK, ItemOf(it))
	}
}

// writeError answers in the serve API's error shape
// ({"error": {"code", "message"}}).
func writeError(w http.ResponseWriter, status int, code, msg string) {
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	writeJSON(w, status, struct {
		Error body `json:"error"`
	}{body{code, msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
