package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

const runColumns = `id, pipeline, dir, event, branch, sha, base_ref, trigger, status, message, started, finished, params,
	pipeline_file, pipeline_source, request`

// CreateRun records a new run and assigns r.ID (1, 2, 3, ...). An empty
// Status becomes running and a zero Started becomes now. The run's
// liveness lock is taken before the row becomes visible to other
// processes and held until FinishRun or Close.
func (s *Store) CreateRun(ctx context.Context, r *Run) error {
	if r.Status == "" {
		r.Status = StatusRunning
	}
	if r.Started.IsZero() {
		r.Started = s.now()
	}
	params, err := toJSON(r.Params)
	if err != nil {
		return fmt.Errorf("create run: %w", err)
	}
	request, err := json.Marshal(r.Request)
	if err != nil {
		return fmt.Errorf("create run: encode request: %w", err)
	}
	var id int64
	acquired := false
	err = s.withTx(ctx, "create run", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO runs (pipeline, dir, event, branch, sha, base_ref, trigger, status, message, started, finished, params,
				pipeline_file, pipeline_source, request, owner_host, lock_dir)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			r.Pipeline, r.Dir, r.Event, r.Branch, r.SHA, r.BaseRef, r.Trigger, string(r.Status), r.Message,
			toNanos(r.Started), toNanos(r.Finished), params, r.PipelineFile, r.PipelineSource, string(request),
			s.host, s.locks.dir).Scan(&id)
		if err != nil {
			return err
		}
		if err := s.locks.acquire(id); err != nil {
			return err
		}
		acquired = true
		return nil
	})
	if err != nil {
		if acquired {
			s.locks.release(id)
		}
		return err
	}
	r.ID = id
	return nil
}

// FinishRun sets the run's final status, message and finish time and
// releases its liveness lock. st may also be waiting: the run then waits,
// unowned, until ResumeRun. The write ignores ctx's
// cancellation, so that the outcome of a cancelled run is still recorded.
func (s *Store) FinishRun(ctx context.Context, id int64, st Status, msg string, at time.Time) error {
	ctx = context.WithoutCancel(ctx)
	if st == "" || st == StatusRunning || st == StatusPending {
		return fmt.Errorf("finish run %d: status %q is not a final status", id, st)
	}
	if at.IsZero() {
		at = s.now()
	}
	err := s.withTx(ctx, fmt.Sprintf("finish run %d", id), func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE runs SET status = ?, message = ?, finished = ? WHERE id = ?`,
			string(st), msg, toNanos(at), id)
		if err != nil {
			return err
		}
		return mustAffect(res, "run", id)
	})
	// Release even on failure: a run whose status could not be written is
	// better reported as interrupted than left looking alive.
	s.locks.release(id)
	return err
}

// ResumeRun takes the liveness lock of a run that is not running (one
// that waited for an approval, or was interrupted) and sets it running
// again, clearing its message. It fails with an error wrapping ErrRunHeld
// if a live process (this one or another) holds the run; a "running" run
// whose process died is first marked interrupted, so it can be resumed.
func (s *Store) ResumeRun(ctx context.Context, id int64) error {
	if _, err := s.recoverRun(ctx, id); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("resume run %d: %w", id, err)
	}
	acquired := false
	err := s.withTx(ctx, fmt.Sprintf("resume run %d", id), func(tx *sql.Tx) error {
		var st string
		if err := tx.QueryRowContext(ctx, `SELECT status FROM runs WHERE id = ?`+s.d.rowLock, id).Scan(&st); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("run %d: %w", id, ErrNotFound)
			}
			return err
		}
		if Status(st) == StatusRunning {
			return fmt.Errorf("run %d is running: %w", id, ErrRunHeld)
		}
		if err := s.locks.acquire(id); err != nil {
			if errors.Is(err, errLocked) {
				return fmt.Errorf("run %d: %w", id, ErrRunHeld)
			}
			return err
		}
		acquired = true
		// The row is locked (PostgreSQL) or the write lock is ours
		// (SQLite), so the status read above still holds; the condition
		// says it again.
		res, err := tx.ExecContext(ctx, `UPDATE runs SET status = 'running', message = '', finished = 0, owner_host = ?, lock_dir = ?
			WHERE id = ? AND status <> 'running'`, s.host, s.locks.dir, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, fmt.Errorf("run %d is running: %w", id, ErrRunHeld))
		}
		return nil
	})
	if err != nil && acquired {
		s.locks.release(id)
	}
	return err
}

// GetRun returns run id, or an error wrapping ErrNotFound.
func (s *Store) GetRun(ctx context.Context, id int64) (*Run, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id)
	r, err := scanRun(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("get run %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get run %d: %w", id, err)
	}
	return r, nil
}

// ListRuns returns runs, newest first.
func (s *Store) ListRuns(ctx context.Context, opt ListOptions) ([]Run, error) {
	var where []string
	var args []any
	if opt.Pipeline != "" {
		where = append(where, "pipeline = ?")
		args = append(args, opt.Pipeline)
	}
	if opt.Status != "" {
		where = append(where, "status = ?")
		args = append(args, string(opt.Status))
	}
	if opt.Branch != "" {
		where = append(where, "branch = ?")
		args = append(args, opt.Branch)
	}
	if !opt.Since.IsZero() {
		where = append(where, "started >= ?")
		args = append(args, toNanos(opt.Since))
	}
	if opt.Before > 0 {
		where = append(where, "id < ?")
		args = append(args, opt.Before)
	}
	q := `SELECT ` + runColumns + ` FROM runs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC"
	if opt.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, opt.Limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		out = append(out, *r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}

// DeleteRun removes a finished run and everything recorded about it
// (stages, steps, logs, artifact records, events, approvals). Artifact
// blobs stay in the artifact store. Run IDs are never reused.
func (s *Store) DeleteRun(ctx context.Context, id int64) error {
	return s.withTx(ctx, fmt.Sprintf("delete run %d", id), func(tx *sql.Tx) error {
		var st string
		if err := tx.QueryRowContext(ctx, `SELECT status FROM runs WHERE id = ?`+s.d.rowLock, id).Scan(&st); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("run %d: %w", id, ErrNotFound)
			}
			return err
		}
		if st == string(StatusRunning) {
			return fmt.Errorf("run %d is running", id)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM runs WHERE id = ?`, id)
		return err
	})
}

type scanner interface{ Scan(dest ...any) error }

func scanRun(sc scanner) (*Run, error) {
	var r Run
	var st, params, request string
	var started, finished int64
	if err := sc.Scan(&r.ID, &r.Pipeline, &r.Dir, &r.Event, &r.Branch, &r.SHA, &r.BaseRef, &r.Trigger,
		&st, &r.Message, &started, &finished, &params, &r.PipelineFile, &r.PipelineSource, &request); err != nil {
		return nil, err
	}
	if request != "" {
		if err := json.Unmarshal([]byte(request), &r.Request); err != nil {
			return nil, fmt.Errorf("run %d request: %w", r.ID, err)
		}
	}
	r.Status = Status(st)
	r.Started, r.Finished = fromNanos(started), fromNanos(finished)
	if err := fromJSON(params, &r.Params); err != nil {
		return nil, fmt.Errorf("run %d params: %w", r.ID, err)
	}
	return &r, nil
}

func mustAffect(res sql.Result, what string, id int64) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s %d: %w", what, id, ErrNotFound)
	}
	return nil
}
