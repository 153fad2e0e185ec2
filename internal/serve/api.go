package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/runtime"
)

// maxBody bounds a request body: a deploy request carries the
// environment's policy and alert rule files.
const maxBody = 8 << 20

// errorTrailer names the HTTP trailer through which a log stream that
// already started reports the error that ended it.
const errorTrailer = "Gantry-Error"

// Health is what GET /api/v1/health answers.
type Health struct {
	Pid      int       `json:"pid"`
	Version  string    `json:"version"`
	StateDir string    `json:"stateDir"`
	Started  time.Time `json:"started"`
	// Uptime is in seconds.
	Uptime float64 `json:"uptime"`
	// Registry is the address of the embedded registry this process hosts.
	Registry string `json:"registry,omitempty"`
}

// RollbackRequest is the body of POST /api/v1/environments/{env}/rollback.
type RollbackRequest struct {
	// ToRevision 0 means the previous serving revision.
	ToRevision int    `json:"toRevision,omitempty"`
	Who        string `json:"who"`
	Reason     string `json:"reason,omitempty"`
}

// API is the serve process's HTTP/JSON API, independent of the transport
// it is served on: the Unix socket wraps it in the peer check
// (RequireUser), the TCP listener in package auth's middleware; every
// handler asks auth.Authorize for its action first.
type API struct {
	deployer runtime.Deployer
	// roller runs blue/green rollouts; nil answers 501 (SetRoller).
	roller runtime.Roller
	// runQueue serves the run queue's endpoints (SetRunQueue).
	runQueue http.Handler
	// runs serves the run history; nil answers 501 (SetRuns).
	runs     *Runs
	health   func() Health
	shutdown func()
	// stopping ends when the server stops; following log streams end
	// with it.
	stopping context.Context
	logger   *slog.Logger
}

// NewAPI returns the API over d. health reports the process; shutdown
// asks the process to stop (it must not block); stopping ends when the
// process stops, which ends log streams that follow.
func NewAPI(d runtime.Deployer, health func() Health, shutdown func(), stopping context.Context, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &API{deployer: d, health: health, shutdown: shutdown, stopping: stopping, logger: logger}
}

// SetRoller exposes r's rollouts; without one the rollout endpoints
// answer 501 (CodeUnsupported).
func (a *API) SetRoller(r runtime.Roller) { a.roller = r }

// SetRunQueue serves the run queue's endpoints through h (internal/queue's
// HTTP handler, which authorises each request itself).
func (a *API) SetRunQueue(h http.Handler) { a.runQueue = h }

// Handler routes the versioned API paths.
func (a *API) Handler() http.Handler {
	mux := a.mux()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, pattern := mux.Handler(r); pattern == "" {
			// No route: keep the mux's 404 or 405 (and its Allow
			// header), with a JSON body like every other error.
			sw := &statusOnly{header: w.Header()}
			h.ServeHTTP(sw, r)
			code := CodeNotFound
			if sw.status == http.StatusMethodNotAllowed {
				code = CodeMethodNotAllowed
			}
			writeErrorBody(w, sw.status, code, fmt.Sprintf("no API endpoint %s %s", r.Method, r.URL.Path))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// mux registers every route of the API.
func (a *API) mux() *router {
	mux := newRouter()
	mux.HandleFunc("GET /api/v1/health", a.getHealth)
	mux.HandleFunc("POST /api/v1/shutdown", a.postShutdown)
	mux.HandleFunc("GET /api/v1/environments", a.listEnvironments)
	mux.HandleFunc("GET /api/v1/environments/{env}", a.getEnvironment)
	mux.HandleFunc("POST /api/v1/environments/{env}/deploy", a.postDeploy)
	mux.HandleFunc("POST /api/v1/environments/{env}/rollback", a.postRollback)
	mux.HandleFunc("GET /api/v1/environments/{env}/revisions", a.getHistory)
	mux.HandleFunc("GET /api/v1/environments/{env}/logs", a.getLogs)
	mux.HandleFunc("POST /api/v1/environments/{env}/rollout", a.withRoller(auth.ActionRollout, a.postRollout))
	mux.HandleFunc("GET /api/v1/environments/{env}/rollout", a.withRoller(auth.ActionRead, a.getRollout))
	mux.HandleFunc("GET /api/v1/environments/{env}/rollout/watch", a.withRoller(auth.ActionRead, a.getRolloutWatch))
	mux.HandleFunc("POST /api/v1/environments/{env}/promote", a.rolloutVerb("promote", a.withRoller(auth.ActionRollout, a.postPromote)))
	mux.HandleFunc("POST /api/v1/environments/{env}/abort", a.rolloutVerb("abort", a.withRoller(auth.ActionRollout, a.postAbort)))
	mux.HandleFunc("POST /api/v1/environments/{env}/retry", a.rolloutVerb("retry", a.withRoller(auth.ActionRollout, a.postRetry)))
	mux.HandleFunc("POST /api/v1/environments/{env}/undo", a.rolloutVerb("undo", a.withRoller(auth.ActionRollout, a.postUndo)))
	if a.runQueue != nil {
		mux.Handle("POST /api/v1/runs", a.runQueue)
		mux.Handle("POST /api/v1/runs/{id}/cancel", a.runQueue)
		mux.Handle("GET /api/v1/queue/{id}", a.runQueue)
		mux.Handle("POST /api/v1/queue/{id}/retry", a.runQueue)
	}
	a.mountRuns(mux)
	a.mountMonitors(mux)
	return mux
}

// statusOnly keeps the status and headers a handler sets, dropping its
// body.
type statusOnly struct {
	header http.Header
	status int
}

func (s *statusOnly) Header() http.Header { return s.header }
func (s *statusOnly) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return len(p), nil
}
func (s *statusOnly) WriteHeader(status int) { s.status = status }

// envName is what an environment name may look like: it becomes part of
// paths under the state dir and of URLs.
var envName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ValidEnvironment checks an environment name.
func ValidEnvironment(name string) error {
	if !envName.MatchString(name) {
		return fmt.Errorf("environment name %q: want 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

func (a *API) env(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("env")
	if err := ValidEnvironment(name); err != nil {
		writeErrorBody(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return "", false
	}
	return name, true
}

func (a *API) getHealth(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.authorize(w, r, auth.ActionRead); !ok {
		return
	}
	writeJSON(w, http.StatusOK, a.health())
}

func (a *API) postShutdown(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.authorize(w, r, auth.ActionServerManage); !ok {
		return
	}
	a.logger.Info("shutdown requested through the API")
	writeJSON(w, http.StatusAccepted, map[string]bool{"stopping": true})
	a.shutdown()
}

func (a *API) listEnvironments(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.authorize(w, r, auth.ActionRead); !ok {
		return
	}
	envs, err := a.deployer.List(r.Context())
	if envs == nil {
		envs = []runtime.EnvironmentStatus{}
	}
	a.reply(w, r, "list environments", envs, err)
}

func (a *API) getEnvironment(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.authorize(w, r, auth.ActionRead); !ok {
		return
	}
	env, ok := a.env(w, r)
	if !ok {
		return
	}
	st, err := a.deployer.Status(r.Context(), env)
	a.reply(w, r, "status of "+env, st, err)
}

func (a *API) postDeploy(w http.ResponseWriter, r *http.Request) {
	id, ok := a.authorize(w, r, auth.ActionDeploy)
	if !ok {
		return
	}
	env, ok := a.env(w, r)
	if !ok {
		return
	}
	var req runtime.DeployRequest
	if !decode(w, r, "deploy request", &req) {
		return
	}
	if req.Environment == "" {
		req.Environment = env
	}
	if req.Environment != env {
		writeErrorBody(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("deploy request: environment %q in the body, %q in the path", req.Environment, env))
		return
	}
	req.Who = who(id, req.Who)
	rev, err := a.deployer.Deploy(r.Context(), req)
	a.reply(w, r, "deploy to "+env, rev, err)
}

func (a *API) postRollback(w http.ResponseWriter, r *http.Request) {
	id, ok := a.authorize(w, r, auth.ActionEnvRollback)
	if !ok {
		return
	}
	env, ok := a.env(w, r)
	if !ok {
		return
	}
	var req RollbackRequest
	if !decode(w, r, "rollback request", &req) {
		return
	}
	if req.ToRevision < 0 {
		writeErrorBody(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("rollback request: toRevision %d is negative", req.ToRevision))
		return
	}
	rev, err := a.deployer.Rollback(r.Context(), env, req.ToRevision, who(id, req.Who), req.Reason)
	a.reply(w, r, "roll back "+env, rev, err)
}

func (a *API) getHistory(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.authorize(w, r, auth.ActionRead); !ok {
		return
	}
	env, ok := a.env(w, r)
	if !ok {
		return
	}
	revs, err := a.deployer.History(r.Context(), env)
	if revs == nil {
		revs = []runtime.Revision{}
	}
	a.reply(w, r, "history of "+env, revs, err)
}

// getLogs streams the environment's logs as chunked text/plain, flushed
// as written. An error before the first byte is a JSON error; after it,
// the Gantry-Error trailer carries it (URL-escaped JSON errorBody).
func (a *API) getLogs(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.authorize(w, r, auth.ActionRead); !ok {
		return
	}
	env, ok := a.env(w, r)
	if !ok {
		return
	}
	follow := false
	if v := r.URL.Query().Get("follow"); v != "" {
		var err error
		if follow, err = strconv.ParseBool(v); err != nil {
			writeErrorBody(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("query parameter follow=%q: want true or false", v))
			return
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(a.stopping, cancel)
	defer stop()

	sw := startStream(w, "text/plain; charset=utf-8")
	err := a.deployer.Logs(ctx, env, follow, sw)
	if err != nil && follow && ctx.Err() != nil {
		// Following ends when the client goes or the server stops.
		err = nil
	}
	a.endStream(w, r, sw, "logs of "+env, err)
}

// startStream sets the headers of a streamed answer (the error trailer
// announced) and returns its writer.
func startStream(w http.ResponseWriter, contentType string) *streamWriter {
	w.Header().Set("Trailer", errorTrailer)
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	return &streamWriter{w: w, rc: http.NewResponseController(w)}
}

// endStream ends a streamed answer with err: before anything was
// written, a JSON error answer (what says what failed); after, the
// Gantry-Error trailer.
func (a *API) endStream(w http.ResponseWriter, r *http.Request, sw *streamWriter, what string, err error) {
	started := sw.close()
	if err == nil {
		if !started {
			w.WriteHeader(http.StatusOK)
		}
		return
	}
	if !started {
		w.Header().Del("Trailer")
		a.writeError(w, r, what, err)
		return
	}
	code, _ := classify(err)
	b, _ := json.Marshal(errorBody{Code: code, Message: err.Error()})
	w.Header().Set(errorTrailer, url.QueryEscape(string(b)))
}

// streamWriter flushes every write to the client. Writes may come from
// several goroutines of the deployer; none are taken after close.
type streamWriter struct {
	mu      sync.Mutex
	w       io.Writer
	rc      *http.ResponseController
	started bool
	closed  bool
}

func (s *streamWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errors.New("log stream closed")
	}
	s.started = true
	n, err := s.w.Write(p)
	if err != nil {
		return n, err
	}
	if err := s.rc.Flush(); err != nil {
		return n, err
	}
	return n, nil
}

func (s *streamWriter) close() (started bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return s.started
}

// decode reads a JSON body strictly into v, answering 400 or 413 itself.
func decode(w http.ResponseWriter, r *http.Request, what string, v any) bool {
	return decodeLimit(w, r, what, v, maxBody)
}

// writeError answers with the deployer's error and its code.
// reply answers v as JSON with 200, or, when err is set, err as the
// error of doing.
func (a *API) reply(w http.ResponseWriter, r *http.Request, doing string, v any, err error) {
	if err != nil {
		a.writeError(w, r, doing, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, doing string, err error) {
	code, status := classify(err)
	if status == http.StatusInternalServerError {
		a.logger.Error("api request failed", "method", r.Method, "path", r.URL.Path, "doing", doing, "err", err)
	}
	writeErrorBody(w, status, code, err.Error())
}

func writeErrorBody(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Error: errorBody{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
