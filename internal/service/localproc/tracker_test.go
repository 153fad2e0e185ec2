package localproc_test

import (
	"context"
	"os/exec"
	"syscall"
	"testing"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/service/localproc"
	"github.com/gantry-ci/gantry/internal/store"
)

// TestServiceGroupRecorded: a service's process group is recorded in the
// run store while it runs (so that the next store open ends it if gantry
// is killed) and forgotten when Stop ends it.
func TestServiceGroupRecorded(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run := &store.Run{Pipeline: "p"}
	if err := st.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	tctx := proc.WithTracker(ctx, st.ProcTracker(run.ID, "build", "integration"))
	p, err := localproc.Start(tctx, "sleeper", exec.Command("sleep", "100"))
	if err != nil {
		t.Fatal(err)
	}
	groups, err := st.ProcGroups(ctx, run.ID)
	if err != nil || len(groups) != 1 || groups[0].Group.PGID != p.Pid() || groups[0].Step != "integration" {
		t.Fatalf("ProcGroups while running: got %+v, %v; want the group of pid %d of build/integration", groups, err, p.Pid())
	}
	if err := p.Stop(ctx, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if groups, err := st.ProcGroups(ctx, run.ID); err != nil || len(groups) != 0 {
		t.Errorf("ProcGroups after Stop: got %+v, %v; want none", groups, err)
	}
}
