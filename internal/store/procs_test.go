package store

import (
	"context"
	"testing"

	"github.com/gantry-ci/gantry/internal/proc"
)

func TestProcGroupsRoundTrip(t *testing.T) { eachBackend(t, testProcGroupsRoundTrip) }

func testProcGroupsRoundTrip(t *testing.T, be *backend) {
	ctx := context.Background()
	s := be.open(t, t.TempDir())
	r := &Run{Pipeline: "p"}
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	tr := s.ProcTracker(r.ID, "build", "unit")
	g := proc.Group{PGID: 4242, Start: 99, Boot: "boot"}
	if err := tr.Started(ctx, g); err != nil {
		t.Fatal(err)
	}
	got, err := s.ProcGroups(ctx, r.ID)
	if err != nil || len(got) != 1 || got[0].Group != g || got[0].Stage != "build" || got[0].Step != "unit" || got[0].Started.IsZero() {
		t.Fatalf("ProcGroups: got %+v, %v; want group %+v of build/unit", got, err, g)
	}
	if err := tr.Ended(ctx, g); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ProcGroups(ctx, r.ID); err != nil || len(got) != 0 {
		t.Errorf("ProcGroups after Ended: got %+v, %v; want none", got, err)
	}
}

// TestRecoveryEndsLeftGroups: a run whose process stopped while a step's
// process group ran gets that group ended when the store is next opened;
// a recorded group whose id now belongs to another process is left alone.
func TestRecoveryEndsLeftGroups(t *testing.T) { eachBackend(t, testRecoveryEndsLeftGroups) }

func testRecoveryEndsLeftGroups(t *testing.T, be *backend) {
	ctx := context.Background()
	dir := t.TempDir()
	s1, err := be.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	r := &Run{Pipeline: "p"}
	if err := s1.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s1.PutStep(ctx, &Step{RunID: r.ID, Stage: "build", Name: "unit", Status: StatusRunning}); err != nil {
		t.Fatal(err)
	}
	start := func(ctx context.Context) *proc.Process {
		t.Helper()
		p, err := proc.Start(ctx, proc.Command(ctx, "sleep", "100"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = proc.End(context.Background(), p.Group(), 0); _ = p.Wait() })
		return p
	}
	step := start(proc.WithTracker(ctx, s1.ProcTracker(r.ID, "build", "unit")))
	// Not the step's: recorded with a start time that does not match.
	other := start(ctx)
	reused := &ProcGroup{RunID: r.ID, Stage: "build", Step: "image", Group: other.Group()}
	reused.Group.Start++
	if err := s1.AddProcGroup(ctx, reused); err != nil {
		t.Fatal(err)
	}
	// The process stops: its run lock goes.
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := be.open(t, dir)
	if alive, err := proc.Alive(step.Group()); err != nil || len(alive) != 0 {
		t.Errorf("the step's sleep after recovery: got %+v, %v; want it ended", alive, err)
	}
	if alive, err := proc.Alive(other.Group()); err != nil || len(alive) != 1 {
		t.Errorf("the unrelated sleep after recovery: got %+v, %v; want it running", alive, err)
	}
	if got, err := s2.ProcGroups(ctx, r.ID); err != nil || len(got) != 0 {
		t.Errorf("ProcGroups after recovery: got %+v, %v; want none", got, err)
	}
	evs, err := s2.Events(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var ended []Event
	for _, e := range evs {
		if e.Type == EventProcessesEnded {
			ended = append(ended, e)
		}
	}
	if len(ended) != 1 {
		t.Fatalf("%s events: got %+v, want one", EventProcessesEnded, ended)
	}
	e := ended[0]
	if e.Stage != "build" || e.Step != "unit" || e.Data["pgid"] != float64(step.Pid()) || len(e.Data["processes"].([]any)) != 1 || e.Data["processes"].([]any)[0] != "sleep" {
		t.Errorf("event: got %s/%s %v, want build/unit with pgid %d and processes [sleep]", e.Stage, e.Step, e.Data, step.Pid())
	}
	run, err := s2.GetRun(ctx, r.ID)
	if err != nil || run.Status != StatusInterrupted {
		t.Errorf("run: got %+v, %v; want interrupted", run, err)
	}
}
