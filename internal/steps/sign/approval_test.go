package sign

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/evidence"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
)

// TestSignAttestsApproval: a sign step that runs after an approval was
// granted attests it; verify --require approval then passes for that
// digest and fails for one signed without it.
func TestSignAttestsApproval(t *testing.T) {
	ctx := t.Context()
	state := t.TempDir()
	sign := func(approvals []step.ApprovalView) {
		t.Helper()
		d, prov := pushed(t)
		env, log, _ := steptest.NewEnv(t, t.TempDir(), "promote-prod", "sign")
		env.StateDir = state
		env.Vars = append(env.Vars, signing.PasswordEnv+"=", registry.EnvAddr+"="+d.RegistryStr())
		env.Outputs = func(stage, st string) (map[string]any, bool) {
			switch stage + "/" + st {
			case "build-test/push":
				return map[string]any{"image": d.String()}, true
			case "build-test/image":
				return map[string]any{"provenance": prov}, true
			}
			return nil, false
		}
		env.Run = func() step.RunView { return step.RunView{Pipeline: "p", Approvals: approvals} }
		impl, err := Kind.New(steptest.Inputs{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := impl.Run(ctx, env); err != nil {
			t.Fatalf("%v\n%s", err, log)
		}
		v, err := signing.LoadVerifier(ctx, filepath.Join(signing.DefaultKeyDir(state), signing.PublicKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		atts, err := signing.VerifyAttestations(ctx, d, v)
		if err != nil {
			t.Fatal(err)
		}
		_, err = evidence.Check(atts, []string{evidence.GateApproval}, evidence.CheckOptions{})
		switch {
		case len(approvals) > 0 && err != nil:
			t.Errorf("approved digest: verify --require approval: %v", err)
		case len(approvals) == 0 && !errors.Is(err, evidence.ErrMissing):
			t.Errorf("digest without approval: verify --require approval: error %v, want ErrMissing", err)
		}
	}
	sign([]step.ApprovalView{{Stage: "promote-prod", Actor: "alice", Roles: []string{"oncall-lead"}, Decided: time.Now()}})
	sign(nil)
}
