package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/artifact"
	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/runview"
	"github.com/gantry-ci/gantry/internal/store"
)

// Queue runs queued work on the server's workers. The API calls Resume
// when an approval lets a waiting run go on.
type Queue interface {
	// Resume enqueues the continuation of a run that was waiting.
	Resume(ctx context.Context, runID string) error
	// Cancel cancels a queued or running run.
	Cancel(ctx context.Context, runID string) error
}

// Decider records a decision on a waiting run's approval after checking
// the approvers file (engine.Engine).
type Decider interface {
	Decide(ctx context.Context, req engine.DecideRequest) (*store.Approval, error)
}

var _ Decider = (*engine.Engine)(nil)

// Runs is what the run endpoints read and act on.
type Runs struct {
	// Store is the run history (required).
	Store *store.Store
	// Artifacts holds the runs' artifact blobs (required).
	Artifacts *artifact.Store
	// StateDir is where STATE_DIR/approvers.yaml, which replaces the
	// repository's approvers file, is looked for ("" : nowhere).
	StateDir string
	// Decider decides approvals; nil: decisions answer 501.
	Decider Decider
	// Images checks the signatures and evidence of images in their
	// registry for the evidence endpoint; nil: not checked (serve.Run
	// sets one reading the embedded registry).
	Images ImageChecker
	// Queue resumes approved runs; nil: an approval that asks for the
	// run to resume answers 501 before anything is recorded.
	Queue Queue
}

// ErrNoRuns is what the run endpoints answer (501) when the server was
// started without the run history.
var ErrNoRuns = fmt.Errorf("this gantry serve serves no run history: %w", errors.ErrUnsupported)

// SetRuns serves the run history of r under /api/v1/runs.
func (a *API) SetRuns(r Runs) {
	if r.Store == nil || r.Artifacts == nil {
		a.runs = nil
		return
	}
	a.runs = &r
}

// Page is the answer of every list endpoint: its items, and the cursor
// of the next page ("" when this is the last).
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

// Pagination bounds.
const (
	defaultLimit = 50
	maxLimit     = 500
)

func (a *API) mountRuns(mux *router) {
	mux.HandleFunc("GET /api/v1/runs", a.withRuns(auth.ActionRead, a.listRuns))
	mux.HandleFunc("GET /api/v1/runs/{id}", a.withRuns(auth.ActionRead, a.getRun))
	mux.HandleFunc("GET /api/v1/runs/{id}/logs", a.withRuns(auth.ActionRead, a.getRunLogs))
	mux.HandleFunc("GET /api/v1/runs/{id}/logs/stream", a.withRuns(auth.ActionRead, a.streamRunLogs))
	mux.HandleFunc("GET /api/v1/runs/{id}/artifacts", a.withRuns(auth.ActionRead, a.listArtifacts))
	mux.HandleFunc("GET /api/v1/runs/{id}/artifacts/{digest}", a.withRuns(auth.ActionRead, a.getArtifact))
	mux.HandleFunc("GET /api/v1/runs/{id}/approvals", a.withRuns(auth.ActionRead, a.listRunApprovals))
	mux.HandleFunc("POST /api/v1/runs/{id}/approvals/{stage}", a.withRuns(auth.ActionApprove, a.postDecision))
	mux.HandleFunc("GET /api/v1/approvals", a.withRuns(auth.ActionRead, a.listPendingApprovals))
	mux.HandleFunc("GET /api/v1/audit", a.withRuns(auth.ActionAuditRead, a.listAudit))
	a.mountReports(mux)
	a.mountEvidence(mux)
	a.mountEnvHistory(mux)
	a.mountExceptions(mux)
	mux.HandleFunc("GET /api/v1/openapi.yaml", a.getOpenAPI)
}

// withRuns authorises action first, then answers 501 when the server
// has no run history.
func (a *API) withRuns(action auth.Action, h func(w http.ResponseWriter, r *http.Request, id auth.Identity)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		who, ok := a.authorize(w, r, action)
		if !ok {
			return
		}
		if a.runs == nil {
			a.writeError(w, r, r.URL.Path, ErrNoRuns)
			return
		}
		h(w, r, who)
	}
}

// badRequest answers 400 saying which parameter is wrong and why.
func badRequest(w http.ResponseWriter, format string, args ...any) {
	writeErrorBody(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf(format, args...))
}

// runID parses the {id} path parameter.
func runID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		badRequest(w, "path parameter id: want a positive run number, not %q", v)
		return 0, false
	}
	return id, true
}

// loadRun parses {id} and reads the run, answering errors itself.
func (a *API) loadRun(w http.ResponseWriter, r *http.Request) (*store.Run, bool) {
	id, ok := runID(w, r)
	if !ok {
		return nil, false
	}
	run, err := a.runs.Store.GetRun(r.Context(), id)
	if err != nil {
		a.writeError(w, r, fmt.Sprintf("read run %d", id), err)
		return nil, false
	}
	return run, true
}

// pageLimit parses ?limit= (default defaultLimit, at most maxLimit).
func pageLimit(w http.ResponseWriter, r *http.Request) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return defaultLimit, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		badRequest(w, "query parameter limit: want a number from 1 to %d, not %q", maxLimit, v)
		return 0, false
	}
	return n, true
}

// idCursor parses ?cursor= of lists ordered by decreasing ID (0: none).
func idCursor(w http.ResponseWriter, r *http.Request) (int64, bool) {
	v := r.URL.Query().Get("cursor")
	if v == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		badRequest(w, "query parameter cursor: want the next value of the previous page, not %q", v)
		return 0, false
	}
	return n, true
}

// runStatuses are the statuses ?status= accepts.
var runStatuses = []store.Status{
	store.StatusRunning, store.StatusWaiting, store.StatusPassed, store.StatusFailed,
	store.StatusRejected, store.StatusCancelled, store.StatusInterrupted,
}

func (a *API) listRuns(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	q := r.URL.Query()
	opt := store.ListOptions{Pipeline: q.Get("pipeline"), Branch: q.Get("branch")}
	if v := q.Get("status"); v != "" {
		known := false
		names := make([]string, len(runStatuses))
		for i, s := range runStatuses {
			names[i] = string(s)
			known = known || string(s) == v
		}
		if !known {
			badRequest(w, "query parameter status: want one of %s, not %q", strings.Join(names, ", "), v)
			return
		}
		opt.Status = store.Status(v)
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			badRequest(w, "query parameter since: want an RFC 3339 time such as 2026-01-02T15:04:05Z, not %q", v)
			return
		}
		opt.Since = t
	}
	limit, ok := pageLimit(w, r)
	if !ok {
		return
	}
	if opt.Before, ok = idCursor(w, r); !ok {
		return
	}
	// Approvals past their deadline are rejected when looked at.
	if _, err := a.runs.Store.ExpireApprovals(r.Context(), time.Now()); err != nil {
		a.writeError(w, r, "expire approvals", err)
		return
	}
	opt.Limit = limit + 1
	runs, err := a.runs.Store.ListRuns(r.Context(), opt)
	if err != nil {
		a.writeError(w, r, "list runs", err)
		return
	}
	page := Page[runview.Run]{Items: []runview.Run{}}
	for i, run := range runs {
		if i == limit {
			page.Next = strconv.FormatInt(runs[i-1].ID, 10)
			break
		}
		page.Items = append(page.Items, runview.NewRun(run))
	}
	writeJSON(w, http.StatusOK, page)
}

func (a *API) getRun(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	if _, err := a.runs.Store.ExpireApprovals(r.Context(), time.Now()); err != nil {
		a.writeError(w, r, "expire approvals", err)
		return
	}
	run, ok := a.loadRun(w, r)
	if !ok {
		return
	}
	v, err := runview.Load(r.Context(), a.runs.Store, run)
	a.reply(w, r, fmt.Sprintf("show run %d", run.ID), v, err)
}

func (a *API) listArtifacts(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	run, ok := a.loadRun(w, r)
	if !ok {
		return
	}
	arts, err := a.runs.Store.Artifacts(r.Context(), run.ID)
	if err != nil {
		a.writeError(w, r, fmt.Sprintf("artifacts of run %d", run.ID), err)
		return
	}
	page := Page[runview.Artifact]{Items: make([]runview.Artifact, len(arts))}
	for i, art := range arts {
		page.Items[i] = runview.NewArtifact(art)
	}
	writeJSON(w, http.StatusOK, page)
}

func (a *API) listRunApprovals(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	if _, err := a.runs.Store.ExpireApprovals(r.Context(), time.Now()); err != nil {
		a.writeError(w, r, "expire approvals", err)
		return
	}
	run, ok := a.loadRun(w, r)
	if !ok {
		return
	}
	aps, err := runview.LoadApprovals(r.Context(), a.runs.Store, run.ID)
	if err != nil {
		a.writeError(w, r, fmt.Sprintf("approvals of run %d", run.ID), err)
		return
	}
	if aps == nil {
		aps = []runview.Approval{}
	}
	writeJSON(w, http.StatusOK, Page[runview.Approval]{Items: aps})
}

// PendingApproval is a run waiting for a decision, with what the decider
// is asked to approve.
type PendingApproval struct {
	Run      runview.Run      `json:"run"`
	Approval runview.Approval `json:"approval"`
}

// listPendingApprovals answers every pending approval of the waiting
// runs, newest run first.
func (a *API) listPendingApprovals(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	ctx := r.Context()
	if _, err := a.runs.Store.ExpireApprovals(ctx, time.Now()); err != nil {
		a.writeError(w, r, "expire approvals", err)
		return
	}
	runs, err := a.runs.Store.ListRuns(ctx, store.ListOptions{Status: store.StatusWaiting})
	if err != nil {
		a.writeError(w, r, "list waiting runs", err)
		return
	}
	page := Page[PendingApproval]{Items: []PendingApproval{}}
	for _, run := range runs {
		aps, err := runview.LoadApprovals(ctx, a.runs.Store, run.ID)
		if err != nil {
			a.writeError(w, r, fmt.Sprintf("approvals of run %d", run.ID), err)
			return
		}
		for _, ap := range aps {
			if ap.Status == store.ApprovalPending {
				page.Items = append(page.Items, PendingApproval{Run: runview.NewRun(run), Approval: ap})
			}
		}
	}
	writeJSON(w, http.StatusOK, page)
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	ID      int64     `json:"id"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Subject string    `json:"subject"`
	Detail  string    `json:"detail,omitempty"`
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	limit, ok := pageLimit(w, r)
	if !ok {
		return
	}
	before, ok := idCursor(w, r)
	if !ok {
		return
	}
	entries, err := a.runs.Store.AuditLog(r.Context(), 0)
	if err != nil {
		a.writeError(w, r, "read the audit log", err)
		return
	}
	page := Page[AuditEntry]{Items: []AuditEntry{}}
	for _, e := range entries {
		if before > 0 && e.ID >= before {
			continue
		}
		if len(page.Items) == limit {
			page.Next = strconv.FormatInt(page.Items[limit-1].ID, 10)
			break
		}
		page.Items = append(page.Items, AuditEntry{ID: e.ID, Time: e.Time.UTC(), Actor: e.Actor, Action: e.Action, Subject: e.Subject, Detail: e.Detail})
	}
	writeJSON(w, http.StatusOK, page)
}
