package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// RevisionPreview is the status of the green revision of a blue/green
// rollout while it runs beside the serving one (before promotion); an
// aborted one becomes RevisionAborted.
const (
	RevisionPreview = "preview"
	RevisionAborted = "aborted"
)

// Rollout is an environment's current blue/green rollout. State is the
// environment controller's JSON record; the store does not read it.
type Rollout struct {
	Environment     string
	Step, Phase     string
	Stable, Desired int
	State           []byte
	Updated         time.Time
}

// RolloutEvent is one entry of an environment's rollout audit trail.
type RolloutEvent struct {
	ID          int64
	Environment string
	Revision    int
	Verb        string
	Who         string
	Message     string
	At          time.Time
}

// PreviewPort returns env's preview port, recording port as it when the
// environment has none yet (port is then what it keeps for its life). A
// port held by another environment (as its proxy or preview port) gives
// ErrPortTaken.
func (s *Store) PreviewPort(ctx context.Context, env string, port int) (int, error) {
	var got int
	err := s.withTx(ctx, "record the preview port of "+env, func(tx *sql.Tx) error {
		if err := s.d.lockTable(ctx, tx, "environments"); err != nil {
			return err
		}
		switch err := tx.QueryRowContext(ctx, `SELECT preview_port FROM environments WHERE name = ?`, env).Scan(&got); {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("environment %s: %w", env, ErrNotFound)
		case err != nil:
			return err
		}
		if got != 0 {
			return nil
		}
		if port <= 0 || port > 65535 {
			return fmt.Errorf("preview port %d out of range", port)
		}
		var other string
		switch err := tx.QueryRowContext(ctx, `SELECT name FROM environments WHERE port = ? OR preview_port = ?`, port, port).Scan(&other); {
		case err == nil:
			return fmt.Errorf("port %d (environment %s): %w", port, other, ErrPortTaken)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE environments SET preview_port = ? WHERE name = ?`, port, env); err != nil {
			return err
		}
		got = port
		return nil
	})
	return got, err
}

// PutRollout records r as env's current rollout (replacing the one
// before) and sets r.Updated.
func (s *Store) PutRollout(ctx context.Context, r *Rollout) error {
	now := s.now().UTC()
	state := r.State
	if state == nil {
		state = []byte("{}")
	}
	err := s.withTx(ctx, "record the rollout of "+r.Environment, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO env_rollouts (environment, step, phase, stable, desired, state, updated)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (environment) DO UPDATE SET step = excluded.step, phase = excluded.phase, stable = excluded.stable,
				desired = excluded.desired, state = excluded.state, updated = excluded.updated`,
			r.Environment, r.Step, r.Phase, r.Stable, r.Desired, string(state), toNanos(now))
		return err
	})
	if err != nil {
		return err
	}
	r.Updated = now
	return nil
}

// Rollout returns env's current rollout (ErrNotFound if it never had
// one).
func (s *Store) Rollout(ctx context.Context, env string) (Rollout, error) {
	r := Rollout{Environment: env}
	var state string
	err := s.r.QueryRowContext(ctx, `SELECT step, phase, stable, desired, state, updated FROM env_rollouts WHERE environment = ?`, env).
		Scan(&r.Step, &r.Phase, &r.Stable, &r.Desired, &state, nanos{&r.Updated})
	if errors.Is(err, sql.ErrNoRows) {
		return Rollout{}, fmt.Errorf("rollout of %s: %w", env, ErrNotFound)
	}
	if err != nil {
		return Rollout{}, fmt.Errorf("read the rollout of %s: %w", env, err)
	}
	r.State = []byte(state)
	return r, nil
}

// AddRolloutEvent appends e to its environment's audit trail and sets
// e.ID and e.At.
func (s *Store) AddRolloutEvent(ctx context.Context, e *RolloutEvent) error {
	now := s.now().UTC()
	return s.withTx(ctx, "record a rollout event of "+e.Environment, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO env_rollout_events (environment, revision, verb, who, message, at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			e.Environment, e.Revision, e.Verb, e.Who, e.Message, toNanos(now)).Scan(&id)
		if err != nil {
			return err
		}
		e.ID, e.At = id, now
		return nil
	})
}

// RolloutEvents returns env's rollout audit trail, oldest first.
func (s *Store) RolloutEvents(ctx context.Context, env string) ([]RolloutEvent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, environment, revision, verb, who, message, at FROM env_rollout_events WHERE environment = ? ORDER BY id`, env)
	if err != nil {
		return nil, fmt.Errorf("read the rollout events of %s: %w", env, err)
	}
	defer rows.Close()
	var out []RolloutEvent
	for rows.Next() {
		var e RolloutEvent
		if err := rows.Scan(&e.ID, &e.Environment, &e.Revision, &e.Verb, &e.Who, &e.Message, nanos{&e.At}); err != nil {
			return nil, fmt.Errorf("read the rollout events of %s: %w", env, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the rollout events of %s: %w", env, err)
	}
	return out, nil
}
