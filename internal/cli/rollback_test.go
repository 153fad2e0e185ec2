package cli

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/store"
)

// TestRollbackAfterFailedDeploy: on_failure rollback after a deploy that
// never served, or when the environment had no earlier revision, changes
// nothing and says why as a note; after a deploy that replaced an earlier
// one, it rolls back.
func TestRollbackAfterFailedDeploy(t *testing.T) {
	v1 := runtime.Revision{Number: 1, Digest: "sha256:aaa", Status: "superseded"}
	v2 := runtime.Revision{Number: 2, Digest: "sha256:bbb", Status: "serving"}
	failed := runtime.Revision{Number: 3, Digest: "sha256:ccc", Status: "failed"}
	first := runtime.Revision{Number: 1, Digest: "sha256:aaa", Status: "serving"}
	firstFailed := runtime.Revision{Number: 1, Digest: "sha256:aaa", Status: "failed"}
	firstRefused := runtime.Revision{Number: 1, Digest: "sha256:aaa", Status: "refused"}
	for _, tc := range []struct {
		name          string
		hist          []runtime.Revision
		histErr       error
		wantRollbacks int
		wantOut       string
	}{
		{"newest never served", []runtime.Revision{v1, v2, failed}, nil, 0, "rollback staging: nothing to roll back: revision 3 (failed) never served; revision 2 (sha256:bbb) still serves"},
		{"newest serves", []runtime.Revision{v1, v2}, nil, 1, "rollback staging: sha256:bbb -> "},
		{"first deploy serves, a later step failed", []runtime.Revision{first}, nil, 0, "rollback staging: nothing rolled back: staging had no earlier revision that served; revision 1 (sha256:aaa) still serves"},
		{"first deploy failed", []runtime.Revision{firstFailed}, nil, 0, "rollback staging: nothing rolled back: staging had no earlier revision that served; revision 1 (failed) never served"},
		{"first deploy refused", []runtime.Revision{firstRefused}, nil, 0, "rollback staging: nothing rolled back: staging had no earlier revision that served; revision 1 (refused) never served"},
		{"first deploy recorded nothing", nil, nil, 0, "rollback staging: nothing rolled back: staging had no earlier revision that served (no deploy to it was recorded)"},
		{"environment unknown to the controller", nil, fmt.Errorf("environment staging: %w", store.ErrNotFound), 0, "rollback staging: nothing rolled back: staging had no earlier revision that served (no deploy to it was recorded)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &controller{hist: tc.hist, histErr: tc.histErr}
			if cur := servingOf(tc.hist); cur != nil {
				c.current = cur
			}
			withController(t, c)
			var out, logs bytes.Buffer
			r := &rollbacker{stateDir: t.TempDir(), stages: []string{"deploy"}, out: &out, log: slog.New(slog.NewTextHandler(&logs, nil))}
			if err := r.Rollback(context.Background(), "staging"); err != nil {
				t.Fatal(err)
			}
			if got := len(c.rollbacks); got != tc.wantRollbacks {
				t.Errorf("rollbacks: got %d, want %d", got, tc.wantRollbacks)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output: got %q, want it to contain %q", out.String(), tc.wantOut)
			}
			if strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("logs: got %q, want no warning or error", logs.String())
			}
		})
	}
}

// TestRunFirstDeployRollbackIsANote: a run whose stage fails after the
// environment's first deploy has on_failure rollback print a note that
// nothing was rolled back, with no warning and no failed failure action.
func TestRunFirstDeployRollbackIsANote(t *testing.T) {
	repo := rollbackRepo(t)
	first := runtime.Revision{Number: 1, Digest: "sha256:new", Status: "serving"}
	c := &controller{current: &first, hist: []runtime.Revision{first}}
	withController(t, c)
	out, code := runCLI(t, "", "run", "--dir", repo, "--progress", "plain")
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	if want := "rollback staging: nothing rolled back: staging had no earlier revision that served; revision 1 (sha256:new) still serves"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	for _, bad := range []string{"WARN", "failure action failed", "no revision to roll back to"} {
		if strings.Contains(out, bad) {
			t.Errorf("output has %q:\n%s", bad, out)
		}
	}
	if len(c.rollbacks) != 0 {
		t.Errorf("rollbacks: got %q, want none", c.rollbacks)
	}
}
