package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/runtime"
)

// fakeAgents is a roller with the probe agents' ability that records the
// reports reaching it and answers as the controller does for its
// rollout of prod, revision 2: monitor health runs from eu-west. A fake:
// the controller's own checks are tested in internal/envctl; this test is
// about the endpoints (roles, bodies, audit) and the client.
type fakeAgents struct {
	fakeRoller
	mu      sync.Mutex
	reports []MonitorReportRequest
}

var _ runtime.MonitorAgents = (*fakeAgents)(nil)

func (f *fakeAgents) MonitorAssignments(_ context.Context, location string) ([]runtime.MonitorAssignment, error) {
	if location != "eu-west" {
		return nil, nil
	}
	return []runtime.MonitorAssignment{{Environment: "prod", Revision: 2, URL: "http://127.0.0.1:30081",
		Until:    time.Date(2026, 3, 1, 10, 5, 0, 0, time.UTC),
		Monitors: []runtime.Monitor{{Name: "health", Method: "GET", Path: "/healthz", Interval: time.Second, Locations: []string{"local", "eu-west"}}}}}, nil
}

func (f *fakeAgents) ReportMonitors(_ context.Context, location string, reports []runtime.MonitorReport) (runtime.MonitorReportResult, error) {
	var res runtime.MonitorReportResult
	for _, rep := range reports {
		for _, r := range rep.Results {
			if r.Monitor != "health" || location != "eu-west" {
				return runtime.MonitorReportResult{}, fmt.Errorf("%w: monitor %s does not run from %s", runtime.ErrInvalidRequest, r.Monitor, location)
			}
			res.Recorded++
			if !r.OK {
				res.Failed = append(res.Failed, rep.Environment+"/"+r.Monitor)
				res.Aborted = []string{rep.Environment}
			}
		}
	}
	f.mu.Lock()
	f.reports = append(f.reports, MonitorReportRequest{Location: location, Reports: reports})
	f.mu.Unlock()
	return res, nil
}

func reportBody(location string, ok bool, monitor string) string {
	b, _ := json.Marshal(MonitorReportRequest{Location: location, Reports: []runtime.MonitorReport{{Environment: "prod", Revision: 2,
		Results: []runtime.MonitorResult{{Monitor: monitor, At: time.Date(2026, 3, 1, 10, 1, 0, 0, time.UTC), OK: ok, Status: 200}}}}})
	return string(b)
}

func TestMonitorEndpoints(t *testing.T) {
	e := newAPIEnv(t)
	agents := &fakeAgents{}
	e.api.SetRoller(agents)
	dev := agentAt("agent-eu", auth.RoleDeveloper, "eu-west")
	lead := agentAt("lee", auth.RoleOncallLead, "eu-west")
	boundAdmin := agentAt("ada", auth.RoleAdmin, "eu-west")
	boundViewer := agentAt("vic", auth.RoleViewer, "eu-west")
	us := agentAt("agent-us", auth.RoleDeveloper, "us-east")
	const assign = "/api/v1/monitors/assignments?location=eu-west"
	const results = "/api/v1/monitors/results"
	good := reportBody("eu-west", true, "health")
	tests := []struct {
		name           string
		who            caller
		method, target string
		body           string
		want           int
		says           string
	}{
		{"assignments without identity", nobody, "GET", assign, "", 401, "not logged in"},
		{"viewer may not read assignments", boundViewer, "GET", assign, "", 403, "needs the role developer"},
		{"developer reads assignments", dev, "GET", assign, "", 200, `"url":"http://127.0.0.1:30081"`},
		{"oncall-lead reads assignments", lead, "GET", assign, "", 200, `"environment":"prod"`},
		{"admin reads assignments", boundAdmin, "GET", assign, "", 200, `"revision":2`},
		{"an unbound token may not read assignments", admin, "GET", assign, "", 403, "takes an API token bound to the agent's location"},
		{"another location's assignments", dev, "GET", "/api/v1/monitors/assignments?location=us-east", "", 403, "its token is bound to location eu-west"},
		{"no assignments elsewhere", us, "GET", "/api/v1/monitors/assignments?location=us-east", "", 200, `"assignments":[]`},
		{"no location", dev, "GET", "/api/v1/monitors/assignments", "", 400, `invalid location name \"\"`},
		{"bad location", dev, "GET", "/api/v1/monitors/assignments?location=EU_West", "", 400, `invalid location name \"EU_West\"`},
		{"local is the server", dev, "GET", "/api/v1/monitors/assignments?location=local", "", 400, "is the gantry server itself"},

		{"report without identity", nobody, "POST", results, good, 401, "not logged in"},
		{"viewer may not report", boundViewer, "POST", results, good, 403, "needs the role developer"},
		{"developer reports", dev, "POST", results, good, 200, `"recorded":1`},
		{"oncall-lead reports", lead, "POST", results, good, 200, `"recorded":1`},
		{"admin reports", boundAdmin, "POST", results, good, 200, `"recorded":1`},
		{"an unbound token may not report", as("dee", auth.RoleDeveloper), "POST", results, good, 403, "takes an API token bound to the agent's location"},
		{"a report for another location", dev, "POST", results, reportBody("us-east", false, "health"), 403, "may not report monitors from location us-east"},
		{"an agent's token does nothing else", dev, "GET", "/api/v1/runs", "", 403, "bound to location eu-west, and may only report monitors"},
		{"empty body", dev, "POST", results, "", 400, "empty body"},
		{"not JSON", dev, "POST", results, "{", 400, "decode the monitor report"},
		{"unknown field", dev, "POST", results, `{"location":"eu-west","reports":[],"token":"x"}`, 400, `unknown field \"token\"`},
		{"data after", dev, "POST", results, good + `{}`, 400, "data after the JSON value"},
		{"no reports", dev, "POST", results, `{"location":"eu-west","reports":[]}`, 400, "no reports"},
		{"report as local", dev, "POST", results, reportBody("local", true, "health"), 400, "is the gantry server itself"},
		{"report bad location", dev, "POST", results, reportBody("eu west", true, "health"), 400, `invalid location name \"eu west\"`},
		{"wrong location", us, "POST", results, reportBody("us-east", true, "health"), 400, "monitor health does not run from us-east"},
		{"unknown monitor", dev, "POST", results, reportBody("eu-west", true, "login"), 400, "monitor login does not run from eu-west"},
		{"too large", dev, "POST", results, `{"location":"eu-west","reports":[{"environment":"` + strings.Repeat("x", maxReportBody) + `"}]}`, 413, "body larger than 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.call(t, tt.who, tt.method, tt.target, tt.body)
			if resp.StatusCode != tt.want || !strings.Contains(string(body), tt.says) {
				t.Errorf("%s %s: got %s %s, want %d saying %s", tt.method, tt.target, resp.Status, body, tt.want, tt.says)
			}
		})
	}
	agents.mu.Lock()
	n := len(agents.reports)
	agents.mu.Unlock()
	if n != 3 {
		t.Errorf("%d reports reached the roller, want the 3 accepted ones", n)
	}
}

// TestMonitorReportAudit: passing results add no audit entry of their
// own (the listener audits each request); failing ones say who reported
// which from where, and what they aborted.
func TestMonitorReportAudit(t *testing.T) {
	e := newAPIEnv(t)
	e.api.SetRoller(&fakeAgents{})
	dev := agentAt("agent-eu", auth.RoleDeveloper, "eu-west")
	ctx := context.Background()
	before, err := e.st.AuditLog(ctx, 0)
	must(t, err)
	if resp, body := e.call(t, dev, "POST", "/api/v1/monitors/results", reportBody("eu-west", true, "health")); resp.StatusCode != 200 {
		t.Fatalf("report: %s %s", resp.Status, body)
	}
	after, err := e.st.AuditLog(ctx, 0)
	must(t, err)
	if len(after) != len(before) {
		t.Errorf("a passing report added %d audit entries, want none", len(after)-len(before))
	}
	resp, body := e.call(t, dev, "POST", "/api/v1/monitors/results", reportBody("eu-west", false, "health"))
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"aborted":["prod"]`) {
		t.Fatalf("failing report: %s %s, want prod aborted", resp.Status, body)
	}
	after, err = e.st.AuditLog(ctx, 0)
	must(t, err)
	if len(after) != len(before)+1 {
		t.Fatalf("a failing report added %d audit entries, want 1", len(after)-len(before))
	}
	got := after[len(after)-1]
	want := "by agent-eu (token) from location eu-west: failing prod/health; aborted the rollout of prod"
	if got.Actor != "agent-eu" || got.Action != "monitor.failed" || got.Detail != want {
		t.Errorf("audit entry %+v, want actor agent-eu, action monitor.failed, detail %q", got, want)
	}
}

// TestMonitorEndpointsWithoutAgents: a roller without the ability
// answers 501.
func TestMonitorEndpointsWithoutAgents(t *testing.T) {
	e := newAPIEnv(t)
	e.api.SetRoller(&fakeRoller{})
	resp, body := e.call(t, agentAt("d", auth.RoleDeveloper, "eu-west"), "GET", "/api/v1/monitors/assignments?location=eu-west", "")
	if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(string(body), "takes no results from probe agents") {
		t.Errorf("got %s %s, want 501", resp.Status, body)
	}
}

// TestMonitorClient: the client carries assignments, reports and the
// server's refusals (over real HTTP, with a token's identity).
func TestMonitorClient(t *testing.T) {
	e := newAPIEnv(t)
	agents := &fakeAgents{}
	e.api.SetRoller(agents)
	srv := newTestServer(t, withIdentity(agentAt("agent-eu", auth.RoleDeveloper, "eu-west"), e.api.Handler()))
	c, err := NewRemote(srv.URL, "tok")
	must(t, err)
	ctx := context.Background()
	got, err := c.MonitorAssignments(ctx, "eu-west")
	if err != nil || len(got) != 1 || got[0].Monitors[0].Name != "health" || got[0].Monitors[0].Interval != time.Second {
		t.Fatalf("assignments %+v, %v; want prod health every second", got, err)
	}
	res, err := c.ReportMonitors(ctx, "eu-west", []runtime.MonitorReport{{Environment: "prod", Revision: 2,
		Results: []runtime.MonitorResult{{Monitor: "health", At: time.Now(), OK: true}}}})
	if err != nil || res.Recorded != 1 {
		t.Errorf("report: %+v, %v; want 1 recorded", res, err)
	}
	_, err = c.ReportMonitors(ctx, "eu-west", []runtime.MonitorReport{{Environment: "prod", Revision: 2,
		Results: []runtime.MonitorResult{{Monitor: "login", At: time.Now(), OK: true}}}})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != CodeInvalidRequest {
		t.Errorf("report of an unknown monitor: %v, want an invalid_request APIError", err)
	}
}

// FuzzMonitorReport: whatever an agent sends, the endpoint answers 200,
// 400, 403 (another location's) or 413 with a JSON body, never a 500 or
// a panic.
func FuzzMonitorReport(f *testing.F) {
	f.Add(reportBody("eu-west", true, "health"))
	f.Add(reportBody("eu-west", false, "login"))
	f.Add(`{"location":"eu-west","reports":[{"environment":"prod","revision":2,"results":[{"monitor":"health","at":"x"}]}]}`)
	f.Add(`{"location":"local","reports":null}`)
	f.Fuzz(func(t *testing.T, body string) {
		api := NewAPI(newRecorder(), func() Health { return Health{} }, func() {}, context.Background(), nil)
		api.SetRoller(&fakeAgents{})
		req := httptest.NewRequest("POST", "/api/v1/monitors/results", strings.NewReader(body))
		w := httptest.NewRecorder()
		withIdentity(agentAt("agent-eu", auth.RoleDeveloper, "eu-west"), api.Handler()).ServeHTTP(w, req)
		switch w.Code {
		case 200, 400, 403, 413:
		default:
			t.Errorf("body %q: answered %d %s", body, w.Code, w.Body)
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Errorf("body %q: answer is not JSON: %s", body, w.Body)
		}
	})
}
