package store

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRunRecordsPipelineAndRequest(t *testing.T) { eachBackend(t, testRunRecordsPipelineAndRequest) }

func testRunRecordsPipelineAndRequest(t *testing.T, be *backend) {
	ctx := context.Background()
	s := be.open(t, t.TempDir())
	src := []byte("name: p\n# exact bytes, comments included\r\n")
	r := &Run{Pipeline: "p", PipelineFile: ".gantry/pipeline.yaml", PipelineSource: src,
		Request: RunRequest{Stages: []string{"build"}, From: "a", Until: "b", NoCache: true, Actor: "ann"}}
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.PipelineSource) != string(src) || got.PipelineFile != r.PipelineFile {
		t.Errorf("pipeline: got %q %q, want %q %q", got.PipelineFile, got.PipelineSource, r.PipelineFile, src)
	}
	if !reflect.DeepEqual(got.Request, r.Request) {
		t.Errorf("request: got %+v, want %+v", got.Request, r.Request)
	}
}

// waitingRun creates a run that waits for approval of stage prod.
func waitingRun(t *testing.T, s *Store, deadline time.Time) (*Run, *Approval) {
	t.Helper()
	ctx := context.Background()
	r := &Run{Pipeline: "p"}
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	a := &Approval{RunID: r.ID, Stage: "prod", RequestedRoles: "oncall-lead", Deadline: deadline}
	if err := s.RequestApproval(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.PutStage(ctx, &Stage{RunID: r.ID, Name: "prod", Status: StatusWaiting}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ctx, r.ID, StatusWaiting, "stage prod waits", time.Time{}); err != nil {
		t.Fatal(err)
	}
	return r, a
}

func statusOf(t *testing.T, s *Store, id int64) (Status, Status) {
	t.Helper()
	r, err := s.GetRun(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	stages, err := s.Stages(context.Background(), id)
	if err != nil || len(stages) != 1 {
		t.Fatalf("stages: %+v, %v", stages, err)
	}
	return r.Status, stages[0].Status
}

func TestDecide(t *testing.T) { eachBackend(t, testDecide) }

func testDecide(t *testing.T, be *backend) {
	ctx := context.Background()
	s := be.open(t, t.TempDir())

	t.Run("reject ends the waiting run", func(t *testing.T) {
		r, a := waitingRun(t, s, time.Time{})
		d := Decision{Status: ApprovalRejected, Actor: "bob", Comment: "not today", Digest: "sha256:ab", Evidence: `[{"name":"build"}]`, At: t0}
		if err := s.Decide(ctx, a.ID, d); err != nil {
			t.Fatal(err)
		}
		if run, stage := statusOf(t, s, r.ID); run != StatusRejected || stage != StatusRejected {
			t.Errorf("after reject: run %s, stage %s; want rejected, rejected", run, stage)
		}
		aps, _ := s.Approvals(ctx, r.ID)
		if got := aps[0]; got.Actor != "bob" || got.Digest != d.Digest || got.Evidence != d.Evidence || !got.Decided.Equal(t0) {
			t.Errorf("approval: got %+v, want the decision recorded", got)
		}
		if err := s.Decide(ctx, a.ID, Decision{Status: ApprovalApproved, Actor: "ann"}); !errors.Is(err, ErrAlreadyDecided) {
			t.Errorf("second decision: error %v, want ErrAlreadyDecided", err)
		}
	})
	t.Run("approve leaves the run waiting for its resumption", func(t *testing.T) {
		r, a := waitingRun(t, s, time.Time{})
		if err := s.Decide(ctx, a.ID, Decision{Status: ApprovalApproved, Actor: "ann"}); err != nil {
			t.Fatal(err)
		}
		if run, stage := statusOf(t, s, r.ID); run != StatusWaiting || stage != StatusWaiting {
			t.Errorf("after approve: run %s, stage %s; want waiting, waiting", run, stage)
		}
	})
}

func TestExpireApprovals(t *testing.T) { eachBackend(t, testExpireApprovals) }

func testExpireApprovals(t *testing.T, be *backend) {
	ctx := context.Background()
	s := be.open(t, t.TempDir())
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	expired, _ := waitingRun(t, s, now.Add(-time.Second))
	later, _ := waitingRun(t, s, now.Add(time.Hour))
	never, _ := waitingRun(t, s, time.Time{})

	got, err := s.ExpireApprovals(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].RunID != expired.ID || got[0].Status != ApprovalRejected || !strings.Contains(got[0].Comment, "timed out") {
		t.Fatalf("ExpireApprovals: got %+v, want run %d's approval rejected as timed out", got, expired.ID)
	}
	for _, tc := range []struct {
		id   int64
		want Status
	}{{expired.ID, StatusRejected}, {later.ID, StatusWaiting}, {never.ID, StatusWaiting}} {
		if run, stage := statusOf(t, s, tc.id); run != tc.want || stage != tc.want {
			t.Errorf("run %d: got %s/%s, want %s", tc.id, run, stage, tc.want)
		}
	}
	if again, err := s.ExpireApprovals(ctx, now); err != nil || len(again) != 0 {
		t.Errorf("second ExpireApprovals: %+v, %v; want nothing", again, err)
	}
}

func TestResumeRunHeld(t *testing.T) { eachBackend(t, testResumeRunHeld) }

func testResumeRunHeld(t *testing.T, be *backend) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := be.open(t, dir), be.open(t, dir)
	r, _ := waitingRun(t, a, time.Time{})
	if err := a.ResumeRun(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.ResumeRun(ctx, r.ID); !errors.Is(err, ErrRunHeld) {
		t.Errorf("ResumeRun of a run held by another store: error %v, want ErrRunHeld", err)
	}
	// a's holder dies (Close abandons the lock): b recovers and resumes it.
	a.Close()
	if err := b.ResumeRun(ctx, r.ID); err != nil {
		t.Errorf("ResumeRun of an abandoned run: %v", err)
	}
	if got, _ := b.GetRun(ctx, r.ID); got.Status != StatusRunning || got.Message != "" {
		t.Errorf("resumed run: %s %q, want running with no message", got.Status, got.Message)
	}
}
