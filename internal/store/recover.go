package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
)

// RecoverInterrupted marks as interrupted every run that is still
// "running" although no live process holds its lock: its gantry process
// was killed or crashed. The run's running and pending stages and steps
// become interrupted too, with InterruptedMessage, and an
// EventRunInterrupted event is recorded. Runs held by a live process (this
// one or another) are left alone. Then the process groups that steps of
// runs no longer running left behind are ended, with an
// EventProcessesEnded on their run (see endLeftGroups). Open calls it; it
// returns the IDs of the runs it marked.
func (s *Store) RecoverInterrupted(ctx context.Context) ([]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM runs WHERE status = 'running' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("recover interrupted runs: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("recover interrupted runs: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recover interrupted runs: %w", err)
	}
	var marked []int64
	for _, id := range ids {
		ok, err := s.recoverRun(ctx, id)
		if err != nil {
			return marked, err
		}
		if ok {
			s.log.WarnContext(ctx, "run interrupted: its gantry process stopped", "run", id)
			marked = append(marked, id)
		}
	}
	return marked, s.endLeftGroups(ctx)
}

// recoverRun checks and marks one run inside a write transaction, which
// on PostgreSQL first locks the run's row, so that no other process can
// finish or resume it between the lock probe and the update.
//
// Only a run whose owner is known dead is marked: one owned by this host
// (WithHost; a run recorded before owners were, with none, counts as this
// host's) whose lock, in the owner's state dir, is free. A run owned by
// another machine is left alone: whether its process lives cannot be
// told from here.
func (s *Store) recoverRun(ctx context.Context, id int64) (bool, error) {
	var lockFile *os.File
	var lockPath string
	marked := false
	err := s.withTx(ctx, fmt.Sprintf("recover run %d", id), func(tx *sql.Tx) error {
		var st, host, lockDir string
		if err := tx.QueryRowContext(ctx, `SELECT status, owner_host, lock_dir FROM runs WHERE id = ?`+s.d.rowLock, id).
			Scan(&st, &host, &lockDir); err != nil {
			return err
		}
		if Status(st) != StatusRunning {
			return nil // finished meanwhile
		}
		if host != "" && host != s.host {
			return nil // another machine's: not known dead
		}
		lockPath = s.locks.path(id)
		if lockDir != "" {
			lockPath = filepath.Join(lockDir, filepath.Base(lockPath))
		}
		dead, f, err := s.locks.probeAt(id, lockPath)
		if err != nil {
			return err
		}
		if !dead {
			return nil
		}
		lockFile = f
		now := toNanos(s.now())
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET status = 'interrupted', message = ?, finished = ? WHERE id = ? AND status = 'running'`,
			InterruptedMessage, now, id); err != nil {
			return err
		}
		var stages, steps []string
		for _, q := range []struct {
			table string
			names *[]string
			col   string
		}{{"stages", &stages, "name"}, {"steps", &steps, "stage || '/' || name"}} {
			r, err := tx.QueryContext(ctx, `UPDATE `+q.table+` SET status = 'interrupted', message = ?, finished = ?
				WHERE run_id = ? AND status IN ('running', 'pending') RETURNING `+q.col, InterruptedMessage, now, id)
			if err != nil {
				return err
			}
			for r.Next() {
				var n string
				if err := r.Scan(&n); err != nil {
					r.Close()
					return err
				}
				*q.names = append(*q.names, n)
			}
			r.Close()
			if err := r.Err(); err != nil {
				return err
			}
		}
		data, err := toJSON(map[string]any{"message": InterruptedMessage, "stages": stages, "steps": steps})
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (run_id, time, type, stage, step, data) VALUES (?, ?, ?, '', '', ?)`,
			id, now, EventRunInterrupted, data); err != nil {
			return err
		}
		marked = true
		return nil
	})
	if lockFile != nil {
		if err == nil {
			removeLockedAt(lockPath, lockFile)
		} else {
			unlockClose(lockFile)
		}
	}
	return marked, err
}
