// Package auth holds who a request to gantry serve comes from and what
// each role may do. Authentication (passwords, API tokens, sessions, OIDC,
// the Unix socket's peer check) produces an Identity; every API handler
// and UI action asks Authorize before it acts.
package auth

import (
	"context"
	"errors"
	"fmt"
)

// Role is a server role. Roles are ordered: each holds every permission
// of the roles before it.
type Role string

// The roles, weakest first.
const (
	RoleViewer     Role = "viewer"
	RoleDeveloper  Role = "developer"
	RoleOncallLead Role = "oncall-lead"
	RoleAdmin      Role = "admin"
)

var rank = map[Role]int{RoleViewer: 1, RoleDeveloper: 2, RoleOncallLead: 3, RoleAdmin: 4}

// Roles lists the roles, weakest first.
func Roles() []Role { return []Role{RoleViewer, RoleDeveloper, RoleOncallLead, RoleAdmin} }

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if rank[r] == 0 {
		return "", fmt.Errorf("unknown role %q (want viewer, developer, oncall-lead or admin)", s)
	}
	return r, nil
}

// AtLeast reports whether r holds every permission of o.
func (r Role) AtLeast(o Role) bool { return rank[r] > 0 && rank[r] >= rank[o] }

// Action is something a caller asks the server to do.
type Action string

// The actions the API and UI check. Reading covers runs, stages, steps,
// logs, artifacts, evidence, environments, rollouts, approvals and
// exceptions; the audit log is read by admins only.
const (
	ActionRead        Action = "read"
	ActionRunCreate   Action = "runs.create"
	ActionRunCancel   Action = "runs.cancel"
	ActionRunRetry    Action = "runs.retry"
	ActionDeploy      Action = "environments.deploy"
	ActionEnvRollback Action = "environments.rollback"
	ActionApprove     Action = "approvals.decide"
	ActionRollout     Action = "rollouts.operate"
	// ActionMonitorReport is a probe agent's (gantry monitor agent):
	// read its monitor assignments and report results. A failing result
	// in a rollout's post-promotion window aborts the rollout.
	ActionMonitorReport Action = "monitors.report"
	ActionExceptions    Action = "exceptions.manage"
	ActionAuditRead     Action = "audit.read"
	ActionUsersManage   Action = "users.manage"
	ActionServerManage  Action = "server.manage"
)

// minRole is the weakest role allowed each action.
var minRole = map[Action]Role{
	ActionRead:          RoleViewer,
	ActionRunCreate:     RoleDeveloper,
	ActionRunCancel:     RoleDeveloper,
	ActionRunRetry:      RoleDeveloper,
	ActionDeploy:        RoleDeveloper,
	ActionEnvRollback:   RoleOncallLead,
	ActionApprove:       RoleOncallLead,
	ActionRollout:       RoleOncallLead,
	ActionMonitorReport: RoleDeveloper,
	ActionExceptions:    RoleAdmin,
	ActionAuditRead:     RoleAdmin,
	ActionUsersManage:   RoleAdmin,
	ActionServerManage:  RoleAdmin,
}

// Actions lists every action, for tests that check each role against each.
func Actions() []Action {
	return []Action{ActionRead, ActionRunCreate, ActionRunCancel, ActionRunRetry, ActionDeploy,
		ActionEnvRollback, ActionApprove, ActionRollout, ActionMonitorReport, ActionExceptions, ActionAuditRead,
		ActionUsersManage, ActionServerManage}
}

// MinRole is the weakest role allowed a; false for an unknown action.
func MinRole(a Action) (Role, bool) {
	r, ok := minRole[a]
	return r, ok
}

// Can reports whether r may do a. An unknown action is allowed to nobody.
func (r Role) Can(a Action) bool {
	min, ok := minRole[a]
	return ok && r.AtLeast(min)
}

// Method says how an identity was established.
type Method string

// The ways a caller is authenticated.
const (
	// MethodSocket is the Unix socket's peer check: the state dir's owner.
	MethodSocket   Method = "socket"
	MethodPassword Method = "password"
	MethodToken    Method = "token"
	MethodOIDC     Method = "oidc"
)

// Identity is an authenticated caller.
type Identity struct {
	// Name is the user name: the login of a local or OIDC user, or the
	// operating system's login name over the socket. Approvals and the
	// approvers file match on it.
	Name   string
	Role   Role
	Method Method
	// Remote is where the request came from (an IP address, or
	// "unix" for the socket), for the audit log.
	Remote string
	// Location is the probe location the caller's API token is bound to
	// (gantry token create --location): a probe agent's token, which may
	// report monitors for that location and do nothing else. "" for
	// every other identity.
	Location string
}

type identityKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity ctx carries.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// ErrUnauthenticated is a request without an identity (HTTP 401).
var ErrUnauthenticated = errors.New("not logged in")

// ForbiddenError is an identity whose role may not do an action (HTTP 403).
type ForbiddenError struct {
	Who    string
	Role   Role
	Action Action
	Need   Role
	// Why, when set, is the reason other than the role.
	Why string
}

func (e *ForbiddenError) Error() string {
	if e.Why != "" {
		return fmt.Sprintf("%s may not %s: %s", e.Who, e.Action, e.Why)
	}
	if e.Need == "" {
		return fmt.Sprintf("%s (role %s) may not %s", e.Who, e.Role, e.Action)
	}
	return fmt.Sprintf("%s (role %s) may not %s: it needs the role %s", e.Who, e.Role, e.Action, e.Need)
}

// Authorize returns the identity ctx carries when its role may do a:
// ErrUnauthenticated without one, a *ForbiddenError when the role is too
// weak or the credential is not for a. Reporting monitors takes a token
// bound to a probe location (or the socket), and such a token does
// nothing else: a monitor result can abort a release, so the right to
// send one is an agent's credential, not a person's role.
func Authorize(ctx context.Context, a Action) (Identity, error) {
	id, ok := FromContext(ctx)
	if !ok {
		return Identity{}, ErrUnauthenticated
	}
	if id.Location != "" && a != ActionMonitorReport {
		return id, &ForbiddenError{Who: id.Name, Role: id.Role, Action: a,
			Why: fmt.Sprintf("its token is a probe agent's, bound to location %s, and may only report monitors", id.Location)}
	}
	if a == ActionMonitorReport && id.Location == "" && id.Method != MethodSocket {
		return id, &ForbiddenError{Who: id.Name, Role: id.Role, Action: a,
			Why: "reporting monitors takes an API token bound to the agent's location (gantry token create --user NAME --location LOCATION)"}
	}
	if !id.Role.Can(a) {
		need, _ := MinRole(a)
		return id, &ForbiddenError{Who: id.Name, Role: id.Role, Action: a, Need: need}
	}
	return id, nil
}
