package serve

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/auth"
	"github.com/gantry-ci/gantry/internal/runtime"
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
		{"health without identity", nobody, "GET", "/api/v1/health", "", 401, "log in"},
		{"health", viewer, "GET", "/api/v1/health", "", 200, `"pid":1`},
		{"environments", viewer, "GET", "/api/v1/environments", "", 200, `"name":"prod"`},
		{"revisions", viewer, "GET", "/api/v1/environments/prod/revisions", "", 200, `"number":2`},
		{"viewer may not deploy", viewer, "POST", "/api/v1/environments/prod/deploy", `{"workloads":[],"who":"x"}`, 403, "needs the role developer"},
		{"developer may not roll back", dev, "POST", "/api/v1/environments/prod/rollback", `{"who":"x"}`, 403, "needs the role oncall-lead"},
		{"developer may not shut down", dev, "POST", "/api/v1/shutdown", "", 403, "needs the role admin"},
		{"rollback acts as the caller", lead, "POST", "/api/v1/environments/prod/rollback", `{"who":"someone-else"}`, 200, `"who":"lee"`},
		{"deploy acts as the caller", dev, "POST", "/api/v1/environments/prod/deploy", `{"workloads":[],"who":"admin"}`, 200, `"who":"dora"`},
		{"developer may not promote", dev, "POST", "/api/v1/environments/prod/promote", `{"who":"x"}`, 403, "needs the role oncall-lead"},
		{"promote over TCP is not built", lead, "POST", "/api/v1/environments/prod/promote", `{"who":"x"}`, 501, "only taken on the server's host"},
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
