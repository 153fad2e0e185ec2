package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestRoleCan(t *testing.T) {
	// Each role may do exactly the actions whose weakest role it reaches.
	want := map[Role][]Action{
		RoleViewer:     {ActionRead},
		RoleDeveloper:  {ActionRead, ActionRunCreate, ActionRunCancel, ActionRunRetry, ActionDeploy, ActionMonitorReport},
		RoleOncallLead: {ActionRead, ActionRunCreate, ActionRunCancel, ActionRunRetry, ActionDeploy, ActionMonitorReport, ActionEnvRollback, ActionApprove, ActionRollout},
		RoleAdmin:      Actions(),
	}
	for _, r := range Roles() {
		allowed := map[Action]bool{}
		for _, a := range want[r] {
			allowed[a] = true
		}
		for _, a := range Actions() {
			if got := r.Can(a); got != allowed[a] {
				t.Errorf("%s.Can(%s) = %v, want %v", r, a, got, allowed[a])
			}
		}
	}
	if RoleAdmin.Can("nonsense") {
		t.Error("an unknown action is allowed")
	}
	if Role("root").Can(ActionRead) {
		t.Error("an unknown role may read")
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range Roles() {
		got, err := ParseRole(string(r))
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	if _, err := ParseRole("superuser"); err == nil {
		t.Error("ParseRole(superuser): no error")
	}
}

func TestAuthorize(t *testing.T) {
	if _, err := Authorize(context.Background(), ActionRead); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("no identity: err = %v, want ErrUnauthenticated", err)
	}
	ctx := WithIdentity(context.Background(), Identity{Name: "dev1", Role: RoleDeveloper, Method: MethodToken})
	if id, err := Authorize(ctx, ActionRunCreate); err != nil || id.Name != "dev1" {
		t.Errorf("developer runs.create: %v, %v", id, err)
	}
	_, err := Authorize(ctx, ActionApprove)
	var fe *ForbiddenError
	if !errors.As(err, &fe) || fe.Need != RoleOncallLead {
		t.Fatalf("developer approvals.decide: err = %v, want a ForbiddenError needing oncall-lead", err)
	}
	if got, want := err.Error(), "dev1 (role developer) may not approvals.decide: it needs the role oncall-lead"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}

// TestAuthorizeProbeAgents: monitors.report takes a token bound to a
// location (or the socket); a bound token may do nothing else, whatever
// its user's role.
func TestAuthorizeProbeAgents(t *testing.T) {
	for _, tt := range []struct {
		name   string
		id     Identity
		action Action
		ok     bool
		says   string
	}{
		{"bound token reports", Identity{Name: "agent-eu", Role: RoleDeveloper, Method: MethodToken, Location: "eu-west"}, ActionMonitorReport, true, ""},
		{"bound token reads nothing", Identity{Name: "agent-eu", Role: RoleAdmin, Method: MethodToken, Location: "eu-west"}, ActionRead, false,
			"agent-eu may not read: its token is a probe agent's, bound to location eu-west, and may only report monitors"},
		{"unbound admin token", Identity{Name: "ada", Role: RoleAdmin, Method: MethodToken}, ActionMonitorReport, false,
			"ada may not monitors.report: reporting monitors takes an API token bound to the agent's location"},
		{"a session", Identity{Name: "ada", Role: RoleAdmin, Method: MethodPassword}, ActionMonitorReport, false, "takes an API token bound"},
		{"the socket", Identity{Name: "root", Role: RoleAdmin, Method: MethodSocket}, ActionMonitorReport, true, ""},
		{"bound viewer", Identity{Name: "vic", Role: RoleViewer, Method: MethodToken, Location: "eu-west"}, ActionMonitorReport, false, "needs the role developer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Authorize(WithIdentity(context.Background(), tt.id), tt.action)
			var fe *ForbiddenError
			switch {
			case tt.ok && err != nil:
				t.Errorf("Authorize: %v, want allowed", err)
			case !tt.ok && (!errors.As(err, &fe) || !strings.Contains(err.Error(), tt.says)):
				t.Errorf("Authorize: %v, want a ForbiddenError saying %q", err, tt.says)
			}
		})
	}
}
