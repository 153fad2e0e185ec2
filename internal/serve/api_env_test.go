package serve

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/store"
)

// TestEnvironmentRoutesAuthorize: the environment and rollout routes ask
// for the role of their action; a TCP caller acts as its own name.
func TestEnvironmentRoutesAuthorize(t *testing.T) {
	e := newAPIEnv(t)
	e.api.SetRoller(nil)
	dev := as("dora", auth.RoleDeveloper)
	lead := as("lee", auth.RoleOncallLead)
	socket := caller{name: "owner", role: auth.RoleAdmin}
	tests := []struct {
		name           string
		who            caller
		method, target string
		body           string
		want           int
		says           string
	}{
		{"health without identity", nobody, "GET", "/api/v1/health", "", 401, "not logged in"},
		{"health", viewer, "GET", "/api/v1/health", "", 200, `"pid":1`},
		{"environments", viewer, "GET", "/api/v1/environments", "", 200, `"name":"prod"`},
		{"revisions", viewer, "GET", "/api/v1/environments/prod/revisions", "", 200, `"number":2`},
		{"viewer may not deploy", viewer, "POST", "/api/v1/environments/prod/deploy", `{"workloads":[],"who":"x"}`, 403, "needs the role developer"},
		{"developer may not roll back", dev, "POST", "/api/v1/environments/prod/rollback", `{"who":"x"}`, 403, "needs the role oncall-lead"},
		{"developer may not shut down", dev, "POST", "/api/v1/shutdown", "", 403, "needs the role admin"},
		{"rollback acts as the caller", lead, "POST", "/api/v1/environments/prod/rollback", `{"who":"someone-else"}`, 200, `"who":"lee"`},
		{"deploy acts as the caller", dev, "POST", "/api/v1/environments/prod/deploy", `{"workloads":[],"who":"admin"}`, 200, `"who":"dora"`},
		{"developer may not promote", dev, "POST", "/api/v1/environments/prod/promote", `{"who":"x"}`, 403, "needs the role oncall-lead"},
		{"promote over the socket reaches the roller", socket, "POST", "/api/v1/environments/prod/promote", `{"who":"x"}`, 501, "runs no rollout controller"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.who
			resp, body := e.callAs(t, c, c == socket, tt.method, tt.target, tt.body)
			if resp.StatusCode != tt.want || !strings.Contains(string(body), tt.says) {
				t.Errorf("%s %s: got %s %s, want %d saying %s", tt.method, tt.target, resp.Status, body, tt.want, tt.says)
			}
		})
	}
	var rev runtime.Revision
	_, body := e.call(t, dev, "POST", "/api/v1/environments/prod/deploy", `{"workloads":[],"who":"admin"}`)
	must(t, json.Unmarshal(body, &rev))
	if rev.Who != "dora" {
		t.Errorf("deploy recorded who=%q, want dora", rev.Who)
	}
}

const guardedPipeline = `name: pay
stages:
  - name: promote-prod
    approval: {required: true, roles: [oncall-lead]}
    steps:
      - {name: bluegreen, uses: blue-green, with: {environment: prod}}
`

// TestRolloutVerbsCheckTheApprovers: a rollout verb from a TCP caller
// is checked as gantry rollout checks it: the roles guarding the
// environment in the pipeline of the run that deployed it, held in the
// approvers file of that repository's default branch; each outcome is
// audited and the verb acts as the caller.
func TestRolloutVerbsCheckTheApprovers(t *testing.T) {
	ctx := context.Background()
	e := newAPIEnv(t)
	f := &fakeRoller{}
	e.api.SetRoller(f)
	repo := gatedRepo(t)
	run := &store.Run{Pipeline: "pay", Dir: repo, Event: "push", PipelineFile: repo + "/.gantry/pipeline.yaml", PipelineSource: []byte(guardedPipeline)}
	must(t, e.st.CreateRun(ctx, run))
	_, err := e.st.CreateEnvironment(ctx, "prod", 30081)
	must(t, err)
	must(t, e.st.AddEnvRevision(ctx, &store.EnvRevision{Environment: "prod", Number: 1, Digest: "sha256:" + strings.Repeat("b", 64), RunID: run.ID, Who: "ci", Status: "preview"}))
	must(t, e.st.PutRollout(ctx, &store.Rollout{Environment: "prod", Step: "paused", Phase: "Paused", Stable: 0, Desired: 1}))

	tests := []struct {
		name     string
		who      caller
		verb     string
		want     int
		wantCall string
		audit    string
	}{
		{"alice holds oncall-lead on main", as("alice", auth.RoleOncallLead), "promote", 200, "promote prod full=false who=alice", "rollout.promote"},
		{"mallory only on her branch", as("mallory", auth.RoleOncallLead), "abort", 403, "", "rollout.refused"},
		{"a developer lacks the server role", as("alice", auth.RoleDeveloper), "promote", 403, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.last()
			resp, body := e.call(t, tt.who, "POST", "/api/v1/environments/prod/"+tt.verb, `{"who":"someone-else"}`)
			if resp.StatusCode != tt.want {
				t.Fatalf("got %s %s, want %d", resp.Status, body, tt.want)
			}
			if got := f.last(); tt.wantCall != "" && got != tt.wantCall || tt.wantCall == "" && got != before {
				t.Errorf("roller's last call: got %q, want %q", got, tt.wantCall)
			}
			if tt.audit == "" {
				return
			}
			audit, err := e.st.AuditLog(ctx, 1)
			must(t, err)
			if len(audit) != 1 || audit[0].Action != tt.audit || audit[0].Actor != tt.who.name {
				t.Errorf("audit: got %+v, want %s by %s", audit, tt.audit, tt.who.name)
			}
		})
	}
}
