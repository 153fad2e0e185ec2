package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/gantry-ci/gantry/internal/proc"
)

// EventProcessesEnded is the type of the event recorded when the store,
// on open, ended processes that a step of a run whose gantry process
// stopped left running. Its data lists the group ("pgid") and the
// processes ("processes": command names, "pids").
const EventProcessesEnded = "run.processes_ended"

// ProcGroup is a process group started by a step (its commands or its
// services), recorded while it runs.
type ProcGroup struct {
	RunID       int64
	Stage, Step string
	Group       proc.Group
	// Host is the machine the group runs on (the store's WithHost);
	// AddProcGroup sets it.
	Host    string
	Started time.Time
}

// AddProcGroup records that g runs.
func (s *Store) AddProcGroup(ctx context.Context, g *ProcGroup) error {
	if g.Started.IsZero() {
		g.Started = s.now()
	}
	g.Host = s.host
	what := fmt.Sprintf("record process group %d of step %s/%s of run %d", g.Group.PGID, g.Stage, g.Step, g.RunID)
	return s.withTx(ctx, what, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO proc_groups (run_id, stage, step, pgid, leader_start, boot, host, started)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (run_id, pgid, leader_start, boot) DO UPDATE SET stage = excluded.stage, step = excluded.step,
				host = excluded.host, started = excluded.started`,
			g.RunID, g.Stage, g.Step, g.Group.PGID, int64(g.Group.Start), g.Group.Boot, g.Host, toNanos(g.Started))
		return err
	})
}

// RemoveProcGroup records that nothing of g runs any more.
func (s *Store) RemoveProcGroup(ctx context.Context, g *ProcGroup) error {
	what := fmt.Sprintf("forget process group %d of run %d", g.Group.PGID, g.RunID)
	return s.withTx(ctx, what, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM proc_groups WHERE run_id = ? AND pgid = ? AND leader_start = ? AND boot = ?`,
			g.RunID, g.Group.PGID, int64(g.Group.Start), g.Group.Boot)
		return err
	})
}

// ProcGroups returns the process groups recorded for the run.
func (s *Store) ProcGroups(ctx context.Context, runID int64) ([]ProcGroup, error) {
	return s.procGroups(ctx, `SELECT run_id, stage, step, pgid, leader_start, boot, host, started FROM proc_groups
		WHERE run_id = ? ORDER BY started, pgid`, runID)
}

func (s *Store) procGroups(ctx context.Context, query string, args ...any) ([]ProcGroup, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read process groups: %w", err)
	}
	defer rows.Close()
	var out []ProcGroup
	for rows.Next() {
		var g ProcGroup
		var start, started int64
		if err := rows.Scan(&g.RunID, &g.Stage, &g.Step, &g.Group.PGID, &start, &g.Group.Boot, &g.Host, &started); err != nil {
			return nil, fmt.Errorf("read process groups: %w", err)
		}
		g.Group.Start, g.Started = uint64(start), fromNanos(started)
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read process groups: %w", err)
	}
	return out, nil
}

// ProcTracker returns a proc.Tracker that records the process groups of
// the step stage/step of run runID (pass it to proc.WithTracker).
func (s *Store) ProcTracker(runID int64, stage, step string) proc.Tracker {
	return &procTracker{s: s, runID: runID, stage: stage, step: step}
}

type procTracker struct {
	s           *Store
	runID       int64
	stage, step string
}

var _ proc.Tracker = (*procTracker)(nil)

func (t *procTracker) Started(ctx context.Context, g proc.Group) error {
	return t.s.AddProcGroup(ctx, &ProcGroup{RunID: t.runID, Stage: t.stage, Step: t.step, Group: g})
}

func (t *procTracker) Ended(ctx context.Context, g proc.Group) error {
	return t.s.RemoveProcGroup(ctx, &ProcGroup{RunID: t.runID, Stage: t.stage, Step: t.step, Group: g})
}

// endLeftGroups ends the recorded process groups of this host (see
// WithHost; groups recorded before hosts were, with none, count as this
// host's) of runs that no process runs any more (every run not "running":
// RecoverInterrupted has marked the dead ones), records an
// EventProcessesEnded on the run for each group that still had processes,
// and forgets the groups. A group whose id now belongs to another process
// (see proc.Alive) is only forgotten. A group that cannot be ended is
// logged and kept for the next open. Another machine's groups are never
// signalled: a process id means nothing here.
func (s *Store) endLeftGroups(ctx context.Context) error {
	groups, err := s.procGroups(ctx, `SELECT g.run_id, g.stage, g.step, g.pgid, g.leader_start, g.boot, g.host, g.started
		FROM proc_groups g JOIN runs r ON r.id = g.run_id
		WHERE r.status <> 'running' AND (g.host = ? OR g.host = '') ORDER BY g.run_id, g.started, g.pgid`, s.host)
	if err != nil {
		return fmt.Errorf("end processes left by interrupted runs: %w", err)
	}
	for _, g := range groups {
		left, err := proc.End(ctx, g.Group, proc.WaitDelay)
		if err != nil {
			s.log.WarnContext(ctx, "could not end processes left by an interrupted run",
				"run", g.RunID, "step", g.Stage+"/"+g.Step, "pgid", g.Group.PGID, "err", err)
			continue
		}
		if len(left) > 0 {
			s.log.WarnContext(ctx, "ended processes left by an interrupted run",
				"run", g.RunID, "step", g.Stage+"/"+g.Step, "pgid", g.Group.PGID, "processes", proc.Names(left))
		}
		what := fmt.Sprintf("record the end of process group %d of run %d", g.Group.PGID, g.RunID)
		err = s.withTx(ctx, what, func(tx *sql.Tx) error {
			// Forget the group first: if another process of this host
			// recovering at the same time has done so, it records the
			// event.
			res, err := tx.ExecContext(ctx, `DELETE FROM proc_groups WHERE run_id = ? AND pgid = ? AND leader_start = ? AND boot = ?`,
				g.RunID, g.Group.PGID, int64(g.Group.Start), g.Group.Boot)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return err
			}
			if len(left) > 0 {
				names, pids := make([]string, len(left)), make([]int, len(left))
				for i, m := range left {
					names[i], pids[i] = m.Name, m.PID
				}
				data, err := toJSON(map[string]any{"pgid": g.Group.PGID, "processes": names, "pids": pids})
				if err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO events (run_id, time, type, stage, step, data) VALUES (?, ?, ?, ?, ?, ?)`,
					g.RunID, toNanos(s.now()), EventProcessesEnded, g.Stage, g.Step, data); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
