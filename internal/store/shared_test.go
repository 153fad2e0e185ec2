package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
)

// twoStores opens two stores on one database, as two gantry processes
// would: on SQLite both in one state dir, on PostgreSQL each in its own
// (two server replicas).
func twoStores(t *testing.T, be *backend) (a, b *Store) {
	t.Helper()
	dirA, dirB := t.TempDir(), t.TempDir()
	if be.postgres() {
		be.share(dirB, dirA)
	} else {
		dirB = dirA
	}
	return be.open(t, dirA), be.open(t, dirB)
}

// parallel runs fn(store, i) for i in [0, n) on each store at once and
// returns the errors.
func parallel(stores []*Store, n int, fn func(s *Store, i int) error) []error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for k, s := range stores {
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := fn(s, k*n+i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return errs
}

// TestTwoStoresShareADatabase: two stores on one database, used at once,
// neither lose nor duplicate records: 2x50 runs, log batches appended to
// one step (each batch's lines numbered after the last), events, audit
// entries, revisions of one environment, resumptions of one waiting run
// and decisions on the same approvals (exactly one wins each).
func TestTwoStoresShareADatabase(t *testing.T) { eachBackend(t, testTwoStoresShareADatabase) }

func testTwoStoresShareADatabase(t *testing.T, be *backend) {
	ctx := context.Background()
	a, b := twoStores(t, be)
	stores := []*Store{a, b}
	const n = 50

	t.Run("runs", func(t *testing.T) {
		ids := make([]int64, 2*n)
		errs := parallel(stores, n, func(s *Store, i int) error {
			r := &Run{Pipeline: fmt.Sprintf("p%d", i)}
			if err := s.CreateRun(ctx, r); err != nil {
				return err
			}
			ids[i] = r.ID
			return s.FinishRun(ctx, r.ID, StatusPassed, "", t0)
		})
		if len(errs) > 0 {
			t.Fatalf("concurrent CreateRun: %v", errors.Join(errs...))
		}
		seen := map[int64]bool{}
		for _, id := range ids {
			if id == 0 || seen[id] {
				t.Fatalf("run IDs %v: want %d distinct IDs", ids, 2*n)
			}
			seen[id] = true
		}
		runs, err := b.ListRuns(ctx, ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 2*n {
			t.Errorf("ListRuns: got %d runs, want %d", len(runs), 2*n)
		}
	})

	r := &Run{Pipeline: "shared"}
	if err := a.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}

	t.Run("log lines of one step", func(t *testing.T) {
		const perBatch = 3
		// A follower reads what is appended while it is appended, as
		// gantry logs -f does, and must see every line once.
		done := make(chan struct{})
		followed := make(chan []LogLine)
		go func() { // owned by this subtest: it waits on followed
			var got []LogLine
			var cursor int64
			for {
				select {
				case <-done:
					lines, _, err := b.LogsAfter(ctx, r.ID, "build", "unit", cursor)
					if err != nil {
						t.Error(err)
					}
					followed <- append(got, lines...)
					return
				default:
				}
				lines, next, err := b.LogsAfter(ctx, r.ID, "build", "unit", cursor)
				if err != nil {
					t.Error(err)
					followed <- got
					<-done
					return
				}
				got, cursor = append(got, lines...), next
			}
		}()
		errs := parallel(stores, n, func(s *Store, i int) error {
			lines := make([]LogLine, perBatch)
			for j := range lines {
				lines[j].Text = fmt.Sprintf("batch %d line %d", i, j)
			}
			return s.AppendLogs(ctx, r.ID, "build", "unit", lines)
		})
		close(done)
		follow := <-followed
		if len(errs) > 0 {
			t.Fatalf("concurrent AppendLogs: %v", errors.Join(errs...))
		}
		ls, err := a.Logs(ctx, r.ID, "build", "unit", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) != 2*n*perBatch {
			t.Fatalf("got %d lines, want %d", len(ls), 2*n*perBatch)
		}
		for i, l := range ls {
			if l.Seq != int64(i+1) {
				t.Fatalf("line %d has Seq %d, want %d", i, l.Seq, i+1)
			}
		}
		texts := func(ls []LogLine) []string {
			var out []string
			for _, l := range ls {
				out = append(out, l.Text)
			}
			sort.Strings(out)
			return out
		}
		want, got := texts(ls), texts(follow)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("the follower saw %d lines, want each of the %d lines once", len(got), len(want))
		}
	})

	t.Run("events and audit", func(t *testing.T) {
		errs := parallel(stores, n, func(s *Store, i int) error {
			if err := s.AddEvent(ctx, &Event{RunID: r.ID, Type: "e", Data: map[string]any{"i": i}}); err != nil {
				return err
			}
			return s.Audit(ctx, &AuditEntry{Actor: "x", Action: "a", Subject: fmt.Sprint(i)})
		})
		if len(errs) > 0 {
			t.Fatalf("concurrent AddEvent, Audit: %v", errors.Join(errs...))
		}
		evs, err := b.Events(ctx, r.ID)
		if err != nil || len(evs) != 2*n {
			t.Errorf("events: got %d, %v; want %d", len(evs), err, 2*n)
		}
		log, err := a.AuditLog(ctx, 0)
		if err != nil || len(log) != 2*n {
			t.Errorf("audit: got %d, %v; want %d", len(log), err, 2*n)
		}
	})

	t.Run("revisions of one environment", func(t *testing.T) {
		if _, err := a.CreateEnvironment(ctx, "staging", 18080); err != nil {
			t.Fatal(err)
		}
		errs := parallel(stores, n, func(s *Store, i int) error {
			return s.AddEnvRevision(ctx, &EnvRevision{Environment: "staging", Status: RevisionDeploying, Digest: fmt.Sprint(i)})
		})
		if len(errs) > 0 {
			t.Fatalf("concurrent AddEnvRevision: %v", errors.Join(errs...))
		}
		revs, err := b.EnvRevisions(ctx, "staging")
		if err != nil {
			t.Fatal(err)
		}
		for i, rv := range revs {
			if rv.Number != i+1 {
				t.Fatalf("revision %d numbered %d, want %d", i, rv.Number, i+1)
			}
		}
		if len(revs) != 2*n {
			t.Errorf("got %d revisions, want %d", len(revs), 2*n)
		}
		// Switching at once leaves exactly one serving revision.
		errs = parallel(stores, n, func(s *Store, i int) error {
			return s.ServeEnvRevision(ctx, "staging", i+1)
		})
		if len(errs) > 0 {
			t.Fatalf("concurrent ServeEnvRevision: %v", errors.Join(errs...))
		}
		revs, err = a.EnvRevisions(ctx, "staging")
		if err != nil {
			t.Fatal(err)
		}
		serving := 0
		for _, rv := range revs {
			if rv.Status == RevisionServing {
				serving++
			}
		}
		if serving != 1 {
			t.Errorf("%d revisions serving, want 1", serving)
		}
	})

	t.Run("ports of environments", func(t *testing.T) {
		// Each port is asked for by two environments at once: one gets it.
		errs := parallel(stores, n, func(s *Store, i int) error {
			_, err := s.CreateEnvironment(ctx, fmt.Sprintf("env-%d", i), 20000+i%n)
			if errors.Is(err, ErrPortTaken) {
				return nil
			}
			return err
		})
		if len(errs) > 0 {
			t.Fatalf("concurrent CreateEnvironment: %v", errors.Join(errs...))
		}
		envs, err := a.Environments(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ports := map[int]int{}
		for _, e := range envs {
			if e.Name != "staging" {
				ports[e.Port]++
			}
		}
		for p, c := range ports {
			if c != 1 {
				t.Errorf("port %d held by %d environments, want 1", p, c)
			}
		}
		if len(ports) != n {
			t.Errorf("%d ports allocated, want %d", len(ports), n)
		}
	})

	t.Run("resumptions", func(t *testing.T) {
		w := &Run{Pipeline: "waits"}
		if err := a.CreateRun(ctx, w); err != nil {
			t.Fatal(err)
		}
		if err := a.FinishRun(ctx, w.ID, StatusWaiting, "", t0); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		resumed := 0
		errs := parallel(stores, n, func(s *Store, i int) error {
			err := s.ResumeRun(ctx, w.ID)
			if errors.Is(err, ErrRunHeld) {
				return nil
			}
			if err == nil {
				mu.Lock()
				resumed++
				mu.Unlock()
			}
			return err
		})
		if len(errs) > 0 {
			t.Fatalf("concurrent ResumeRun: %v", errors.Join(errs...))
		}
		if resumed != 1 {
			t.Errorf("the waiting run was resumed %d times, want once", resumed)
		}
	})

	t.Run("decisions", func(t *testing.T) {
		approvals := make([]int64, n)
		for i := range approvals {
			ap := &Approval{RunID: r.ID, Stage: fmt.Sprintf("s%d", i)}
			if err := a.RequestApproval(ctx, ap); err != nil {
				t.Fatal(err)
			}
			approvals[i] = ap.ID
		}
		var mu sync.Mutex
		won := map[int64]int{}
		errs := parallel(stores, n, func(s *Store, i int) error {
			id := approvals[i%n]
			err := s.Decide(ctx, id, Decision{Status: ApprovalApproved, Actor: fmt.Sprint(i)})
			if errors.Is(err, ErrAlreadyDecided) {
				return nil
			}
			if err == nil {
				mu.Lock()
				won[id]++
				mu.Unlock()
			}
			return err
		})
		if len(errs) > 0 {
			t.Fatalf("concurrent Decide: %v", errors.Join(errs...))
		}
		for _, id := range approvals {
			if won[id] != 1 {
				t.Errorf("approval %d decided %d times, want once", id, won[id])
			}
		}
	})
}
