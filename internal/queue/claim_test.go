package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/store"
)

// TestWatchClaim: a child's context ends with ErrClaimLost once its item
// is interrupted by another replica or claimed again after a retry, and
// stays alive while its claim holds.
func TestWatchClaim(t *testing.T) {
	tests := []struct {
		name string
		// lose takes the claim away from owner "a".
		lose func(t *testing.T, st *store.Store, id string)
	}{
		{"interrupted by another replica", func(t *testing.T, st *store.Store, id string) {
			if ids, err := st.ExpireLeases(context.Background(), time.Now().Add(time.Hour)); err != nil || len(ids) != 1 {
				t.Fatalf("expire: %v %v", ids, err)
			}
		}},
		{"retried and claimed again", func(t *testing.T, st *store.Store, id string) {
			ctx := context.Background()
			if _, err := st.ExpireLeases(ctx, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if err := st.Requeue(ctx, id); err != nil {
				t.Fatal(err)
			}
			if _, err := st.ClaimQueued(ctx, "b", time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := store.Open(ctx, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			it := &store.QueueItem{Repo: "/r", Event: "push", Branch: "main", SHA: "x"}
			if _, err := st.Enqueue(ctx, it); err != nil {
				t.Fatal(err)
			}
			if _, err := st.ClaimQueued(ctx, "a", time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			wctx, stop, err := WatchClaim(ctx, st, it.ID, 10*time.Millisecond, nil)
			if err != nil {
				t.Fatalf("WatchClaim of a running item: %v", err)
			}
			defer stop()
			// The claim holds through a lease renewal.
			if _, err := st.RenewLease(ctx, it.ID, "a", time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond) // several checks
			if err := wctx.Err(); err != nil {
				t.Fatalf("context ended while the claim holds: %v", context.Cause(wctx))
			}
			tt.lose(t, st, it.ID)
			<-wctx.Done()
			if cause := context.Cause(wctx); !errors.Is(cause, ErrClaimLost) {
				t.Fatalf("cause: got %v, want ErrClaimLost", cause)
			}
			// A child started after the claim was lost does not run.
			if _, _, err := WatchClaim(ctx, st, it.ID, time.Second, nil); tt.name == "interrupted by another replica" && !errors.Is(err, ErrClaimLost) {
				t.Fatalf("WatchClaim of an interrupted item: got %v, want ErrClaimLost", err)
			}
		})
	}
}
