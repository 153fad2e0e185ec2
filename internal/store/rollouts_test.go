package store

import (
	"context"
	"errors"
	"testing"
)

func TestPreviewPortKeptAndExclusive(t *testing.T) { eachBackend(t, testPreviewPortKeptAndExclusive) }

func testPreviewPortKeptAndExclusive(t *testing.T, be *backend) {
	ctx := context.Background()
	dir := t.TempDir()
	s := be.open(t, dir)
	if _, err := s.PreviewPort(ctx, "prod", 19001); !errors.Is(err, ErrNotFound) {
		t.Errorf("preview port of an unknown environment: error %v, want ErrNotFound", err)
	}
	for _, e := range []struct {
		name string
		port int
	}{{"prod", 19000}, {"staging", 19100}} {
		if _, err := s.CreateEnvironment(ctx, e.name, e.port); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PreviewPort(ctx, "prod", 19100); !errors.Is(err, ErrPortTaken) {
		t.Errorf("preview port on staging's port: error %v, want ErrPortTaken", err)
	}
	got, err := s.PreviewPort(ctx, "prod", 19001)
	if err != nil || got != 19001 {
		t.Fatalf("PreviewPort = %d, %v; want 19001", got, err)
	}
	if _, err := s.CreateEnvironment(ctx, "qa", 19001); !errors.Is(err, ErrPortTaken) {
		t.Errorf("create an environment on prod's preview port: error %v, want ErrPortTaken", err)
	}
	s.Close()
	s = be.open(t, dir)
	if got, err := s.PreviewPort(ctx, "prod", 19002); err != nil || got != 19001 {
		t.Errorf("after reopen PreviewPort = %d, %v; want the recorded 19001", got, err)
	}
}

func TestRolloutRecordAndEvents(t *testing.T) { eachBackend(t, testRolloutRecordAndEvents) }

func testRolloutRecordAndEvents(t *testing.T, be *backend) {
	ctx := context.Background()
	dir := t.TempDir()
	s := be.open(t, dir)
	if _, err := s.Rollout(ctx, "prod"); !errors.Is(err, ErrNotFound) {
		t.Errorf("rollout of a new environment: error %v, want ErrNotFound", err)
	}
	if _, err := s.CreateEnvironment(ctx, "prod", 19000); err != nil {
		t.Fatal(err)
	}
	r := &Rollout{Environment: "prod", Step: "paused", Phase: "Paused", Stable: 1, Desired: 2, State: []byte(`{"x":1}`)}
	if err := s.PutRollout(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.Step, r.Phase, r.State = "completed", "Healthy", []byte(`{"x":2}`)
	if err := s.PutRollout(ctx, r); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"rollout", "promote"} {
		if err := s.AddRolloutEvent(ctx, &RolloutEvent{Environment: "prod", Revision: 2, Verb: verb, Who: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = be.open(t, dir)
	got, err := s.Rollout(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if got.Step != "completed" || got.Phase != "Healthy" || got.Stable != 1 || got.Desired != 2 || string(got.State) != `{"x":2}` || got.Updated.IsZero() {
		t.Errorf("after reopen: %+v, want the second record", got)
	}
	evs, err := s.RolloutEvents(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Verb != "rollout" || evs[1].Verb != "promote" || evs[1].Who != "alice" || evs[1].At.IsZero() {
		t.Errorf("events = %+v, want rollout then promote by alice", evs)
	}
}
