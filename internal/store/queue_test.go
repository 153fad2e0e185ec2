package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestRecordDeliveryRefusesReplay(t *testing.T) {
	eachBackend(t, func(t *testing.T, be *backend) {
		ctx := context.Background()
		s := be.open(t, t.TempDir())
		if err := s.RecordDelivery(ctx, "github", "d-1", "push"); err != nil {
			t.Fatalf("first delivery: %v", err)
		}
		if err := s.RecordDelivery(ctx, "github", "d-1", "push"); !errors.Is(err, ErrDeliveryReplayed) {
			t.Fatalf("replayed delivery: got %v, want ErrDeliveryReplayed", err)
		}
		// The same id from another forge is another delivery.
		if err := s.RecordDelivery(ctx, "gitea", "d-1", "push"); err != nil {
			t.Fatalf("same id, other forge: %v", err)
		}
	})
}

// TestClaimQueuedOnce has two stores on one database (two server
// replicas) race for the same items: each item is claimed exactly once.
func TestClaimQueuedOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, be *backend) {
		ctx := context.Background()
		dir := t.TempDir()
		a, b := be.open(t, dir), be.open(t, dir)
		const n = 20
		for i := range n {
			if _, err := a.Enqueue(ctx, &QueueItem{Repo: "/r", Event: "push", Branch: fmt.Sprintf("b%d", i), SHA: "x"}); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		claimed := map[string]string{}
		var wg sync.WaitGroup
		for w, s := range []*Store{a, b, a, b} {
			owner := fmt.Sprintf("owner-%d", w)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					it, err := s.ClaimQueued(ctx, owner, time.Now().Add(time.Minute))
					if errors.Is(err, ErrNotQueued) {
						return
					}
					if err != nil {
						t.Errorf("claim: %v", err)
						return
					}
					mu.Lock()
					if prev, ok := claimed[it.ID]; ok {
						t.Errorf("item %s claimed by %s and %s", it.ID, prev, owner)
					}
					claimed[it.ID] = owner
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(claimed) != n {
			t.Fatalf("claimed %d items, want %d", len(claimed), n)
		}
	})
}

func TestEnqueueCancelsPreviousPush(t *testing.T) {
	eachBackend(t, func(t *testing.T, be *backend) {
		ctx := context.Background()
		s := be.open(t, t.TempDir())
		running := &QueueItem{Repo: "/r", Event: "push", Branch: "main", SHA: "1", CancelPrevious: true}
		if _, err := s.Enqueue(ctx, running); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ClaimQueued(ctx, "me", time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		queued := &QueueItem{Repo: "/r", Event: "push", Branch: "main", SHA: "2", CancelPrevious: true}
		keep := &QueueItem{Repo: "/r", Event: "push", Branch: "main", SHA: "k", CancelPrevious: false}
		other := &QueueItem{Repo: "/r", Event: "push", Branch: "dev", SHA: "3", CancelPrevious: true}
		for _, it := range []*QueueItem{queued, keep, other} {
			if _, err := s.Enqueue(ctx, it); err != nil {
				t.Fatal(err)
			}
		}
		newest := &QueueItem{Repo: "/r", Event: "push", Branch: "main", SHA: "4", CancelPrevious: true}
		got, err := s.Enqueue(ctx, newest)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Errorf("superseded = %v, want the running and the queued item of main", got)
		}
		tests := []struct {
			it        *QueueItem
			state     QueueState
			cancelAsk bool
		}{
			{running, QueueRunning, true},
			{queued, QueueCancelled, false},
			{keep, QueueQueued, false},
			{other, QueueQueued, false},
			{newest, QueueQueued, false},
		}
		for _, tt := range tests {
			t.Run(tt.it.SHA, func(t *testing.T) {
				it, err := s.QueueItem(ctx, tt.it.ID)
				if err != nil {
					t.Fatal(err)
				}
				if it.State != tt.state || it.CancelRequested != tt.cancelAsk {
					t.Errorf("state %s cancel_requested %v, want %s %v", it.State, it.CancelRequested, tt.state, tt.cancelAsk)
				}
			})
		}
		cancel, err := s.RenewLease(ctx, running.ID, "me", time.Now().Add(time.Minute))
		if err != nil || !cancel {
			t.Errorf("RenewLease of the superseded running item = %v, %v; want true, nil", cancel, err)
		}
	})
}

func TestExpireLeasesInterruptsAndRequeue(t *testing.T) {
	eachBackend(t, func(t *testing.T, be *backend) {
		ctx := context.Background()
		s := be.open(t, t.TempDir())
		it := &QueueItem{Repo: "/r", Event: "push", Branch: "main", SHA: "1"}
		if _, err := s.Enqueue(ctx, it); err != nil {
			t.Fatal(err)
		}
		lease := time.Now().Add(time.Minute)
		if _, err := s.ClaimQueued(ctx, "dead", lease); err != nil {
			t.Fatal(err)
		}
		if ids, err := s.ExpireLeases(ctx, lease.Add(-time.Second)); err != nil || len(ids) != 0 {
			t.Fatalf("ExpireLeases before the deadline = %v, %v; want none", ids, err)
		}
		ids, err := s.ExpireLeases(ctx, lease.Add(time.Second))
		if err != nil || len(ids) != 1 || ids[0] != it.ID {
			t.Fatalf("ExpireLeases after the deadline = %v, %v; want [%s]", ids, err, it.ID)
		}
		if _, err := s.RenewLease(ctx, it.ID, "dead", lease.Add(time.Hour)); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("RenewLease after expiry: %v, want ErrLeaseLost", err)
		}
		if err := s.FinishQueued(ctx, it.ID, "dead", QueuePassed, 0, ""); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("FinishQueued after expiry: %v, want ErrLeaseLost", err)
		}
		got, _ := s.QueueItem(ctx, it.ID)
		if got.State != QueueInterrupted {
			t.Fatalf("state %s, want interrupted", got.State)
		}
		if err := s.Requeue(ctx, it.ID); err != nil {
			t.Fatalf("Requeue: %v", err)
		}
		again, err := s.ClaimQueued(ctx, "alive", time.Now().Add(time.Minute))
		if err != nil || again.ID != it.ID || again.Owner != "alive" {
			t.Fatalf("claim after requeue = %+v, %v", again, err)
		}
	})
}

func TestRequestCancel(t *testing.T) {
	eachBackend(t, func(t *testing.T, be *backend) {
		ctx := context.Background()
		s := be.open(t, t.TempDir())
		it := &QueueItem{Repo: "/r", Event: "push", Branch: "main", SHA: "1"}
		if _, err := s.Enqueue(ctx, it); err != nil {
			t.Fatal(err)
		}
		if st, err := s.RequestCancel(ctx, it.ID, "by test"); err != nil || st != QueueQueued {
			t.Fatalf("RequestCancel = %s, %v", st, err)
		}
		got, _ := s.QueueItem(ctx, it.ID)
		if got.State != QueueCancelled || got.Message != "by test" {
			t.Errorf("got %s %q, want cancelled %q", got.State, got.Message, "by test")
		}
		if _, err := s.RequestCancel(ctx, "q-none", ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("RequestCancel of an unknown item: %v, want ErrNotFound", err)
		}
	})
}

// TestClaimQueuedHonoursConcurrency has four claimers on two stores of
// one database (two replicas with two workers each) race for the items of
// a pipeline limited to 2 running items and of one without a limit: the
// limit holds across the stores, the unlimited pipeline is not held up
// behind the limited one, and a finished item frees a slot.
func TestClaimQueuedHonoursConcurrency(t *testing.T) {
	eachBackend(t, func(t *testing.T, be *backend) {
		ctx := context.Background()
		a, b := twoStores(t, be)
		const limited, free = 10, 5
		for i := range limited + free {
			it := &QueueItem{Repo: "/limited", Event: "push", Branch: fmt.Sprintf("b%d", i), SHA: "x", Concurrency: 2}
			if i%3 == 2 { // interleaved, so that free items stand behind limited ones
				it = &QueueItem{Repo: "/free", Event: "push", Branch: fmt.Sprintf("b%d", i), SHA: "x"}
			}
			if _, err := a.Enqueue(ctx, it); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		var claimed []QueueItem
		var wg sync.WaitGroup
		for w, s := range []*Store{a, b, a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					it, err := s.ClaimQueued(ctx, fmt.Sprintf("owner-%d", w), time.Now().Add(time.Minute))
					if errors.Is(err, ErrNotQueued) {
						return
					}
					if err != nil {
						t.Errorf("claim: %v", err)
						return
					}
					mu.Lock()
					claimed = append(claimed, it)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		count := func(st QueueState) map[string]int {
			items, err := a.QueueItems(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			n := map[string]int{}
			for _, it := range items {
				n[it.Repo]++
			}
			return n
		}
		running := count(QueueRunning)
		if running["/limited"] != 2 || running["/free"] != free {
			t.Fatalf("running after the race: got %v, want 2 /limited and %d /free", running, free)
		}
		if len(claimed) != 2+free {
			t.Fatalf("claims: got %d, want %d", len(claimed), 2+free)
		}
		var done string
		for _, it := range claimed {
			if it.Repo == "/limited" {
				if it.Concurrency != 2 {
					t.Fatalf("claimed item's concurrency: got %d, want 2", it.Concurrency)
				}
				done = it.ID
				if err := a.FinishQueued(ctx, it.ID, it.Owner, QueuePassed, 0, ""); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
		it, err := b.ClaimQueued(ctx, "owner-x", time.Now().Add(time.Minute))
		if err != nil {
			t.Fatalf("claim after %s finished: %v", done, err)
		}
		if it.Repo != "/limited" {
			t.Fatalf("claim after a /limited item finished: got an item of %s", it.Repo)
		}
		if _, err := a.ClaimQueued(ctx, "owner-y", time.Now().Add(time.Minute)); !errors.Is(err, ErrNotQueued) {
			t.Fatalf("claim with /limited full again: got %v, want ErrNotQueued", err)
		}
	})
}
