package e2e

import (
	"context"
	"os/user"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/store"
)

const guardedPipeline = `name: guarded
environments:
  prod: {chart: chart}
stages:
  - name: build
    steps:
      - {name: compile, run: 'cat version.txt'}
  - name: promote-prod
    approval: {required: true, roles: [oncall-lead]}
    steps:
      - {name: bluegreen, uses: blue-green, with: {environment: prod}}
`

// TestRefusalsAreAudited: through the gantry binary, a user who holds
// none of the roles guarding promote-prod is refused both the stage's
// approval (gantry approve) and the rollout's promotion (gantry rollout
// promote): exit 77 each, the run still waiting, and each refusal in the
// store's audit log with who and why.
func TestRefusalsAreAudited(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	e.write(".gantry/approvers.yaml", "oncall-lead: [someone-else]\n")
	e.write(".gantry/pipeline.yaml", guardedPipeline)
	e.write("chart/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n")
	e.write("version.txt", "v1\n")
	e.commitAll("guarded pipeline")

	if r := e.gantry("run", "--progress", "plain"); r.code != 75 {
		t.Fatalf("run: exit %d, want 75 (waiting for approval)\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := e.gantry("approve", "1", "--stage", "promote-prod", "--comment", "let me")
	if r.code != 77 || !strings.Contains(r.stderr, "holds none of the roles oncall-lead") {
		t.Errorf("approve without the role: exit %d, want 77 naming the role\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = e.gantry("rollout", "promote", "prod")
	if r.code != 77 || !strings.Contains(r.stderr, "holds none of the roles oncall-lead") {
		t.Errorf("rollout promote without the role: exit %d, want 77 naming the role\n%s%s", r.code, r.stdout, r.stderr)
	}
	if v := e.show(1); v.Status != "waiting" {
		t.Errorf("run 1 after the refusals: %s, want still waiting", v.Status)
	}

	st, err := store.Open(context.Background(), e.state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log, err := st.AuditLog(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"approval.refused", "rollout.refused"} {
		found := false
		for _, a := range log {
			if a.Action == action && a.Actor == me.Username && strings.Contains(a.Detail, "oncall-lead") {
				found = true
			}
		}
		if !found {
			t.Errorf("audit log has no %s by %s naming the role: %+v", action, me.Username, log)
		}
	}
	for _, a := range log {
		if a.Action == "approval.approve" || a.Action == "rollout.promote" {
			t.Errorf("audit log records a decision that was refused: %+v", a)
		}
	}
}
