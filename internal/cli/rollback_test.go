package cli

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// historyController is a controller whose history the test sets.
type historyController struct {
	controller
	hist []runtime.Revision
}

func (c *historyController) History(context.Context, string) ([]runtime.Revision, error) {
	return c.hist, nil
}

// TestRollbackAfterFailedDeploy: on_failure rollback after a deploy that
// never served changes nothing and says so; after one that serves, it
// rolls back.
func TestRollbackAfterFailedDeploy(t *testing.T) {
	v1 := runtime.Revision{Number: 1, Digest: "sha256:aaa", Status: "superseded"}
	v2 := runtime.Revision{Number: 2, Digest: "sha256:bbb", Status: "serving"}
	failed := runtime.Revision{Number: 3, Digest: "sha256:ccc", Status: "failed"}
	for _, tc := range []struct {
		name          string
		hist          []runtime.Revision
		wantRollbacks int
		wantOut       string
	}{
		{"newest never served", []runtime.Revision{v1, v2, failed}, 0, "rollback staging: nothing to roll back: revision 3 (failed) never served; revision 2 (sha256:bbb) still serves"},
		{"newest serves", []runtime.Revision{v1, v2}, 1, "rollback staging: sha256:bbb -> "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &historyController{hist: tc.hist}
			c.current = &tc.hist[1]
			old := connectDeployer
			t.Cleanup(func() { connectDeployer = old })
			connectDeployer = func(context.Context, string) (runtime.Deployer, error) { return c, nil }
			var out bytes.Buffer
			r := &rollbacker{stateDir: t.TempDir(), stages: []string{"deploy"}, out: &out, log: slog.New(slog.DiscardHandler)}
			if err := r.Rollback(context.Background(), "staging"); err != nil {
				t.Fatal(err)
			}
			if got := len(c.rollbacks); got != tc.wantRollbacks {
				t.Errorf("rollbacks: got %d, want %d", got, tc.wantRollbacks)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output: got %q, want it to contain %q", out.String(), tc.wantOut)
			}
		})
	}
}
