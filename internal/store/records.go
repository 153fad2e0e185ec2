package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// PutStage inserts or replaces the stage (run_id, name).
func (s *Store) PutStage(ctx context.Context, st *Stage) error {
	if st.Status == "" {
		st.Status = StatusPending
	}
	return s.withTx(ctx, fmt.Sprintf("put stage %s of run %d", st.Name, st.RunID), func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO stages (run_id, name, idx, status, message, gate, gate_result, started, finished)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (run_id, name) DO UPDATE SET idx = excluded.idx, status = excluded.status,
				message = excluded.message, gate = excluded.gate, gate_result = excluded.gate_result,
				started = excluded.started, finished = excluded.finished`,
			st.RunID, st.Name, st.Index, string(st.Status), st.Message, st.Gate, nullBool(st.GateResult),
			toNanos(st.Started), toNanos(st.Finished))
		return err
	})
}

// Stages returns the run's stages by Index.
func (s *Store) Stages(ctx context.Context, runID int64) ([]Stage, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT run_id, name, idx, status, message, gate, gate_result, started, finished
		FROM stages WHERE run_id = ? ORDER BY idx, name`, runID)
	if err != nil {
		return nil, fmt.Errorf("stages of run %d: %w", runID, err)
	}
	defer rows.Close()
	var out []Stage
	for rows.Next() {
		var st Stage
		var status string
		var gate sql.NullInt64
		var started, finished int64
		if err := rows.Scan(&st.RunID, &st.Name, &st.Index, &status, &st.Message, &st.Gate, &gate, &started, &finished); err != nil {
			return nil, fmt.Errorf("stages of run %d: %w", runID, err)
		}
		st.Status, st.GateResult = Status(status), boolPtr(gate)
		st.Started, st.Finished = fromNanos(started), fromNanos(finished)
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stages of run %d: %w", runID, err)
	}
	return out, nil
}

// PutStep inserts or replaces the step (run_id, stage, name).
func (s *Store) PutStep(ctx context.Context, st *Step) error {
	if st.Status == "" {
		st.Status = StatusPending
	}
	outputs, err := toJSON(st.Outputs)
	if err != nil {
		return fmt.Errorf("put step %s/%s of run %d: outputs: %w", st.Stage, st.Name, st.RunID, err)
	}
	return s.withTx(ctx, fmt.Sprintf("put step %s/%s of run %d", st.Stage, st.Name, st.RunID), func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO steps (run_id, stage, name, kind, status, attempt, message, summary,
				cache_key, cached_from, outputs, started, finished)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (run_id, stage, name) DO UPDATE SET kind = excluded.kind, status = excluded.status,
				attempt = excluded.attempt, message = excluded.message, summary = excluded.summary,
				cache_key = excluded.cache_key, cached_from = excluded.cached_from, outputs = excluded.outputs,
				started = excluded.started, finished = excluded.finished`,
			st.RunID, st.Stage, st.Name, st.Kind, string(st.Status), st.Attempt, st.Message, st.Summary,
			st.CacheKey, st.CachedFrom, outputs, toNanos(st.Started), toNanos(st.Finished))
		return err
	})
}

const stepColumns = `s.run_id, s.stage, s.name, s.kind, s.status, s.attempt, s.message, s.summary, s.cache_key, s.cached_from, s.outputs, s.started, s.finished`

// Steps returns the run's steps in stage order, then by start time (steps
// not started yet last), then by name.
func (s *Store) Steps(ctx context.Context, runID int64) ([]Step, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+stepColumns+`
		FROM steps s LEFT JOIN stages g ON g.run_id = s.run_id AND g.name = s.stage
		WHERE s.run_id = ?
		ORDER BY COALESCE(g.idx, 2147483647), s.stage, s.started = 0, s.started, s.name`, runID)
	if err != nil {
		return nil, fmt.Errorf("steps of run %d: %w", runID, err)
	}
	defer rows.Close()
	var out []Step
	for rows.Next() {
		st, err := scanStep(rows)
		if err != nil {
			return nil, fmt.Errorf("steps of run %d: %w", runID, err)
		}
		out = append(out, *st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("steps of run %d: %w", runID, err)
	}
	return out, nil
}

func scanStep(sc scanner) (*Step, error) {
	var st Step
	var status, outputs string
	var started, finished int64
	if err := sc.Scan(&st.RunID, &st.Stage, &st.Name, &st.Kind, &status, &st.Attempt, &st.Message, &st.Summary,
		&st.CacheKey, &st.CachedFrom, &outputs, &started, &finished); err != nil {
		return nil, err
	}
	st.Status = Status(status)
	st.Started, st.Finished = fromNanos(started), fromNanos(finished)
	if err := fromJSON(outputs, &st.Outputs); err != nil {
		return nil, fmt.Errorf("step %s/%s outputs: %w", st.Stage, st.Name, err)
	}
	return &st, nil
}

// lookupCacheQuery finds the newest reusable step with a cache key. The
// redundant test that cache_key is not empty lets SQLite use the partial
// index.
const lookupCacheQuery = `SELECT ` + stepColumns + `
	FROM steps s JOIN runs r ON r.id = s.run_id
	WHERE s.cache_key = ? AND s.cache_key <> '' AND s.status IN ('passed', 'cached')
	ORDER BY s.run_id DESC, s.finished DESC LIMIT 1`

// LookupCache returns the newest step recorded with the cache key whose
// status is passed or cached, or an error wrapping ErrNotFound. Steps of
// deleted runs are gone with their run.
func (s *Store) LookupCache(ctx context.Context, key string) (*Step, error) {
	if key == "" {
		return nil, fmt.Errorf("look up cache: empty key: %w", ErrNotFound)
	}
	row := s.r.QueryRowContext(ctx, lookupCacheQuery, key)
	st, err := scanStep(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("look up cache key %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("look up cache key %s: %w", key, err)
	}
	return st, nil
}

// AddArtifact records an artifact; one with the same (run, stage, step,
// name) is replaced. A zero Created becomes now.
func (s *Store) AddArtifact(ctx context.Context, a *Artifact) error {
	if a.Created.IsZero() {
		a.Created = s.now()
	}
	return s.withTx(ctx, fmt.Sprintf("add artifact %s of run %d", a.Name, a.RunID), func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO artifacts (run_id, stage, step, name, digest, media_type, size, created)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (run_id, stage, step, name) DO UPDATE SET digest = excluded.digest,
				media_type = excluded.media_type, size = excluded.size, created = excluded.created`,
			a.RunID, a.Stage, a.Step, a.Name, a.Digest, a.MediaType, a.Size, toNanos(a.Created))
		return err
	})
}

// Artifacts returns the run's artifacts by stage, step and name.
func (s *Store) Artifacts(ctx context.Context, runID int64) ([]Artifact, error) {
	return s.artifacts(ctx, fmt.Sprintf("artifacts of run %d", runID),
		`WHERE run_id = ? ORDER BY stage, step, name`, runID)
}

// StepArtifacts returns one step's artifacts by name.
func (s *Store) StepArtifacts(ctx context.Context, runID int64, stage, step string) ([]Artifact, error) {
	return s.artifacts(ctx, fmt.Sprintf("artifacts of step %s/%s of run %d", stage, step, runID),
		`WHERE run_id = ? AND stage = ? AND step = ? ORDER BY name`, runID, stage, step)
}

func (s *Store) artifacts(ctx context.Context, what, where string, args ...any) ([]Artifact, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT run_id, stage, step, name, digest, media_type, size, created FROM artifacts `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []Artifact
	for rows.Next() {
		var a Artifact
		var created int64
		if err := rows.Scan(&a.RunID, &a.Stage, &a.Step, &a.Name, &a.Digest, &a.MediaType, &a.Size, &created); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		a.Created = fromNanos(created)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// AddEvent records an event and assigns e.ID. A zero Time becomes now.
func (s *Store) AddEvent(ctx context.Context, e *Event) error {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	data, err := toJSON(e.Data)
	if err != nil {
		return fmt.Errorf("add event %s of run %d: %w", e.Type, e.RunID, err)
	}
	return s.withTx(ctx, fmt.Sprintf("add event %s of run %d", e.Type, e.RunID), func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO events (run_id, time, type, stage, step, data) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			e.RunID, toNanos(e.Time), e.Type, e.Stage, e.Step, data).Scan(&e.ID)
	})
}

// Events returns the run's events in the order they were added.
func (s *Store) Events(ctx context.Context, runID int64) ([]Event, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, run_id, time, type, stage, step, data FROM events WHERE run_id = ? ORDER BY id`, runID)
	if err != nil {
		return nil, fmt.Errorf("events of run %d: %w", runID, err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var t int64
		var data string
		if err := rows.Scan(&e.ID, &e.RunID, &t, &e.Type, &e.Stage, &e.Step, &data); err != nil {
			return nil, fmt.Errorf("events of run %d: %w", runID, err)
		}
		e.Time = fromNanos(t)
		if err := fromJSON(data, &e.Data); err != nil {
			return nil, fmt.Errorf("events of run %d: event %d: %w", runID, e.ID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events of run %d: %w", runID, err)
	}
	return out, nil
}

// RequestApproval records a pending approval and assigns a.ID. A zero
// Requested becomes now; a non-zero Deadline is when it times out.
func (s *Store) RequestApproval(ctx context.Context, a *Approval) error {
	a.Status = ApprovalPending
	if a.Requested.IsZero() {
		a.Requested = s.now()
	}
	return s.withTx(ctx, fmt.Sprintf("request approval of stage %s of run %d", a.Stage, a.RunID), func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO approvals (run_id, stage, status, requested_roles, actor, comment, requested, decided, deadline)
			VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?) RETURNING id`, a.RunID, a.Stage, a.Status, a.RequestedRoles, a.Actor, a.Comment,
			toNanos(a.Requested), toNanos(a.Deadline)).Scan(&a.ID)
	})
}

// Decision is the outcome of a pending approval.
type Decision struct {
	// Status is ApprovalApproved or ApprovalRejected.
	Status, Actor, Comment string
	// Digest and Evidence: see Approval.
	Digest, Evidence string
	// At is when it was decided; zero: now.
	At time.Time
}

// DecideApproval approves or rejects a pending approval. It returns an
// error wrapping ErrNotFound for an unknown id and ErrAlreadyDecided for
// one decided before.
func (s *Store) DecideApproval(ctx context.Context, id int64, status, actor, comment string, at time.Time) error {
	return s.Decide(ctx, id, Decision{Status: status, Actor: actor, Comment: comment, At: at})
}

// Decide records the decision on pending approval id. A rejection also
// ends the run rejected (and its waiting stage) if the run still waits,
// in the same transaction. It returns an error wrapping ErrNotFound for an
// unknown id and ErrAlreadyDecided for one decided (or timed out) before.
func (s *Store) Decide(ctx context.Context, id int64, d Decision) error {
	if d.Status != ApprovalApproved && d.Status != ApprovalRejected {
		return fmt.Errorf("decide approval %d: status %q: want %q or %q", id, d.Status, ApprovalApproved, ApprovalRejected)
	}
	if d.At.IsZero() {
		d.At = s.now()
	}
	return s.withTx(ctx, fmt.Sprintf("decide approval %d", id), func(tx *sql.Tx) error {
		var cur, by, stage string
		var runID int64
		err := tx.QueryRowContext(ctx, `SELECT status, actor, run_id, stage FROM approvals WHERE id = ?`+s.d.rowLock, id).Scan(&cur, &by, &runID, &stage)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("approval %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if cur != ApprovalPending {
			if by == "" {
				by = "timeout"
			}
			return fmt.Errorf("approval %d was %s by %s: %w", id, cur, by, ErrAlreadyDecided)
		}
		res, err := tx.ExecContext(ctx, `UPDATE approvals SET status = ?, actor = ?, comment = ?, decided = ?, digest = ?, evidence = ?
			WHERE id = ? AND status = 'pending'`, d.Status, d.Actor, d.Comment, toNanos(d.At), d.Digest, d.Evidence, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, fmt.Errorf("approval %d was decided meanwhile: %w", id, ErrAlreadyDecided))
		}
		if d.Status == ApprovalRejected {
			msg := fmt.Sprintf("stage %q rejected by %s", stage, d.Actor)
			if d.Comment != "" {
				msg += ": " + d.Comment
			}
			return rejectWaitingRun(ctx, tx, runID, stage, msg, toNanos(d.At))
		}
		return nil
	})
}

// rejectWaitingRun ends a waiting run and its waiting stage rejected.
func rejectWaitingRun(ctx context.Context, tx *sql.Tx, runID int64, stage, msg string, at int64) error {
	res, err := tx.ExecContext(ctx, `UPDATE runs SET status = 'rejected', message = ?, finished = ? WHERE id = ? AND status = 'waiting'`, msg, at, runID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err // not waiting (a live process holds it): it reads the decision itself
	}
	_, err = tx.ExecContext(ctx, `UPDATE stages SET status = 'rejected', message = ?, finished = ? WHERE run_id = ? AND name = ? AND status = 'waiting'`,
		msg, at, runID, stage)
	return err
}

// ExpireApprovals rejects every pending approval whose deadline is at or
// before now, and ends the runs that waited for them rejected. It returns
// the approvals it rejected. gantry calls it wherever a waiting run is
// looked at (run --resume, approve, runs), so no process has to sleep
// until a deadline.
func (s *Store) ExpireApprovals(ctx context.Context, now time.Time) ([]Approval, error) {
	var out []Approval
	err := s.withTx(ctx, "expire approvals", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+approvalColumns+` FROM approvals
			WHERE status = 'pending' AND deadline <> 0 AND deadline <= ? ORDER BY id`, toNanos(now))
		if err != nil {
			return err
		}
		expired, err := scanApprovals(rows)
		if err != nil {
			return err
		}
		for _, a := range expired {
			comment := fmt.Sprintf("approval timed out at %s", a.Deadline.UTC().Format(time.RFC3339))
			res, err := tx.ExecContext(ctx, `UPDATE approvals SET status = 'rejected', comment = ?, decided = ? WHERE id = ? AND status = 'pending'`,
				comment, toNanos(now), a.ID)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				continue // decided by another process meanwhile
			}
			msg := fmt.Sprintf("stage %q rejected: %s", a.Stage, comment)
			if err := rejectWaitingRun(ctx, tx, a.RunID, a.Stage, msg, toNanos(now)); err != nil {
				return err
			}
			a.Status, a.Comment, a.Decided = ApprovalRejected, comment, now
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

const approvalColumns = `id, run_id, stage, status, requested_roles, actor, comment, requested, decided, deadline, digest, evidence`

// Approvals returns the run's approvals in request order.
func (s *Store) Approvals(ctx context.Context, runID int64) ([]Approval, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+approvalColumns+` FROM approvals WHERE run_id = ? ORDER BY id`, runID)
	if err != nil {
		return nil, fmt.Errorf("approvals of run %d: %w", runID, err)
	}
	out, err := scanApprovals(rows)
	if err != nil {
		return nil, fmt.Errorf("approvals of run %d: %w", runID, err)
	}
	return out, nil
}

// scanApprovals reads and closes rows.
func scanApprovals(rows *sql.Rows) ([]Approval, error) {
	defer rows.Close()
	var out []Approval
	for rows.Next() {
		var a Approval
		var req, dec, deadline int64
		if err := rows.Scan(&a.ID, &a.RunID, &a.Stage, &a.Status, &a.RequestedRoles, &a.Actor, &a.Comment, &req, &dec,
			&deadline, &a.Digest, &a.Evidence); err != nil {
			return nil, err
		}
		a.Requested, a.Decided, a.Deadline = fromNanos(req), fromNanos(dec), fromNanos(deadline)
		out = append(out, a)
	}
	return out, rows.Err()
}

// Audit appends to the audit log and assigns e.ID. A zero Time becomes now.
func (s *Store) Audit(ctx context.Context, e *AuditEntry) error {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	if e.Action == "" {
		return errors.New("audit: empty action")
	}
	return s.withTx(ctx, "audit "+e.Action, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO audit (time, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			toNanos(e.Time), e.Actor, e.Action, e.Subject, e.Detail).Scan(&e.ID)
	})
}

// AuditLog returns the newest limit entries (0: all), newest first.
func (s *Store) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	q := `SELECT id, time, actor, action, subject, detail FROM audit ORDER BY id DESC`
	var args []any
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var t int64
		if err := rows.Scan(&e.ID, &t, &e.Actor, &e.Action, &e.Subject, &e.Detail); err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
		e.Time = fromNanos(t)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return out, nil
}
