package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// QueueState is the state of a run queue item.
type QueueState string

// States of a queue item. Queued and running items are live; the others
// are final, except waiting (the run waits for an approval and holds no
// worker; its continuation is a new item of kind resume).
const (
	QueueQueued      QueueState = "queued"
	QueueRunning     QueueState = "running"
	QueueWaiting     QueueState = "waiting"
	QueuePassed      QueueState = "passed"
	QueueFailed      QueueState = "failed"
	QueueCancelled   QueueState = "cancelled"
	QueueInterrupted QueueState = "interrupted"
)

// Done reports whether nothing more happens to an item in state q.
func (q QueueState) Done() bool {
	switch q {
	case QueuePassed, QueueFailed, QueueCancelled, QueueInterrupted, QueueWaiting:
		return true
	}
	return false
}

// Kinds of queue items.
const (
	QueueKindRun    = "run"    // a new run of a commit
	QueueKindResume = "resume" // the continuation of a run that waited
)

// ErrDeliveryReplayed is returned by RecordDelivery for a delivery id
// already recorded.
var ErrDeliveryReplayed = errors.New("webhook delivery already received")

// ErrLeaseLost is returned by RenewLease and FinishQueued when the item is
// no longer running under the caller's ownership (its lease lapsed and it
// was marked interrupted, or another owner holds it).
var ErrLeaseLost = errors.New("queue item lease lost")

// ErrNotQueued is returned by ClaimQueued when no item waits.
var ErrNotQueued = errors.New("no queued run")

// QueueItem is one entry of the run queue.
type QueueItem struct {
	ID    string
	Kind  string
	State QueueState
	// Repo is the configured clone URL or local path the commit comes
	// from (never a URL taken from a webhook payload).
	Repo                     string
	Event, Branch, Base, SHA string
	Vars                     map[string]string
	// Trigger says what queued the item ("webhook:github", "api");
	// Actor who.
	Trigger, Actor string
	// CancelPrevious: a newer push to the same branch cancels this item.
	CancelPrevious bool
	// Concurrency is the most items of the same repository (its
	// pipeline) that may run at once, across every process sharing the
	// database; 0 is no limit.
	Concurrency int
	// RunID is the run the item executes (0 until its process created it).
	RunID           int64
	Owner           string
	LeaseUntil      time.Time
	CancelRequested bool
	Workspace       string
	ExitCode        int
	Message         string
	Created         time.Time
	Started         time.Time
	Finished        time.Time
}

const queueColumns = `id, kind, state, repo, event, branch, base_ref, sha, vars, trigger_by, actor, cancel_previous,
	run_id, owner, lease_until, cancel_requested, workspace, exit_code, message, created, started, finished, concurrency`

func scanQueueItem(row interface{ Scan(...any) error }) (QueueItem, error) {
	var (
		it             QueueItem
		vars           string
		cp, cr         int
		state          string
		lease, c, s, f int64
	)
	if err := row.Scan(&it.ID, &it.Kind, &state, &it.Repo, &it.Event, &it.Branch, &it.Base, &it.SHA, &vars, &it.Trigger, &it.Actor, &cp,
		&it.RunID, &it.Owner, &lease, &cr, &it.Workspace, &it.ExitCode, &it.Message, &c, &s, &f, &it.Concurrency); err != nil {
		return QueueItem{}, err
	}
	it.State = QueueState(state)
	it.CancelPrevious, it.CancelRequested = cp != 0, cr != 0
	it.LeaseUntil, it.Created, it.Started, it.Finished = fromNanosOrZero(lease), fromNanosOrZero(c), fromNanosOrZero(s), fromNanosOrZero(f)
	if err := fromJSON(vars, &it.Vars); err != nil {
		return QueueItem{}, err
	}
	return it, nil
}

func fromNanosOrZero(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// NewQueueID returns a fresh random queue item id ("q-" and 16 hex
// digits).
func NewQueueID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "q-" + hex.EncodeToString(b[:])
}

// RecordDelivery remembers the webhook delivery id of forge; a second
// delivery with the same id gives ErrDeliveryReplayed.
func (s *Store) RecordDelivery(ctx context.Context, forge, id, event string) error {
	return s.withTx(ctx, "record webhook delivery", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, forge, event, received) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, forge+":"+id, forge, event, toNanos(s.now()))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrDeliveryReplayed
		}
		return nil
	})
}

// LinkDelivery records the queue item a delivery created.
func (s *Store) LinkDelivery(ctx context.Context, forge, id, queueID string) error {
	return s.withTx(ctx, "link webhook delivery", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET queue_id = ? WHERE id = ?`, queueID, forge+":"+id)
		return err
	})
}

// Enqueue adds it to the queue as queued (assigning it.ID when empty and
// it.Created). When it is a push run that cancels previous ones, the
// queued push runs of the same repository and branch that also cancel
// previous ones become cancelled, and the running ones are asked to stop
// (their owner sees CancelRequested at its next lease renewal). It returns
// the ids of the items it cancelled or asked to stop.
func (s *Store) Enqueue(ctx context.Context, it *QueueItem) ([]string, error) {
	if it.ID == "" {
		it.ID = NewQueueID()
	}
	if it.Kind == "" {
		it.Kind = QueueKindRun
	}
	it.State = QueueQueued
	it.Created = s.now().UTC()
	vars, err := toJSON(it.Vars)
	if err != nil {
		return nil, fmt.Errorf("enqueue: %w", err)
	}
	var superseded []string
	err = s.withTx(ctx, "enqueue run", func(tx *sql.Tx) error {
		if it.Kind == QueueKindRun && it.Event == "push" && it.CancelPrevious && it.Branch != "" {
			rows, err := tx.QueryContext(ctx, `SELECT id FROM run_queue WHERE repo = ? AND branch = ? AND event = 'push' AND kind = 'run'
				AND cancel_previous = 1 AND state IN ('queued', 'running')`, it.Repo, it.Branch)
			if err != nil {
				return err
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				superseded = append(superseded, id)
			}
			if err := rows.Close(); err != nil {
				return err
			}
			msg := "superseded by a newer push to " + it.Branch + " (" + it.ID + ")"
			for _, id := range superseded {
				if _, err := tx.ExecContext(ctx, `UPDATE run_queue SET state = 'cancelled', message = ?, finished = ? WHERE id = ? AND state = 'queued'`,
					msg, toNanos(it.Created), id); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `UPDATE run_queue SET cancel_requested = 1, message = ? WHERE id = ? AND state = 'running'`,
					msg, id); err != nil {
					return err
				}
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO run_queue (id, kind, state, repo, event, branch, base_ref, sha, vars, trigger_by, actor,
				cancel_previous, run_id, workspace, created, concurrency) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			it.ID, it.Kind, string(it.State), it.Repo, it.Event, it.Branch, it.Base, it.SHA, vars, it.Trigger, it.Actor,
			boolInt(it.CancelPrevious), it.RunID, it.Workspace, toNanos(it.Created), max(it.Concurrency, 0))
		return err
	})
	if err != nil {
		return nil, err
	}
	return superseded, nil
}

// ClaimQueued hands the oldest queued item whose pipeline has room to
// owner, running under a lease until leaseUntil. An item with a
// concurrency limit waits while that many items of its repository run.
// The claim is one transaction that serialises claimers (BEGIN IMMEDIATE
// on SQLite, a lock on run_queue on PostgreSQL), then counts the running
// items and changes the chosen one, so processes sharing the database
// neither claim an item twice nor run more than a pipeline's limit.
// ErrNotQueued when no item can be claimed.
func (s *Store) ClaimQueued(ctx context.Context, owner string, leaseUntil time.Time) (QueueItem, error) {
	var id string
	err := s.withTx(ctx, "claim a queued run", func(tx *sql.Tx) error {
		if err := s.d.lockTable(ctx, tx, "run_queue"); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `SELECT id FROM run_queue q WHERE state = 'queued' AND (concurrency = 0
				OR (SELECT COUNT(*) FROM run_queue r WHERE r.repo = q.repo AND r.state = 'running') < concurrency)
			ORDER BY created, id LIMIT 1`).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotQueued
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE run_queue SET state = 'running', owner = ?, lease_until = ?, started = ?
			WHERE id = ? AND state = 'queued'`, owner, toNanos(leaseUntil), toNanos(s.now()), id)
		if err != nil {
			return err
		}
		return mustAffectID(res, "queued run", id)
	})
	if errors.Is(err, ErrNotQueued) {
		return QueueItem{}, ErrNotQueued
	}
	if err != nil {
		return QueueItem{}, err
	}
	return s.QueueItem(ctx, id)
}

// RenewLease extends owner's lease on running item id and reports whether
// a cancellation was requested. ErrLeaseLost when the item is not running
// under owner any more.
func (s *Store) RenewLease(ctx context.Context, id, owner string, until time.Time) (cancel bool, err error) {
	err = s.withTx(ctx, "renew the lease of "+id, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE run_queue SET lease_until = ? WHERE id = ? AND owner = ? AND state = 'running'`,
			toNanos(until), id, owner)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrLeaseLost
		}
		var cr int
		if err := tx.QueryRowContext(ctx, `SELECT cancel_requested FROM run_queue WHERE id = ?`, id).Scan(&cr); err != nil {
			return err
		}
		cancel = cr != 0
		return nil
	})
	return cancel, err
}

// SetQueueWorkspace records the workspace directory of item id.
func (s *Store) SetQueueWorkspace(ctx context.Context, id, dir string) error {
	return s.withTx(ctx, "record the workspace of "+id, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE run_queue SET workspace = ? WHERE id = ?`, dir, id)
		if err != nil {
			return err
		}
		return mustAffectID(res, "queue item", id)
	})
}

// SetQueueRun records the run item id executes.
func (s *Store) SetQueueRun(ctx context.Context, id string, runID int64) error {
	return s.withTx(ctx, "record the run of "+id, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE run_queue SET run_id = ? WHERE id = ?`, runID, id)
		if err != nil {
			return err
		}
		return mustAffectID(res, "queue item", id)
	})
}

// FinishQueued records the outcome of owner's running item id.
// ErrLeaseLost when owner does not hold it any more (it keeps the state
// the item has, e.g. interrupted). The write ignores ctx's cancellation.
func (s *Store) FinishQueued(ctx context.Context, id, owner string, st QueueState, exitCode int, msg string) error {
	ctx = context.WithoutCancel(ctx)
	if !st.Done() {
		return fmt.Errorf("finish queue item %s: %q is not a final state", id, st)
	}
	return s.withTx(ctx, "finish queue item "+id, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE run_queue SET state = ?, exit_code = ?, message = ?, finished = ?, lease_until = 0
			WHERE id = ? AND owner = ? AND state = 'running'`, string(st), exitCode, msg, toNanos(s.now()), id, owner)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrLeaseLost
		}
		return nil
	})
}

// ExpireLeases marks interrupted every running item whose lease lapsed
// before now (its owner stopped renewing it: the process was killed) and
// returns them.
func (s *Store) ExpireLeases(ctx context.Context, now time.Time) ([]string, error) {
	var ids []string
	err := s.withTx(ctx, "expire queue leases", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM run_queue WHERE state = 'running' AND lease_until < ?`, toNanos(now))
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		var kept []string
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, `UPDATE run_queue SET state = 'interrupted', message = ?, finished = ?
				WHERE id = ? AND state = 'running' AND lease_until < ?`,
				"the server running it stopped renewing its lease (killed or crashed); retry it", toNanos(now), id, toNanos(now))
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				kept = append(kept, id)
			}
		}
		ids = kept
		return nil
	})
	return ids, err
}

// RequestCancel cancels item id: a queued item becomes cancelled at once,
// a running one is asked to stop (its owner kills its process). It returns
// the state the item had; final items are left alone.
func (s *Store) RequestCancel(ctx context.Context, id, msg string) (QueueState, error) {
	var st string
	err := s.withTx(ctx, "cancel queue item "+id, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT state FROM run_queue WHERE id = ?`, id).Scan(&st); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("queue item %s: %w", id, ErrNotFound)
			}
			return err
		}
		switch QueueState(st) {
		case QueueQueued:
			_, err := tx.ExecContext(ctx, `UPDATE run_queue SET state = 'cancelled', message = ?, finished = ? WHERE id = ? AND state = 'queued'`,
				msg, toNanos(s.now()), id)
			return err
		case QueueRunning:
			_, err := tx.ExecContext(ctx, `UPDATE run_queue SET cancel_requested = 1, message = ? WHERE id = ? AND state = 'running'`, msg, id)
			return err
		}
		return nil
	})
	return QueueState(st), err
}

// Requeue queues an interrupted item again (a retry): it keeps its id,
// its run and its workspace.
func (s *Store) Requeue(ctx context.Context, id string) error {
	return s.withTx(ctx, "requeue "+id, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE run_queue SET state = 'queued', owner = '', lease_until = 0, cancel_requested = 0,
			message = '', exit_code = 0, finished = 0 WHERE id = ? AND state = 'interrupted'`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("queue item %s is not interrupted: %w", id, ErrNotFound)
		}
		return nil
	})
}

// QueueItem returns item id (ErrNotFound if none).
func (s *Store) QueueItem(ctx context.Context, id string) (QueueItem, error) {
	it, err := scanQueueItem(s.r.QueryRowContext(ctx, `SELECT `+queueColumns+` FROM run_queue WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return QueueItem{}, fmt.Errorf("queue item %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return QueueItem{}, fmt.Errorf("read queue item %s: %w", id, err)
	}
	return it, nil
}

// QueueItemOfRun returns the newest item that executes run runID
// (ErrNotFound if none).
func (s *Store) QueueItemOfRun(ctx context.Context, runID int64) (QueueItem, error) {
	it, err := scanQueueItem(s.r.QueryRowContext(ctx, `SELECT `+queueColumns+` FROM run_queue WHERE run_id = ? ORDER BY created DESC, id DESC LIMIT 1`, runID))
	if errors.Is(err, sql.ErrNoRows) {
		return QueueItem{}, fmt.Errorf("queue item of run %d: %w", runID, ErrNotFound)
	}
	if err != nil {
		return QueueItem{}, fmt.Errorf("read the queue item of run %d: %w", runID, err)
	}
	return it, nil
}

// QueueItems returns the items in state st (every item when st is empty),
// oldest first.
func (s *Store) QueueItems(ctx context.Context, st QueueState) ([]QueueItem, error) {
	q := `SELECT ` + queueColumns + ` FROM run_queue`
	var args []any
	if st != "" {
		q += ` WHERE state = ?`
		args = append(args, string(st))
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY created, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read the queue: %w", err)
	}
	defer rows.Close()
	var out []QueueItem
	for rows.Next() {
		it, err := scanQueueItem(rows)
		if err != nil {
			return nil, fmt.Errorf("read the queue: %w", err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the queue: %w", err)
	}
	return out, nil
}

func mustAffectID(res sql.Result, what, id string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s %s: %w", what, id, ErrNotFound)
	}
	return nil
}
