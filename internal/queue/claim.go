package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/internal/store"
)

// ErrClaimLost is the cause of a child run's end when its queue item is
// no longer running under the claim the child started with: the server
// that claimed it stopped renewing its lease (killed, frozen, cut off
// from the database) and another replica marked it interrupted, or it was
// retried and claimed again.
var ErrClaimLost = errors.New("the server's claim on this run's queue item was lost")

// ClaimCheckInterval is how often a child run checks its item's claim.
const ClaimCheckInterval = 2 * time.Second

// WatchClaim is the child side of a claim: gantry run started by a worker
// for queue item id calls it once the store is open. It reads the claim
// the item runs under now (its owner and the time it was claimed) and
// returns a context derived from ctx that ends, with cause ErrClaimLost,
// when a check every interval finds the item in another state or under
// another claim. The child then stops its run, so that a run whose server
// was declared dead does not go on beside its retry, on whatever host it
// is. stop ends the checks and waits for them. An item that does not run
// any more at the start is ErrClaimLost at once.
func WatchClaim(ctx context.Context, st *store.Store, id string, interval time.Duration, log *slog.Logger) (_ context.Context, stop func(), _ error) {
	it, err := st.QueueItem(ctx, id)
	if err != nil {
		return nil, nil, fmt.Errorf("read the queue item this run executes: %w", err)
	}
	if it.State != store.QueueRunning {
		return nil, nil, fmt.Errorf("queue item %s is %s, not running: %w", id, it.State, ErrClaimLost)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-wctx.Done():
				return
			case <-t.C:
			}
			now, err := st.QueueItem(wctx, id)
			if err != nil {
				// The database is out of reach: so is every write of
				// the run; the server's lease decides.
				log.Warn("check the claim of the queue item", "item", id, "err", err)
				continue
			}
			if now.State != store.QueueRunning || now.Owner != it.Owner || !now.Started.Equal(it.Started) {
				log.Warn("the queue item of this run is no longer running under its server's claim; stopping the run",
					"item", id, "state", now.State, "claimed_by", it.Owner)
				cancel(fmt.Errorf("queue item %s is %s: %w", id, now.State, ErrClaimLost))
				return
			}
		}
	}()
	var once sync.Once
	return wctx, func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			cancel(nil)
		})
	}, nil
}
