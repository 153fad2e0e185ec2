// Package store keeps gantry's run history: runs, stages, steps, their logs,
// artifacts, events, approvals and the audit log, in one SQLite database
// (modernc.org/sqlite, pure Go) under the state directory, or in a
// PostgreSQL database (WithURL, through pgx's database/sql driver) that
// several gantry processes and machines share.
//
// SQLite runs in WAL mode with a busy timeout, so a `gantry runs`
// in one process can read while a run writes in another. Within a process
// every write goes through a single connection (database/sql pool of one),
// which serialises the engine's parallel steps; reads use their own pool.
// On PostgreSQL one pool serves both, and the sequences that read, then
// write, lock the rows they read (dialect.rowLock) or write only if what
// they read still holds.
//
// A run that is open in a process holds an exclusive flock on
// dir/locks/run-<id>.lock. When the process dies, however it dies, the
// kernel drops the lock; the next Open (RecoverInterrupted) finds the run
// still "running" with a free lock and marks it interrupted.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Status is the state of a run, stage or step.
type Status string

// Statuses of runs, stages and steps.
const (
	StatusPending     Status = "pending"
	StatusRunning     Status = "running"
	StatusPassed      Status = "passed"
	StatusFailed      Status = "failed"
	StatusSkipped     Status = "skipped"
	StatusCancelled   Status = "cancelled"
	StatusInterrupted Status = "interrupted"
	StatusCached      Status = "cached"
	// StatusWaiting: the run (and its stage) waits for an approval; no
	// process holds it until it is resumed.
	StatusWaiting Status = "waiting"
	// StatusRejected: an approval was refused (or timed out); final, and a
	// failure like failed.
	StatusRejected Status = "rejected"
	// StatusAwaitingApproval is the old name of StatusWaiting.
	//
	// Deprecated: use StatusWaiting; migration 0002 renamed stored rows.
	StatusAwaitingApproval = StatusWaiting
)

// Done reports whether s is final: nothing more will happen to the run,
// stage or step.
func (s Status) Done() bool {
	switch s {
	case StatusPassed, StatusFailed, StatusSkipped, StatusCancelled, StatusInterrupted, StatusCached, StatusRejected:
		return true
	}
	return false
}

// Approval statuses.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalRejected = "rejected"
)

// InterruptedMessage is the message of runs, stages and steps whose gantry
// process stopped without finishing them.
const InterruptedMessage = "the gantry process running it stopped (killed or crashed)"

// EventRunInterrupted is the type of the event RecoverInterrupted records.
const EventRunInterrupted = "run.interrupted"

// Run is one execution of a pipeline.
type Run struct {
	ID       int64
	Pipeline string
	// Dir is the repository the run built.
	Dir string
	// Event is "push" or "pull_request"; Trigger says who or what started
	// the run ("cli", "webhook", ...).
	Event, Branch, SHA, BaseRef, Trigger string
	Status                               Status
	Message                              string
	Started, Finished                    time.Time // zero if unset
	Params                               map[string]string
	// PipelineFile is the path the pipeline was read from and
	// PipelineSource its exact bytes, so that a resumed run runs the same
	// pipeline whatever the working tree holds by then. Nil for runs
	// recorded before schema version 2.
	PipelineFile   string
	PipelineSource []byte
	// Request is what was asked of the run.
	Request RunRequest
}

// RunRequest is the part of a run's request that a resumption repeats.
type RunRequest struct {
	Stages  []string `json:"stages,omitempty"`
	From    string   `json:"from,omitempty"`
	Until   string   `json:"until,omitempty"`
	NoCache bool     `json:"no_cache,omitempty"`
	// Actor started the run.
	Actor string `json:"actor,omitempty"`
	// Vars are the pipeline variables set for the run (gantry run --var).
	Vars map[string]string `json:"vars,omitempty"`
	// Command is the gantry command that ran a one-step pipeline of its
	// own ("scan"); empty for a pipeline file.
	Command string `json:"command,omitempty"`
}

// Stage is one stage of a run.
type Stage struct {
	RunID   int64
	Name    string
	Index   int
	Status  Status
	Message string
	Gate    string
	// GateResult is nil until the gate has been evaluated.
	GateResult        *bool
	Started, Finished time.Time
}

// Step is one step of a stage.
type Step struct {
	RunID             int64
	Stage, Name, Kind string
	Status            Status
	Attempt           int
	Message, Summary  string
	CacheKey          string
	CachedFrom        int64 // run whose result a cached step reused
	Outputs           map[string]any
	Started, Finished time.Time
}

// LogLine is one line of a step's log.
type LogLine struct {
	// Seq numbers the lines of one (run, stage, step) from 1; AppendLogs
	// assigns it.
	Seq  int64
	Time time.Time
	// Stream is "out" (the step's output) or "sys" (gantry's own lines).
	Stream string
	Text   string
	// Stage and Step are set by Logs.
	Stage, Step string
	// Cursor is set by LogsAfter: passed back to it, it returns the
	// lines appended after this one.
	Cursor int64
}

// Artifact records a blob of the artifact store produced by a step.
type Artifact struct {
	RunID             int64
	Stage, Step, Name string
	Digest            string // "sha256:<hex>"
	MediaType         string
	Size              int64
	Created           time.Time
}

// Event is something that happened during a run, for the timeline and
// for notifications.
type Event struct {
	ID, RunID         int64
	Time              time.Time
	Type, Stage, Step string
	Data              map[string]any
}

// Approval is a manual gate's request and its decision.
type Approval struct {
	ID, RunID int64
	Stage     string
	// Status is ApprovalPending, ApprovalApproved or ApprovalRejected.
	Status string
	// RequestedRoles lists the roles that may decide, comma separated.
	RequestedRoles     string
	Actor, Comment     string
	Requested, Decided time.Time
	// Deadline is when a pending approval times out (rejected by
	// ExpireApprovals); zero: never.
	Deadline time.Time
	// Digest is the image digest the run had produced when the decision
	// was taken, if any; Evidence is the JSON of the gate verdicts shown
	// to the decider.
	Digest, Evidence string
}

// AuditEntry records who did what.
type AuditEntry struct {
	ID                             int64
	Time                           time.Time
	Actor, Action, Subject, Detail string
}

// ListOptions filters ListRuns.
type ListOptions struct {
	Pipeline string
	Status   Status
	Limit    int // 0: all
	// Branch keeps the runs of one branch.
	Branch string
	// Since keeps the runs started at or after it (zero: all).
	Since time.Time
	// Before keeps the runs with a smaller ID (0: all): the cursor of
	// a paginated list, newest first.
	Before int64
}

// ErrNotFound is returned (wrapped, naming what was looked up) when a run,
// approval or cache entry does not exist.
var ErrNotFound = errors.New("not found")

// ErrRunHeld is returned by ResumeRun for a run that a live process (this
// one or another) holds.
var ErrRunHeld = errors.New("the run is held by a live gantry process")

// ErrAlreadyDecided is returned by DecideApproval for an approval that is
// no longer pending.
var ErrAlreadyDecided = errors.New("approval already decided")

// Store is the run history. It is safe for concurrent use.
type Store struct {
	dir string
	w   *sql.DB // the single writer connection (SQLite); the pool (PostgreSQL)
	r   *sql.DB // readers (SQLite); the same pool as w (PostgreSQL)
	d   *dialect
	// url is the PostgreSQL URL given to WithURL, "" for SQLite;
	// location says where the data is, password masked.
	url, location string
	// host names this machine in the runs and process groups it owns
	// (see recover.go).
	host   string
	log    *slog.Logger
	now    func() time.Time
	locks  *runLocks
	closed sync.Once
}

// Option configures Open.
type Option func(*Store)

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) {
		if l != nil {
			s.log = l
		}
	}
}

// WithURL keeps the run history in the PostgreSQL database u
// (postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=..., see
// docs/postgres.md) instead of dir/gantry.db; "" keeps SQLite. The
// password never appears in errors or logs.
func WithURL(u string) Option {
	return func(s *Store) { s.url = u }
}

// WithHost names the machine in the runs and process groups this store
// records (default: os.Hostname). Recovery only ends what was recorded
// under the same name.
func WithHost(h string) Option {
	return func(s *Store) {
		if h != "" {
			s.host = h
		}
	}
}

// Open opens (creating if needed) the store in dir: the database
// dir/gantry.db (or the PostgreSQL database of WithURL) and the run locks
// in dir/locks/. It first checks the database without writing to it and
// refuses a damaged one with a *DamagedError (errors.Is ErrDamaged):
// SQLite's quick_check fails, or a table or column of the recorded schema
// version is missing. It then applies pending schema migrations, refuses
// a database written by a newer gantry, and marks runs whose process died
// as interrupted (RecoverInterrupted).
func Open(ctx context.Context, dir string, opts ...Option) (*Store, error) {
	return open(ctx, dir, migrationFiles, opts...)
}

func open(ctx context.Context, dir string, migs migrationSource, opts ...Option) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, "locks"), 0o755); err != nil {
		return nil, fmt.Errorf("open store: create %s: %w", abs, err)
	}
	s := &Store{
		dir:   abs,
		d:     sqliteDialect,
		log:   slog.New(slog.DiscardHandler),
		now:   time.Now,
		locks: newRunLocks(filepath.Join(abs, "locks")),
	}
	for _, o := range opts {
		o(s)
	}
	if s.host == "" {
		if s.host, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("open store: name this host: %w", err)
		}
	}
	if s.url != "" {
		return s.openPostgresStore(ctx, migs)
	}
	dbPath := filepath.Join(abs, "gantry.db")
	s.location = dbPath
	if err := checkDatabase(ctx, dbPath, migs, FullCheckLimit); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if s.w, err = sql.Open("sqlite", dsn(dbPath, false)); err != nil {
		return nil, fmt.Errorf("open store %s: %w", dbPath, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, s.w, s.d, migs); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("open store %s: %w", dbPath, err)
	}
	if s.r, err = sql.Open("sqlite", dsn(dbPath, true)); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("open store %s: %w", dbPath, err)
	}
	s.r.SetMaxOpenConns(4)
	s.r.SetMaxIdleConns(4)
	if _, err := s.RecoverInterrupted(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store %s: %w", dbPath, err)
	}
	return s, nil
}

func (s *Store) openPostgresStore(ctx context.Context, migs migrationSource) (*Store, error) {
	if !IsPostgresURL(s.url) {
		return nil, fmt.Errorf("open store: %w", ErrUnsupportedURL)
	}
	t, err := parsePostgresURL(s.url)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.d, s.location = postgresDialect, t.redacted
	if err := s.openPostgres(ctx, t, migs); err != nil {
		return nil, redact(fmt.Errorf("open store: %w", err), t.secrets)
	}
	if _, err := s.RecoverInterrupted(ctx); err != nil {
		s.Close()
		return nil, redact(fmt.Errorf("open store %s: %w", t.redacted, err), t.secrets)
	}
	s.log.DebugContext(ctx, "run history in PostgreSQL", "database", t.redacted, "pool", t.pool)
	return s, nil
}

// ErrUnsupportedURL is returned by Open for a WithURL that does not start
// with postgres:// or postgresql://.
var ErrUnsupportedURL = errors.New("unsupported store URL: want postgres://USER:PASSWORD@HOST:PORT/DATABASE (or none for SQLite in the state dir)")

// dsn builds the modernc.org/sqlite data source name: WAL, a busy timeout
// for other processes' writes, foreign keys, and BEGIN IMMEDIATE so that a
// writer never has to upgrade a read lock (the classic SQLITE_BUSY trap).
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Location says where the run history is: the SQLite file, or the
// PostgreSQL URL with its password masked.
func (s *Store) Location() string { return s.location }

// Backend is "sqlite" or "postgres".
func (s *Store) Backend() string { return s.d.name }

// Ping checks that the database answers, through the readers' pool
// (SQLite's single writer connection may be held by a long write that
// says nothing of the database's health; on PostgreSQL it is one pool).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("store %s: %w", s.location, err)
	}
	return nil
}

// Close releases the locks of runs still open in this process (the next
// Open marks them interrupted) and closes the database.
func (s *Store) Close() error {
	var err error
	s.closed.Do(func() {
		s.locks.releaseAll()
		var errs []error
		if s.r != nil && s.r != s.w {
			errs = append(errs, s.r.Close())
		}
		if s.w != nil {
			errs = append(errs, s.w.Close())
		}
		if e := errors.Join(errs...); e != nil {
			err = fmt.Errorf("close store %s: %w", s.location, e)
		}
	})
	return err
}

// withTx runs fn in a write transaction and commits it.
func (s *Store) withTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", what, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // the error from fn is the one that matters
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}
