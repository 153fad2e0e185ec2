package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

func openTest(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// t0 has a non-UTC zone and nanoseconds, to check exact round trips.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("X", 3600))

func TestStatusDone(t *testing.T) {
	tests := []struct {
		s    Status
		want bool
	}{
		{StatusPending, false}, {StatusRunning, false}, {StatusAwaitingApproval, false},
		{StatusPassed, true}, {StatusFailed, true}, {StatusSkipped, true}, {StatusCancelled, true},
		{StatusInterrupted, true}, {StatusCached, true},
	}
	for _, tt := range tests {
		if got := tt.s.Done(); got != tt.want {
			t.Errorf("Status(%q).Done() = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestRunRoundTrip(t *testing.T) { eachBackend(t, testRunRoundTrip) }

func testRunRoundTrip(t *testing.T, be *backend) {
	ctx := context.Background()
	s := be.open(t, t.TempDir())
	r := &Run{Pipeline: "payment-service", Dir: "/src", Event: "push", Branch: "main", SHA: "abc123",
		BaseRef: "def456", Trigger: "cli", Started: t0, Params: map[string]string{"env": "staging"}}
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.ID != 1 || r.Status != StatusRunning {
		t.Fatalf("after CreateRun: ID %d, Status %q; want 1, running", r.ID, r.Status)
	}
	got, err := s.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Started.Equal(t0) || !got.Finished.IsZero() {
		t.Errorf("Started %v Finished %v, want %v and zero", got.Started, got.Finished, t0)
	}
	got.Started = r.Started
	if !reflect.DeepEqual(got, r) {
		t.Errorf("GetRun:\n got  %+v\n want %+v", got, r)
	}
	end := t0.Add(time.Minute)
	if err := s.FinishRun(ctx, r.ID, StatusFailed, "gate failed", end); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetRun(ctx, r.ID)
	if got.Status != StatusFailed || got.Message != "gate failed" || !got.Finished.Equal(end) {
		t.Errorf("after FinishRun: %q %q %v, want failed, gate failed, %v", got.Status, got.Message, got.Finished, end)
	}
	// A cancelled run's outcome is recorded even though its ctx is done.
	r2 := &Run{}
	if err := s.CreateRun(ctx, r2); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.FinishRun(cctx, r2.ID, StatusCancelled, "cancelled by user", end); err != nil {
		t.Errorf("FinishRun with a cancelled ctx: %v", err)
	}
	if got, _ := s.GetRun(ctx, r2.ID); got.Status != StatusCancelled {
		t.Errorf("status after FinishRun(cancelled) = %q, want cancelled", got.Status)
	}
	if err := s.FinishRun(ctx, r.ID, StatusRunning, "", end); err == nil {
		t.Errorf("FinishRun(running) succeeded, want an error")
	}
	if _, err := s.GetRun(ctx, 42); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetRun(42) error = %v, want ErrNotFound", err)
	}
	if err := s.FinishRun(ctx, 42, StatusPassed, "", end); !errors.Is(err, ErrNotFound) {
		t.Errorf("FinishRun(42) error = %v, want ErrNotFound", err)
	}
}

func TestListRuns(t *testing.T) { eachBackend(t, testListRuns) }

func testListRuns(t *testing.T, be *backend) {
	ctx := context.Background()
	s := be.open(t, t.TempDir())
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, p := range []string{"a", "b", "a", "a"} {
		r := &Run{Pipeline: p, Branch: []string{"main", "dev"}[i/2], Started: base.Add(time.Duration(i) * time.Hour)}
		if err := s.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := s.FinishRun(ctx, r.ID, StatusPassed, "", time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name string
		opt  ListOptions
		want []int64
	}{
		{"all", ListOptions{}, []int64{4, 3, 2, 1}},
		{"pipeline", ListOptions{Pipeline: "a"}, []int64{4, 3, 1}},
		{"status", ListOptions{Status: StatusPassed}, []int64{3, 1}},
		{"both", ListOptions{Pipeline: "a", Status: StatusRunning}, []int64{4}},
		{"limit", ListOptions{Limit: 2}, []int64{4, 3}},
		{"none", ListOptions{Pipeline: "zzz"}, nil},
		{"branch", ListOptions{Branch: "main"}, []int64{2, 1}},
		{"since", ListOptions{Since: base.Add(2 * time.Hour)}, []int64{4, 3}},
		{"before", ListOptions{Before: 3, Limit: 1}, []int64{2}},
		{"branch and before", ListOptions{Branch: "dev", Before: 4}, []int64{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runs, err := s.ListRuns(ctx, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, r := range runs {
				got = append(got, r.ID)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ListRuns(%+v) IDs = %v, want %v", tt.opt, got, tt.want)
			}
		})
	}
}

func TestStagesAndSteps(t *testing.T) { eachBackend(t, testStagesAndSteps) }

func testStagesAndSteps(t *testing.T, be *backend) {
	ctx := context.Background()
	s := be.open(t, t.TempDir())
	r := &Run{Pipeline: "p"}
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	yes := true
	// Put out of order; update one.
	for _, st := range []*Stage{
		{RunID: r.ID, Name: "build-test", Index: 1, Status: StatusRunning, Gate: "steps.unit.outputs.coverage >= 80"},
		{RunID: r.ID, Name: "commit", Index: 0, Status: StatusRunning, Started: t0},
		{RunID: r.ID, Name: "commit", Index: 0, Status: StatusPassed, Gate: "all_passed", GateResult: &yes, Started: t0, Finished: t0.Add(time.Second)},
	} {
		if err := s.PutStage(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	stages, err := s.Stages(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) != 2 || stages[0].Name != "commit" || stages[1].Name != "build-test" {
		t.Fatalf("Stages = %+v, want commit then build-test", stages)
	}
	if c := stages[0]; c.Status != StatusPassed || c.GateResult == nil || !*c.GateResult || !c.Finished.Equal(t0.Add(time.Second)) {
		t.Errorf("commit stage = %+v, want passed with gate result true", c)
	}
	if stages[1].GateResult != nil {
		t.Errorf("build-test GateResult = %v, want nil (not evaluated)", *stages[1].GateResult)
	}

	steps := []*Step{
		{RunID: r.ID, Stage: "build-test", Name: "unit", Kind: "go-test", Status: StatusPassed, Started: t0.Add(2 * time.Second),
			Outputs: map[string]any{"coverage": 83.5, "packages": []any{"a", "b"}}, CacheKey: "k1", Attempt: 1},
		{RunID: r.ID, Stage: "build-test", Name: "image", Kind: "image-build", Status: StatusPending},
		{RunID: r.ID, Stage: "build-test", Name: "integration", Kind: "go-test", Status: StatusRunning, Started: t0.Add(time.Second)},
		{RunID: r.ID, Stage: "commit", Name: "lint", Kind: "golangci-lint", Status: StatusRunning, Started: t0},
		{RunID: r.ID, Stage: "commit", Name: "lint", Kind: "golangci-lint", Status: StatusPassed, Summary: "0 issues",
			Started: t0, Finished: t0.Add(time.Second), Attempt: 2},
	}
	for _, st := range steps {
		if err := s.PutStep(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Steps(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range got {
		names = append(names, st.Stage+"/"+st.Name)
	}
	want := []string{"commit/lint", "build-test/integration", "build-test/unit", "build-test/image"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("Steps order = %v, want %v", names, want)
	}
	if got[0].Status != StatusPassed || got[0].Summary != "0 issues" || got[0].Attempt != 2 {
		t.Errorf("upserted step = %+v, want passed, 0 issues, attempt 2", got[0])
	}
	if !reflect.DeepEqual(got[2].Outputs, steps[0].Outputs) {
		t.Errorf("outputs = %#v, want %#v", got[2].Outputs, steps[0].Outputs)
	}
}

func TestLogs(t *testing.T) { eachBackend(t, testLogs) }

func testLogs(t *testing.T, be *backend) {
	ctx := context.Background()
	s := be.open(t, t.TempDir())
	r := &Run{}
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	if err := s.AppendLogs(ctx, r.ID, "commit", "lint", []LogLine{{Time: at(0), Text: "l1"}, {Time: at(2), Text: "l2", Stream: "sys"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLogs(ctx, r.ID, "commit", "fmt", []LogLine{{Time: at(1), Text: "f1"}}); err != nil {
		t.Fatal(err)
	}
	batch := []LogLine{{Time: at(3), Text: "l3"}}
	if err := s.AppendLogs(ctx, r.ID, "commit", "lint", batch); err != nil {
		t.Fatal(err)
	}
	if batch[0].Seq != 3 {
		t.Errorf("assigned Seq = %d, want 3", batch[0].Seq)
	}
	text := func(ls []LogLine) (out []string) {
		for _, l := range ls {
			out = append(out, fmt.Sprintf("%s/%s#%d:%s:%s", l.Stage, l.Step, l.Seq, l.Stream, l.Text))
		}
		return out
	}
	tests := []struct {
		name, stage, step string
		after             int64
		want              []string
	}{
		{"step", "commit", "lint", 0, []string{"commit/lint#1:out:l1", "commit/lint#2:sys:l2", "commit/lint#3:out:l3"}},
		{"step after", "commit", "lint", 1, []string{"commit/lint#2:sys:l2", "commit/lint#3:out:l3"}},
		{"whole run by time", "", "", 0, []string{"commit/lint#1:out:l1", "commit/fmt#1:out:f1", "commit/lint#2:sys:l2", "commit/lint#3:out:l3"}},
		{"stage", "commit", "", 0, []string{"commit/lint#1:out:l1", "commit/fmt#1:out:f1", "commit/lint#2:sys:l2", "commit/lint#3:out:l3"}},
		{"unknown step", "commit", "nope", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls, err := s.Logs(ctx, r.ID, tt.stage, tt.step, tt.after)
			if err != nil {
				t.Fatal(err)
			}
			if got := text(ls); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Logs(%q, %q, %d) =\n %v\nwant\n %v", tt.stage, tt.step, tt.after, got, tt.want)
			}
		})
	}
	ls, _ := s.Logs(ctx, r.ID, "commit", "lint", 0)
	if !ls[1].Time.Equal(at(2)) {
		t.Errorf("line time = %v, want %v", ls[1].Time, at(2))
	}
}

func TestArtifactsEventsApprovalsAudit(t *testing.T) {
	eachBackend(t, testArtifactsEventsApprovalsAudit)
}

func testArtifactsEventsApprovalsAudit(t *testing.T, be *backend) {
	ctx := context.Background()
	s := be.open(t, t.TempDir())
	r := &Run{}
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	d1, d2 := "sha256:"+fmt.Sprintf("%064x", 1), "sha256:"+fmt.Sprintf("%064x", 2)
	for _, a := range []*Artifact{
		{RunID: r.ID, Stage: "build-test", Step: "unit", Name: "coverage.out", Digest: d1, Size: 10, Created: t0},
		{RunID: r.ID, Stage: "build-test", Step: "unit", Name: "junit.xml", Digest: d1, Size: 10, MediaType: "application/xml"},
		{RunID: r.ID, Stage: "build-test", Step: "unit", Name: "coverage.out", Digest: d2, Size: 20, Created: t0},
		{RunID: r.ID, Stage: "security", Step: "sbom", Name: "sbom.json", Digest: d2, Size: 20},
	} {
		if err := s.AddArtifact(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.Artifacts(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("Artifacts = %d entries, want 3 (replace on same name): %+v", len(all), all)
	}
	unit, err := s.StepArtifacts(ctx, r.ID, "build-test", "unit")
	if err != nil {
		t.Fatal(err)
	}
	if len(unit) != 2 || unit[0].Name != "coverage.out" || unit[0].Digest != d2 || unit[0].Size != 20 || !unit[0].Created.Equal(t0) {
		t.Errorf("StepArtifacts = %+v, want coverage.out replaced by %s size 20", unit, d2)
	}

	e := &Event{RunID: r.ID, Type: "step.finished", Stage: "commit", Step: "lint", Time: t0, Data: map[string]any{"status": "passed", "n": 3.0}}
	if err := s.AddEvent(ctx, e); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].ID != e.ID || !reflect.DeepEqual(evs[0].Data, e.Data) || !evs[0].Time.Equal(t0) {
		t.Errorf("Events = %+v, want [%+v]", evs, *e)
	}

	a := &Approval{RunID: r.ID, Stage: "promote-prod", RequestedRoles: "oncall-lead"}
	if err := s.RequestApproval(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.DecideApproval(ctx, a.ID, "maybe", "ann", "", t0); err == nil {
		t.Errorf("DecideApproval(maybe) succeeded, want an error")
	}
	if err := s.DecideApproval(ctx, a.ID, ApprovalApproved, "ann", "looks good", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.DecideApproval(ctx, a.ID, ApprovalRejected, "bob", "", t0); !errors.Is(err, ErrAlreadyDecided) {
		t.Errorf("second DecideApproval error = %v, want ErrAlreadyDecided", err)
	}
	if err := s.DecideApproval(ctx, 99, ApprovalRejected, "bob", "", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("DecideApproval(99) error = %v, want ErrNotFound", err)
	}
	aps, err := s.Approvals(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(aps) != 1 || aps[0].Status != ApprovalApproved || aps[0].Actor != "ann" || aps[0].Comment != "looks good" ||
		!aps[0].Decided.Equal(t0) || aps[0].RequestedRoles != "oncall-lead" {
		t.Errorf("Approvals = %+v, want one approved by ann", aps)
	}

	for _, act := range []string{"run.start", "approve", "rollback"} {
		if err := s.Audit(ctx, &AuditEntry{Actor: "ann", Action: act, Subject: "run 1"}); err != nil {
			t.Fatal(err)
		}
	}
	log, err := s.AuditLog(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 || log[0].Action != "rollback" || log[1].Action != "approve" {
		t.Errorf("AuditLog(2) = %+v, want rollback, approve", log)
	}
}

func TestLookupCache(t *testing.T) { eachBackend(t, testLookupCache) }

func testLookupCache(t *testing.T, be *backend) {
	ctx := context.Background()
	s := be.open(t, t.TempDir())
	mk := func(status Status, key string, out float64) int64 {
		r := &Run{}
		if err := s.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := s.PutStep(ctx, &Step{RunID: r.ID, Stage: "build", Name: "unit", Status: status, CacheKey: key,
			Outputs: map[string]any{"coverage": out}}); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishRun(ctx, r.ID, StatusPassed, "", time.Time{}); err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	mk(StatusPassed, "k", 80)
	second := mk(StatusCached, "k", 81)
	mk(StatusFailed, "k", 10)
	mk(StatusPassed, "other", 99)

	got, err := s.LookupCache(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if got.RunID != second || got.Outputs["coverage"] != 81.0 {
		t.Errorf("LookupCache(k) = run %d outputs %v, want run %d coverage 81", got.RunID, got.Outputs, second)
	}
	if err := s.DeleteRun(ctx, second); err != nil {
		t.Fatal(err)
	}
	got, err = s.LookupCache(ctx, "k")
	if err != nil || got.RunID != 1 {
		t.Errorf("after deleting run %d: LookupCache(k) = %+v, %v; want run 1", second, got, err)
	}
	for _, k := range []string{"", "missing"} {
		if _, err := s.LookupCache(ctx, k); !errors.Is(err, ErrNotFound) {
			t.Errorf("LookupCache(%q) error = %v, want ErrNotFound", k, err)
		}
	}
}

// TestConcurrentWrites drives the store the way parallel steps do.
func TestConcurrentWrites(t *testing.T) { eachBackend(t, testConcurrentWrites) }

func testConcurrentWrites(t *testing.T, be *backend) {
	ctx := context.Background()
	s := be.open(t, t.TempDir())
	r := &Run{}
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	const workers, batches, perBatch = 6, 20, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("s%d", w)
			for b := range batches {
				lines := make([]LogLine, perBatch)
				for i := range lines {
					lines[i].Text = fmt.Sprintf("%d", b*perBatch+i)
				}
				if err := s.AppendLogs(ctx, r.ID, "st", name, lines); err != nil {
					errs <- err
					return
				}
				if err := s.PutStep(ctx, &Step{RunID: r.ID, Stage: "st", Name: name, Status: StatusRunning, Attempt: b}); err != nil {
					errs <- err
					return
				}
				if _, err := s.Steps(ctx, r.ID); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := range workers {
		ls, err := s.Logs(ctx, r.ID, "st", fmt.Sprintf("s%d", w), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) != batches*perBatch {
			t.Fatalf("step s%d: %d lines, want %d", w, len(ls), batches*perBatch)
		}
		for i, l := range ls {
			if l.Seq != int64(i+1) || l.Text != fmt.Sprint(i) {
				t.Fatalf("step s%d line %d = #%d %q, want #%d %q", w, i, l.Seq, l.Text, i+1, fmt.Sprint(i))
			}
		}
	}
}
