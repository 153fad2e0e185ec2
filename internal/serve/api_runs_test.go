package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/runview"
	"github.com/gantry-ci/gantry/internal/store"
)

// TestRunsEndpoints reads every read endpoint of a recorded run as a
// viewer; call checks each answer against openapi.yaml.
func TestRunsEndpoints(t *testing.T) {
	e := newAPIEnv(t)
	s := e.seed(t, gatedRepo(t))
	p := fmt.Sprintf("/api/v1/runs/%d", s.passed)
	w := fmt.Sprintf("/api/v1/runs/%d", s.waiting)
	_, err := e.st.CreateEnvironment(context.Background(), "prod", 30081)
	must(t, err)
	must(t, e.st.AddRolloutEvent(context.Background(), &store.RolloutEvent{Environment: "prod", Revision: 4, Verb: "promote", Who: "lee", At: time.Now()}))
	tests := []struct {
		name, target string
		want         int
		contains     []string
	}{
		{"list", "/api/v1/runs", 200, []string{`"pipeline":"payments"`, `"branch":"feature"`, `"next":""`}},
		{"list by status", "/api/v1/runs?status=waiting", 200, []string{`"id":2,`}},
		{"list by branch", "/api/v1/runs?branch=main", 200, []string{`"id":1,`}},
		{"list by pipeline", "/api/v1/runs?pipeline=nope", 200, []string{`"items":[]`}},
		{"list since", "/api/v1/runs?since=2026-03-01T10:30:00Z", 200, []string{`"id":2,`}},
		{"run", p, 200, []string{`"gate_passed":true`, `"coverage":91.5`, `"duration_seconds":30`, `"name":"junit.xml"`}},
		{"waiting run with its approval", w, 200, []string{`"status":"waiting"`, `"roles":["oncall-lead"]`, `"digest":"sha256:abab`, `"evidence":[`}},
		{"whole log", p + "/logs", 200, []string{`"text":"=== RUN TestA"`, `"stream":"sys"`}},
		{"step log ranged", p + "/logs?stage=build&step=unit&after=1&limit=1", 200, []string{`"seq":2`, `"next":"2"`}},
		{"artifacts", p + "/artifacts", 200, []string{`"stage":"build"`, `"media_type":"application/xml"`}},
		{"approvals of a run", w + "/approvals", 200, []string{`"status":"pending"`}},
		{"pending approvals", "/api/v1/approvals", 200, []string{`"approval":{"stage":"prod"`}},
		{"openapi", "/api/v1/openapi.yaml", 200, []string{"openapi: 3.1.0"}},
		{"tests", p + "/tests", 200, []string{`"tests":3`, `"failures":1`, `"skipped":1`, `"time_seconds":0.75`, `"name":"TestB","message":"want 200, got 500"`}},
		{"coverage", p + "/coverage", 200, []string{`"step":"unit","coverage":91.5`}},
		{"vulnerabilities", p + "/vulnerabilities", 200, []string{`"id":"GO-2025-0001"`, `"status":"excepted"`, `"expires":"2026-12-31"`, `"owner":"alice"`}},
		{"sbom", p + "/sbom", 200, []string{`"name":"golang.org/x/net"`, `"licenses":["BSD-3-Clause"]`}},
		{"sarif", p + "/sarif", 200, []string{`"rule":"G101"`, `"file":"cmd/pay/main.go","line":42`, `"tool":"gantry-sast"`}},
		{"no reports", w + "/tests", 200, []string{`"items":[]`}},
		{"evidence of a digest", "/api/v1/evidence/sha256:" + strings.Repeat("ab", 32), 200, []string{`"key":"awskms:///alias/pay"`, `"evidence":{"tests":"pass","vuln-scan":"pass"}`, `"id":2,`}},
		{"rollout events", "/api/v1/environments/prod/rollout/events", 200, []string{`"verb":"promote"`, `"who":"lee"`, `"revision":4`}},
		{"rollout events of a bad name", "/api/v1/environments/..%2f/rollout/events", 400, []string{"environment name"}},
		{"evidence of an unknown digest", "/api/v1/evidence/sha256:" + strings.Repeat("cd", 32), 200, []string{`"items":[]`}},
		{"no such run", "/api/v1/runs/99", 404, []string{`"code":"not_found"`}},
		{"no such step", p + "/logs?stage=build&step=nope", 404, []string{"no step build/nope"}},
		{"artifact of another run", w + "/artifacts/" + s.blob, 404, []string{"has no artifact"}},
		{"no such endpoint", "/api/v1/nope", 404, []string{"no API endpoint"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.call(t, viewer, "GET", tt.target, "")
			if resp.StatusCode != tt.want {
				t.Fatalf("GET %s: got %s, want %d\n%s", tt.target, resp.Status, tt.want, body)
			}
			for _, c := range tt.contains {
				if !strings.Contains(string(body), c) {
					t.Errorf("GET %s: got %s, want it to contain %s", tt.target, body, c)
				}
			}
		})
	}
}

func TestArtifactDownload(t *testing.T) {
	e := newAPIEnv(t)
	s := e.seed(t, gatedRepo(t))
	base := fmt.Sprintf("/api/v1/runs/%d/artifacts/", s.passed)
	tests := []struct {
		name, digest, wantType, wantDisp, wantBody string
	}{
		{"xml", s.blob, "application/xml", `attachment; filename=junit.xml`, s.blobData},
		{"html is inert", s.html, "text/plain; charset=utf-8", `attachment; filename=coverage.html`, "<script>alert(1)</script>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.call(t, viewer, "GET", base+tt.digest, "")
			if resp.StatusCode != 200 {
				t.Fatalf("got %s, want 200: %s", resp.Status, body)
			}
			if got := resp.Header.Get("Content-Type"); got != tt.wantType {
				t.Errorf("Content-Type: got %q, want %q", got, tt.wantType)
			}
			if got := resp.Header.Get("Content-Disposition"); got != tt.wantDisp {
				t.Errorf("Content-Disposition: got %q, want %q", got, tt.wantDisp)
			}
			if got, want := resp.Header.Get("Content-Length"), strconv.Itoa(len(tt.wantBody)); got != want {
				t.Errorf("Content-Length: got %s, want %s", got, want)
			}
			if string(body) != tt.wantBody {
				t.Errorf("body: got %q, want %q", body, tt.wantBody)
			}
		})
	}
	resp, body := e.call(t, viewer, "GET", base+s.blob, "", "Range", "bytes=0-9")
	if resp.StatusCode != http.StatusPartialContent || string(body) != s.blobData[:10] {
		t.Errorf("range 0-9: got %s %q, want 206 %q", resp.Status, body, s.blobData[:10])
	}
}

// TestRunsBadInput: malformed input is a 400 whose message names the
// parameter.
func TestRunsBadInput(t *testing.T) {
	e := newAPIEnv(t)
	s := e.seed(t, gatedRepo(t))
	run := fmt.Sprintf("/api/v1/runs/%d", s.passed)
	dec := fmt.Sprintf("/api/v1/runs/%d/approvals/prod", s.waiting)
	alice := as("alice", auth.RoleOncallLead)
	tests := []struct {
		name           string
		who            caller
		method, target string
		body           string
		want           int
		names          string
	}{
		{"id", viewer, "GET", "/api/v1/runs/abc", "", 400, "path parameter id"},
		{"negative id", viewer, "GET", "/api/v1/runs/-1", "", 400, "path parameter id"},
		{"status", viewer, "GET", "/api/v1/runs?status=bogus", "", 400, "query parameter status"},
		{"since", viewer, "GET", "/api/v1/runs?since=yesterday", "", 400, "query parameter since"},
		{"limit zero", viewer, "GET", "/api/v1/runs?limit=0", "", 400, "query parameter limit"},
		{"limit huge", viewer, "GET", "/api/v1/runs?limit=100000", "", 400, "query parameter limit"},
		{"cursor", viewer, "GET", "/api/v1/runs?cursor=x", "", 400, "query parameter cursor"},
		{"stage without step", viewer, "GET", run + "/logs?stage=build", "", 400, "query parameters stage and step"},
		{"after not a number", viewer, "GET", run + "/logs?after=x", "", 400, "query parameter after"},
		{"after negative", viewer, "GET", run + "/logs?after=-1", "", 400, "query parameter after"},
		{"limit of a whole log", viewer, "GET", run + "/logs?limit=0", "", 400, "query parameter limit"},
		{"last event id", viewer, "GET", run + "/logs/stream?after=x", "", 400, "query parameter after"},
		{"digest", viewer, "GET", run + "/artifacts/sha256:zz", "", 400, "path parameter digest"},
		{"evidence digest", viewer, "GET", "/api/v1/evidence/latest", "", 400, "path parameter digest"},
		{"audit limit", admin, "GET", "/api/v1/audit?limit=-3", "", 400, "query parameter limit"},
		{"decision not JSON", alice, "POST", dec, "{", 400, "decode the decision"},
		{"decision unknown field", alice, "POST", dec, `{"decision":"approve","who":"root"}`, 400, `unknown field "who"`},
		{"decision word", alice, "POST", dec, `{"decision":"maybe"}`, 400, "decision: decision"},
		{"rejection without reason", alice, "POST", dec, `{"decision":"reject"}`, 400, "decision: comment"},
		{"decision empty", alice, "POST", dec, ``, 400, "empty body"},
		{"decision too large", alice, "POST", dec, `{"decision":"approve","comment":"` + strings.Repeat("x", maxBody) + `"}`, 413, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.call(t, tt.who, tt.method, tt.target, tt.body)
			if resp.StatusCode != tt.want {
				t.Fatalf("%s %s: got %s, want %d\n%s", tt.method, tt.target, resp.Status, tt.want, body)
			}
			if _, msg := errorCode(t, body); !strings.Contains(msg, tt.names) {
				t.Errorf("message %q, want it to name %q", msg, tt.names)
			}
		})
	}
	// Nothing was decided.
	aps, err := e.st.Approvals(context.Background(), s.waiting)
	must(t, err)
	if aps[0].Status != store.ApprovalPending {
		t.Errorf("approval after bad requests: got %s, want pending", aps[0].Status)
	}
}

// TestRunsAuthorization checks each route against each role: no
// identity is 401; a role below the action's is 403 naming the role.
func TestRunsAuthorization(t *testing.T) {
	e := newAPIEnv(t)
	s := e.seed(t, gatedRepo(t))
	run := fmt.Sprintf("/api/v1/runs/%d", s.passed)
	routes := []struct {
		method, target, body string
		need                 auth.Role
	}{
		{"GET", "/api/v1/runs", "", auth.RoleViewer},
		{"GET", run, "", auth.RoleViewer},
		{"GET", run + "/logs", "", auth.RoleViewer},
		{"GET", run + "/artifacts", "", auth.RoleViewer},
		{"GET", run + "/artifacts/" + s.blob, "", auth.RoleViewer},
		{"GET", run + "/approvals", "", auth.RoleViewer},
		{"GET", "/api/v1/approvals", "", auth.RoleViewer},
		{"GET", "/api/v1/openapi.yaml", "", auth.RoleViewer},
		{"GET", "/api/v1/audit", "", auth.RoleAdmin},
		{"GET", run + "/tests", "", auth.RoleViewer},
		{"GET", run + "/coverage", "", auth.RoleViewer},
		{"GET", run + "/vulnerabilities", "", auth.RoleViewer},
		{"GET", run + "/sbom", "", auth.RoleViewer},
		{"GET", run + "/sarif", "", auth.RoleViewer},
		{"GET", run + "/logs/stream", "", auth.RoleViewer},
		{"GET", "/api/v1/evidence/" + s.blob, "", auth.RoleViewer},
		// The passed run has nothing to decide: 409 once allowed.
		{"POST", run + "/approvals/build", `{"decision":"approve","noResume":true}`, auth.RoleOncallLead},
	}
	for _, rt := range routes {
		for _, role := range append([]auth.Role{""}, auth.Roles()...) {
			t.Run(rt.method+" "+rt.target+" as "+string(role), func(t *testing.T) {
				c := caller{name: "u-" + string(role), role: role}
				resp, body := e.call(t, c, rt.method, rt.target, rt.body)
				code, msg := "", ""
				if resp.StatusCode >= 400 {
					code, msg = errorCode(t, body)
				}
				switch {
				case role == "":
					if resp.StatusCode != 401 || code != CodeUnauthenticated {
						t.Errorf("without identity: got %s %s, want 401 unauthenticated", resp.Status, code)
					}
				case !role.AtLeast(rt.need):
					if resp.StatusCode != 403 || !strings.Contains(msg, "needs the role "+string(rt.need)) {
						t.Errorf("as %s: got %s %q, want 403 naming %s", role, resp.Status, msg, rt.need)
					}
				default:
					if resp.StatusCode == 401 || resp.StatusCode == 403 {
						t.Errorf("as %s: got %s %q, want it allowed", role, resp.Status, msg)
					}
				}
			})
		}
	}
}

// TestRunsPagination walks the run list page by page: every run once,
// newest first, and the last page says there is no next.
func TestRunsPagination(t *testing.T) {
	e := newAPIEnv(t)
	ctx := context.Background()
	for i := range 7 {
		must(t, e.st.CreateRun(ctx, &store.Run{Pipeline: "p", Event: "push", Branch: []string{"main", "dev"}[i%2]}))
	}
	tests := []struct {
		name, query string
		want        []int64
		pages       int
	}{
		{"all by 3", "limit=3", []int64{7, 6, 5, 4, 3, 2, 1}, 3},
		{"exact pages", "limit=7", []int64{7, 6, 5, 4, 3, 2, 1}, 1},
		{"branch by 2", "limit=2&branch=main", []int64{7, 5, 3, 1}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int64
			cursor, pages := "", 0
			for {
				target := "/api/v1/runs?" + tt.query
				if cursor != "" {
					target += "&cursor=" + cursor
				}
				resp, body := e.call(t, viewer, "GET", target, "")
				if resp.StatusCode != 200 {
					t.Fatalf("GET %s: %s %s", target, resp.Status, body)
				}
				var page Page[runview.Run]
				must(t, json.Unmarshal(body, &page))
				pages++
				for _, r := range page.Items {
					got = append(got, r.ID)
				}
				if page.Next == "" || pages > 10 {
					break
				}
				cursor = page.Next
			}
			if !slices.Equal(got, tt.want) || pages != tt.pages {
				t.Errorf("got %v in %d pages, want %v in %d", got, pages, tt.want, tt.pages)
			}
		})
	}
}

func TestAuditAdminPages(t *testing.T) {
	e := newAPIEnv(t)
	ctx := context.Background()
	for i := range 5 {
		must(t, e.st.Audit(ctx, &store.AuditEntry{Actor: "a", Action: "x", Subject: strconv.Itoa(i)}))
	}
	_, body := e.call(t, admin, "GET", "/api/v1/audit?limit=2", "")
	var page Page[AuditEntry]
	must(t, json.Unmarshal(body, &page))
	if len(page.Items) != 2 || page.Items[0].ID != 5 || page.Next != "4" {
		t.Fatalf("first page: got %s, want entries 5, 4 and next 4", body)
	}
	_, body = e.call(t, admin, "GET", "/api/v1/audit?limit=2&cursor=2", "")
	must(t, json.Unmarshal(body, &page))
	if len(page.Items) != 1 || page.Items[0].ID != 1 || page.Next != "" {
		t.Errorf("last page: got %s, want entry 1 and no next", body)
	}
}

// TestDecision approves and rejects through the API, checked against
// the approvers file of the repository's default branch.
func TestDecision(t *testing.T) {
	ctx := context.Background()
	alice := as("alice", auth.RoleOncallLead)
	mallory := as("mallory", auth.RoleOncallLead)

	t.Run("approve resumes through the queue", func(t *testing.T) {
		e := newAPIEnv(t)
		s := e.seed(t, gatedRepo(t))
		resp, body := e.call(t, alice, "POST", fmt.Sprintf("/api/v1/runs/%d/approvals/prod", s.waiting), `{"decision":"approve","comment":"ship it"}`)
		if resp.StatusCode != 200 {
			t.Fatalf("got %s %s, want 200", resp.Status, body)
		}
		var got DecisionResponse
		must(t, json.Unmarshal(body, &got))
		if got.Approval.Status != store.ApprovalApproved || got.Approval.Actor != "alice" || !got.Resumed {
			t.Errorf("got %+v, want approved by alice and resumed", got)
		}
		if want := []string{strconv.FormatInt(s.waiting, 10)}; !slices.Equal(e.queue.resumed, want) {
			t.Errorf("queue resumed %v, want %v", e.queue.resumed, want)
		}
		resp, body = e.call(t, alice, "POST", fmt.Sprintf("/api/v1/runs/%d/approvals/prod", s.waiting), `{"decision":"approve"}`)
		if code, _ := errorCode(t, body); resp.StatusCode != 409 || code != CodeNoPendingApproval {
			t.Errorf("second decision: got %s %s, want 409 %s", resp.Status, code, CodeNoPendingApproval)
		}
	})

	t.Run("the branch's own approvers file does not count", func(t *testing.T) {
		e := newAPIEnv(t)
		s := e.seed(t, gatedRepo(t))
		resp, body := e.call(t, mallory, "POST", fmt.Sprintf("/api/v1/runs/%d/approvals/prod", s.waiting), `{"decision":"approve"}`)
		if code, _ := errorCode(t, body); resp.StatusCode != 403 || code != CodeNotApprover {
			t.Fatalf("mallory: got %s %s, want 403 %s", resp.Status, body, CodeNotApprover)
		}
		audit, err := e.st.AuditLog(ctx, 0)
		must(t, err)
		if len(audit) == 0 || audit[0].Action != "approval.refused" || audit[0].Actor != "mallory" {
			t.Errorf("audit: got %+v, want mallory's refusal first", audit)
		}
		if len(e.queue.resumed) != 0 {
			t.Errorf("queue resumed %v after a refusal", e.queue.resumed)
		}
	})

	t.Run("reject ends the run", func(t *testing.T) {
		e := newAPIEnv(t)
		s := e.seed(t, gatedRepo(t))
		resp, body := e.call(t, alice, "POST", fmt.Sprintf("/api/v1/runs/%d/approvals/prod", s.waiting), `{"decision":"reject","comment":"not today"}`)
		if resp.StatusCode != 200 {
			t.Fatalf("got %s %s, want 200", resp.Status, body)
		}
		r, err := e.st.GetRun(ctx, s.waiting)
		must(t, err)
		if r.Status != store.StatusRejected || len(e.queue.resumed) != 0 {
			t.Errorf("run after rejection: got %s (resumed %v), want rejected, not resumed", r.Status, e.queue.resumed)
		}
	})

	t.Run("without a queue an approval is refused before it is recorded", func(t *testing.T) {
		e := newAPIEnv(t)
		s := e.seed(t, gatedRepo(t))
		e.api.runs.Queue = nil
		target := fmt.Sprintf("/api/v1/runs/%d/approvals/prod", s.waiting)
		resp, body := e.call(t, alice, "POST", target, `{"decision":"approve"}`)
		if code, _ := errorCode(t, body); resp.StatusCode != 501 || code != CodeUnsupported {
			t.Fatalf("got %s %s, want 501 unsupported", resp.Status, body)
		}
		aps, err := e.st.Approvals(ctx, s.waiting)
		must(t, err)
		if aps[0].Status != store.ApprovalPending {
			t.Fatalf("approval after 501: got %s, want pending", aps[0].Status)
		}
		resp, body = e.call(t, alice, "POST", target, `{"decision":"approve","noResume":true}`)
		var got DecisionResponse
		must(t, json.Unmarshal(body, &got))
		if resp.StatusCode != 200 || got.Resumed || got.Approval.Status != store.ApprovalApproved {
			t.Errorf("noResume: got %s %s, want 200 approved, not resumed", resp.Status, body)
		}
	})
}

// TestLogStreamFollowsToTheEnd follows a step's log over SSE while lines
// are appended, until the step ends; a reconnection with Last-Event-ID
// gets only the lines after it.
func TestLogStreamFollowsToTheEnd(t *testing.T) {
	e := newAPIEnv(t)
	ctx := context.Background()
	r := &store.Run{Pipeline: "p", Event: "push"}
	must(t, e.st.CreateRun(ctx, r))
	must(t, e.st.PutStep(ctx, &store.Step{RunID: r.ID, Stage: "s", Name: "x", Kind: "script", Status: store.StatusRunning}))
	must(t, e.st.AppendLogs(ctx, r.ID, "s", "x", []store.LogLine{{Text: "line 1"}}))
	srv := newTestServer(t, withIdentity(viewer, e.api.Handler()))

	target := fmt.Sprintf("%s/api/v1/runs/%d/logs/stream?stage=s&step=x", srv.URL, r.ID)
	events := make(chan sseEvent)
	done := make(chan error, 1)
	go func() { done <- readSSE(ctx, target, "", events) }()

	want := []string{"line 1", "line 2", "line 3", "line 4"}
	var got []string
	var ids []string
	var end string
	for ev := range events {
		switch ev.name {
		case "line":
			var l runview.LogLine
			must(t, json.Unmarshal([]byte(ev.data), &l))
			got = append(got, l.Text)
			ids = append(ids, ev.id)
			// Each line seen lets the writer go on: the stream follows
			// lines appended after it started.
			switch l.Text {
			case "line 1":
				must(t, e.st.AppendLogs(ctx, r.ID, "s", "x", []store.LogLine{{Text: "line 2"}, {Text: "line 3"}}))
			case "line 3":
				must(t, e.st.AppendLogs(ctx, r.ID, "s", "x", []store.LogLine{{Text: "line 4"}}))
				must(t, e.st.PutStep(ctx, &store.Step{RunID: r.ID, Stage: "s", Name: "x", Kind: "script", Status: store.StatusPassed}))
			}
		case "end":
			end = ev.data
		}
	}
	must(t, <-done)
	if !slices.Equal(got, want) {
		t.Errorf("lines: got %v, want %v", got, want)
	}
	if end != `{"status":"passed"}` {
		t.Errorf("end event: got %q, want the step's status passed", end)
	}

	// Reconnect after the second line.
	events = make(chan sseEvent)
	go func() { done <- readSSE(ctx, target, ids[1], events) }()
	got = nil
	for ev := range events {
		if ev.name == "line" {
			var l runview.LogLine
			must(t, json.Unmarshal([]byte(ev.data), &l))
			got = append(got, l.Text)
		}
	}
	must(t, <-done)
	if !slices.Equal(got, want[2:]) {
		t.Errorf("after Last-Event-ID %s: got %v, want %v", ids[1], got, want[2:])
	}
}

// TestLogStreamEndsWhenTheRunWaits: following a whole run ends when it
// waits for approval, as gantry logs -f does.
func TestLogStreamEndsWhenTheRunWaits(t *testing.T) {
	e := newAPIEnv(t)
	ctx := context.Background()
	s := e.seed(t, gatedRepo(t))
	srv := newTestServer(t, withIdentity(viewer, e.api.Handler()))
	events := make(chan sseEvent)
	done := make(chan error, 1)
	go func() {
		done <- readSSE(ctx, fmt.Sprintf("%s/api/v1/runs/%d/logs/stream", srv.URL, s.waiting), "", events)
	}()
	var last sseEvent
	for ev := range events {
		last = ev
	}
	must(t, <-done)
	if last.name != "end" || last.data != `{"status":"waiting"}` {
		t.Errorf("last event: got %+v, want end with status waiting", last)
	}
}

var _ = time.Second
