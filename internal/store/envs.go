package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Revision statuses of an environment (see docs/environments.md).
const (
	// RevisionDeploying: recorded as the desired state before anything
	// starts; the deploy has not finished.
	RevisionDeploying = "deploying"
	// RevisionServing: the proxy sends the environment's traffic to it.
	RevisionServing = "serving"
	// RevisionSuperseded: it served and a newer revision replaced it.
	RevisionSuperseded = "superseded"
	// RevisionFailed: its instances never became ready, or its deploy was
	// interrupted.
	RevisionFailed = "failed"
	// RevisionRefused: admission refused one of its images; nothing started.
	RevisionRefused = "refused"
)

// Environment is a deploy target (staging, prod, ...) with the proxy port
// it keeps for its life.
type Environment struct {
	Name string
	Port int
	// PreviewPort is the port of its preview URL (0 before its first
	// blue/green rollout).
	PreviewPort int
	Created     time.Time
}

// EnvRevision is one entry of an environment's history. Workloads and
// Spec are the JSON the environment controller gives; the store does not
// read them.
type EnvRevision struct {
	Environment string
	Number      int
	Digest      string
	Workloads   []byte
	Spec        []byte
	RunID       int64
	Who, Reason string
	Status      string
	Message     string
	Created     time.Time
	Updated     time.Time
}

// ErrPortTaken is returned by CreateEnvironment when another environment
// already holds the port.
var ErrPortTaken = errors.New("port already allocated to another environment")

// ErrEnvLocked is returned by LockEnvironment when a live process (this
// one or another) holds the environment.
var ErrEnvLocked = errors.New("environment is locked by a live gantry process")

var envName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// CheckEnvName refuses names that are not DNS labels (lower-case letters,
// digits and '-', at most 63): an environment's name becomes part of file
// names and instance IDs.
func CheckEnvName(name string) error {
	if !envName.MatchString(name) {
		return fmt.Errorf("environment name %q: want a DNS label (a-z, 0-9 and '-', at most 63 characters)", name)
	}
	return nil
}

// CreateEnvironment records environment name with its proxy port. If the
// environment exists already, it is returned unchanged (with its own
// port). A port that another environment holds gives ErrPortTaken.
func (s *Store) CreateEnvironment(ctx context.Context, name string, port int) (Environment, error) {
	if err := CheckEnvName(name); err != nil {
		return Environment{}, err
	}
	if port <= 0 || port > 65535 {
		return Environment{}, fmt.Errorf("create environment %s: port %d out of range", name, port)
	}
	e := Environment{Name: name, Port: port, Created: s.now().UTC()}
	err := s.withTx(ctx, "create environment "+name, func(tx *sql.Tx) error {
		// Ports are checked against both columns of every row, then
		// taken: one creator at a time.
		if err := s.d.lockTable(ctx, tx, "environments"); err != nil {
			return err
		}
		var have int
		switch err := tx.QueryRowContext(ctx, `SELECT port FROM environments WHERE name = ?`, name).Scan(&have); {
		case err == nil:
			e.Port = have
			return tx.QueryRowContext(ctx, `SELECT created FROM environments WHERE name = ?`, name).Scan(nanos{&e.Created})
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		var other string
		switch err := tx.QueryRowContext(ctx, `SELECT name FROM environments WHERE port = ? OR preview_port = ?`, port, port).Scan(&other); {
		case err == nil:
			return fmt.Errorf("port %d (environment %s): %w", port, other, ErrPortTaken)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO environments (name, port, created) VALUES (?, ?, ?)`, name, port, toNanos(e.Created))
		return err
	})
	if err != nil {
		return Environment{}, err
	}
	return e, nil
}

// nanos scans a nanosecond column into a time.
type nanos struct{ t *time.Time }

func (n nanos) Scan(v any) error {
	i, ok := v.(int64)
	if !ok {
		return fmt.Errorf("time column: got %T, want an integer", v)
	}
	*n.t = fromNanos(i)
	return nil
}

// Environment returns the environment called name (ErrNotFound if none).
func (s *Store) Environment(ctx context.Context, name string) (Environment, error) {
	e := Environment{Name: name}
	err := s.r.QueryRowContext(ctx, `SELECT port, preview_port, created FROM environments WHERE name = ?`, name).Scan(&e.Port, &e.PreviewPort, nanos{&e.Created})
	if errors.Is(err, sql.ErrNoRows) {
		return Environment{}, fmt.Errorf("environment %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Environment{}, fmt.Errorf("read environment %s: %w", name, err)
	}
	return e, nil
}

// Environments returns every environment, by name.
func (s *Store) Environments(ctx context.Context) ([]Environment, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, port, preview_port, created FROM environments ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read environments: %w", err)
	}
	defer rows.Close()
	var out []Environment
	for rows.Next() {
		var e Environment
		if err := rows.Scan(&e.Name, &e.Port, &e.PreviewPort, nanos{&e.Created}); err != nil {
			return nil, fmt.Errorf("read environments: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read environments: %w", err)
	}
	return out, nil
}

// AddEnvRevision records r as the environment's next revision and sets
// r.Number, r.Created and r.Updated. The environment must exist.
func (s *Store) AddEnvRevision(ctx context.Context, r *EnvRevision) error {
	if r.Status == "" {
		return fmt.Errorf("record revision of %s: no status", r.Environment)
	}
	now := s.now().UTC()
	workloads, spec := r.Workloads, r.Spec
	if workloads == nil {
		workloads = []byte("[]")
	}
	if spec == nil {
		spec = []byte("{}")
	}
	return s.withTx(ctx, "record revision of "+r.Environment, func(tx *sql.Tx) error {
		// Locking the environment's row makes the revision numbers of
		// processes recording at once follow each other.
		var name string
		switch err := tx.QueryRowContext(ctx, `SELECT name FROM environments WHERE name = ?`+s.d.rowLock, r.Environment).Scan(&name); {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("environment %s: %w", r.Environment, ErrNotFound)
		case err != nil:
			return err
		}
		var max int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(number), 0) FROM env_revisions WHERE environment = ?`, r.Environment).Scan(&max); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO env_revisions
			(environment, number, digest, workloads, spec, run_id, who, reason, status, message, created, updated)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.Environment, max+1, r.Digest, string(workloads), string(spec), r.RunID, r.Who, r.Reason, r.Status, r.Message, toNanos(now), toNanos(now))
		if err != nil {
			return err
		}
		r.Number, r.Created, r.Updated = max+1, now, now
		return nil
	})
}

// SetEnvRevisionStatus records the status (and message) of revision
// number of env.
func (s *Store) SetEnvRevisionStatus(ctx context.Context, env string, number int, status, message string) error {
	what := fmt.Sprintf("record status %s of revision %d of %s", status, number, env)
	return s.withTx(ctx, what, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE env_revisions SET status = ?, message = ?, updated = ? WHERE environment = ? AND number = ?`,
			status, message, toNanos(s.now()), env, number)
		if err != nil {
			return err
		}
		return oneRow(res, fmt.Sprintf("revision %d of %s", number, env))
	})
}

// ServeEnvRevision records, in one transaction, that revision number of
// env serves and that every other serving revision of env is superseded.
func (s *Store) ServeEnvRevision(ctx context.Context, env string, number int) error {
	what := fmt.Sprintf("record revision %d of %s as serving", number, env)
	return s.withTx(ctx, what, func(tx *sql.Tx) error {
		// One serving revision per environment: two processes switching
		// at once take turns on the environment's row.
		var name string
		switch err := tx.QueryRowContext(ctx, `SELECT name FROM environments WHERE name = ?`+s.d.rowLock, env).Scan(&name); {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("environment %s: %w", env, ErrNotFound)
		case err != nil:
			return err
		}
		now := toNanos(s.now())
		if _, err := tx.ExecContext(ctx, `UPDATE env_revisions SET status = ?, updated = ? WHERE environment = ? AND status = ? AND number <> ?`,
			RevisionSuperseded, now, env, RevisionServing, number); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE env_revisions SET status = ?, message = '', updated = ? WHERE environment = ? AND number = ?`,
			RevisionServing, now, env, number)
		if err != nil {
			return err
		}
		return oneRow(res, fmt.Sprintf("revision %d of %s", number, env))
	})
}

func oneRow(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

const revisionColumns = `environment, number, digest, workloads, spec, run_id, who, reason, status, message, created, updated`

func scanRevision(sc interface{ Scan(...any) error }) (EnvRevision, error) {
	var r EnvRevision
	var workloads, spec string
	err := sc.Scan(&r.Environment, &r.Number, &r.Digest, &workloads, &spec, &r.RunID, &r.Who, &r.Reason, &r.Status, &r.Message,
		nanos{&r.Created}, nanos{&r.Updated})
	r.Workloads, r.Spec = []byte(workloads), []byte(spec)
	return r, err
}

// EnvRevisions returns env's revisions, oldest first.
func (s *Store) EnvRevisions(ctx context.Context, env string) ([]EnvRevision, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+revisionColumns+` FROM env_revisions WHERE environment = ? ORDER BY number`, env)
	if err != nil {
		return nil, fmt.Errorf("read revisions of %s: %w", env, err)
	}
	defer rows.Close()
	var out []EnvRevision
	for rows.Next() {
		r, err := scanRevision(rows)
		if err != nil {
			return nil, fmt.Errorf("read revisions of %s: %w", env, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read revisions of %s: %w", env, err)
	}
	return out, nil
}

// EnvRevision returns revision number of env (ErrNotFound if none).
func (s *Store) EnvRevision(ctx context.Context, env string, number int) (EnvRevision, error) {
	r, err := scanRevision(s.r.QueryRowContext(ctx, `SELECT `+revisionColumns+` FROM env_revisions WHERE environment = ? AND number = ?`, env, number))
	if errors.Is(err, sql.ErrNoRows) {
		return EnvRevision{}, fmt.Errorf("revision %d of %s: %w", number, env, ErrNotFound)
	}
	if err != nil {
		return EnvRevision{}, fmt.Errorf("read revision %d of %s: %w", number, env, err)
	}
	return r, nil
}

// LockEnvironment takes the exclusive lock of environment name: a flock on
// locks/env-NAME.lock in the store's directory, which the kernel drops
// when the process dies however it dies. Every lock taken is its own open
// file, so a second LockEnvironment of the same name fails with
// ErrEnvLocked in this process as in another one. unlock releases it.
func (s *Store) LockEnvironment(name string) (unlock func(), err error) {
	if err := CheckEnvName(name); err != nil {
		return nil, err
	}
	path := filepath.Join(s.dir, "locks", "env-"+name+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock environment %s: %w", name, err)
	}
	if err := flockNB(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("lock environment %s: %w", name, ErrEnvLocked)
		}
		return nil, fmt.Errorf("lock environment %s: %w", name, err)
	}
	return func() { unlockClose(f) }, nil
}
