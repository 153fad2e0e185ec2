package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/monitor"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/store"
)

// maxReportBody bounds the body of a monitor report: an agent reports
// every few seconds, a batch of results at a time.
const maxReportBody = 1 << 20

// MonitorAssignments is what GET /api/v1/monitors/assignments answers.
type MonitorAssignments struct {
	Location    string                      `json:"location"`
	Assignments []runtime.MonitorAssignment `json:"assignments"`
}

// MonitorReportRequest is the body of POST /api/v1/monitors/results: a
// probe agent's results, batched per environment.
type MonitorReportRequest struct {
	Location string                  `json:"location"`
	Reports  []runtime.MonitorReport `json:"reports"`
}

// ErrNoMonitorAgents is what the monitor endpoints answer (501) when the
// server's roller serves no probe agents.
var ErrNoMonitorAgents = fmt.Errorf("this gantry serve takes no results from probe agents: %w", errors.ErrUnsupported)

// mountMonitors registers the probe agents' endpoints.
func (a *API) mountMonitors(mux *router) {
	mux.HandleFunc("GET /api/v1/monitors/assignments", a.withAgents(a.getAssignments))
	mux.HandleFunc("POST /api/v1/monitors/results", a.withAgents(a.postResults))
}

// withAgents serves h to identities that may report monitors, when the
// roller serves agents.
func (a *API) withAgents(h func(http.ResponseWriter, *http.Request, auth.Identity, runtime.MonitorAgents)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := a.authorize(w, r, auth.ActionMonitorReport)
		if !ok {
			return
		}
		agents, ok := a.roller.(runtime.MonitorAgents)
		if !ok {
			a.writeError(w, r, "monitors", ErrNoMonitorAgents)
			return
		}
		h(w, r, id, agents)
	}
}

// agentLocation checks the location an agent names: a DNS label, not
// the server's own, and the one its token is bound to (403 otherwise).
func agentLocation(w http.ResponseWriter, id auth.Identity, loc string) bool {
	if loc == runtime.LocationLocal {
		badRequest(w, "location %q is the gantry server itself; start the agent with a name of its own (--location eu-west)", loc)
		return false
	}
	if err := monitor.ValidLocation(loc); err != nil {
		badRequest(w, "location: %v", err)
		return false
	}
	if id.Location != "" && loc != id.Location {
		writeErrorBody(w, http.StatusForbidden, CodeForbidden,
			fmt.Sprintf("%s may not report monitors from location %s: its token is bound to location %s", id.Name, loc, id.Location))
		return false
	}
	return true
}

func (a *API) getAssignments(w http.ResponseWriter, r *http.Request, id auth.Identity, agents runtime.MonitorAgents) {
	loc := r.URL.Query().Get("location")
	if !agentLocation(w, id, loc) {
		return
	}
	as, err := agents.MonitorAssignments(r.Context(), loc)
	if as == nil {
		as = []runtime.MonitorAssignment{}
	}
	a.reply(w, r, "monitor assignments of "+loc, MonitorAssignments{Location: loc, Assignments: as}, err)
}

// postResults records an agent's batch of results. The TCP listener's
// audit writes one entry per batch; a batch with failing results also
// gets an entry saying which monitors failed from where and what it
// aborted (a report can end a release).
func (a *API) postResults(w http.ResponseWriter, r *http.Request, id auth.Identity, agents runtime.MonitorAgents) {
	var req MonitorReportRequest
	if !decodeLimit(w, r, "monitor report", &req, maxReportBody) {
		return
	}
	if !agentLocation(w, id, req.Location) {
		return
	}
	if len(req.Reports) == 0 {
		badRequest(w, "monitor report: no reports")
		return
	}
	res, err := agents.ReportMonitors(r.Context(), req.Location, req.Reports)
	if err == nil {
		err = a.auditFailures(r, id, req, res)
	}
	a.reply(w, r, "monitor report of "+req.Location, res, err)
}

// auditFailures writes one audit entry for the failing results recorded
// from req, if any (the run history's store is the audit log; without one the
// listener's entry is all).
func (a *API) auditFailures(r *http.Request, id auth.Identity, req MonitorReportRequest, res runtime.MonitorReportResult) error {
	if a.runs == nil || len(res.Failed) == 0 {
		return nil
	}
	failed := slices.Compact(slices.Sorted(slices.Values(res.Failed)))
	detail := fmt.Sprintf("by %s (%s) from location %s: failing %s", id.Name, id.Method, req.Location, strings.Join(failed, ", "))
	if len(res.Aborted) > 0 {
		detail += "; aborted the rollout of " + strings.Join(res.Aborted, ", ")
	}
	if err := a.runs.Store.Audit(r.Context(), &store.AuditEntry{Actor: id.Name, Action: "monitor.failed",
		Subject: "monitors from " + req.Location, Detail: detail}); err != nil {
		return fmt.Errorf("audit the failing monitor results: %w", err)
	}
	return nil
}

// decodeLimit is decode with a body bound of its own.
func decodeLimit(w http.ResponseWriter, r *http.Request, what string, v any, limit int64) bool {
	if r.ContentLength > limit {
		writeErrorBody(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("%s: body larger than %d bytes", what, limit))
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the JSON value")
		}
	}
	if err == nil {
		return true
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeErrorBody(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("%s: body larger than %d bytes", what, tooLarge.Limit))
		return false
	}
	if errors.Is(err, io.EOF) {
		err = errors.New("empty body")
	}
	writeErrorBody(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("decode the %s: %v", what, err))
	return false
}
