package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// DefaultPoolSize is the number of connections a store keeps to
// PostgreSQL at most, unless the URL's pool_max_conns says otherwise.
const DefaultPoolSize = 8

// migrationLockKey is the pg_advisory_xact_lock key under which
// migrations run, so that two processes opening the same database at
// once apply them once ("gantry" in ASCII).
const migrationLockKey = 0x67616e747279

// IsPostgresURL reports whether u names a PostgreSQL database
// (postgres:// or postgresql://).
func IsPostgresURL(u string) bool {
	scheme, _, ok := strings.Cut(u, "://")
	return ok && (strings.EqualFold(scheme, "postgres") || strings.EqualFold(scheme, "postgresql"))
}

// CheckURL reports what is wrong with a store URL ("" is SQLite and
// fine) without connecting; its errors mask the password.
func CheckURL(u string) error {
	if u == "" {
		return nil
	}
	if !IsPostgresURL(u) {
		return ErrUnsupportedURL
	}
	_, err := parsePostgresURL(u)
	return err
}

// pgTarget is a parsed --store URL.
type pgTarget struct {
	config *pgx.ConnConfig
	pool   int
	// redacted is the URL with its password masked, for messages.
	redacted string
	// secrets are the password as given and as written in the URL,
	// masked in every error.
	secrets []string
}

// parsePostgresURL reads a postgres:// URL: what pgx understands
// (host, port, user, password, database, sslmode and the other libpq
// parameters) and gantry's own pool_max_conns, the pool size.
func parsePostgresURL(raw string) (*pgTarget, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url's error quotes the URL, password and all.
		return nil, errors.New("store URL: not a valid URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=...)")
	}
	t := &pgTarget{pool: DefaultPoolSize}
	if pw, ok := u.User.Password(); ok && pw != "" {
		t.secrets = append(t.secrets, pw, url.QueryEscape(pw), url.PathEscape(pw))
	}
	q := u.Query()
	if pw := q.Get("password"); pw != "" {
		t.secrets = append(t.secrets, pw, url.QueryEscape(pw))
	}
	if v, ok := q["pool_max_conns"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 {
			return nil, fmt.Errorf("store URL %s: pool_max_conns=%q: want a whole number of at least 1", redactURL(u), v[0])
		}
		t.pool = n
		q.Del("pool_max_conns")
		u.RawQuery = q.Encode()
	}
	t.redacted = redactURL(u)
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, redact(fmt.Errorf("store URL %s: %w", t.redacted, err), t.secrets)
	}
	t.config = cfg
	return t, nil
}

// redactURL is u with its password, in the user part or the query, masked.
func redactURL(u *url.URL) string {
	c := *u
	if _, ok := c.User.Password(); ok {
		c.User = url.UserPassword(c.User.Username(), "xxxxx")
	}
	q := c.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		c.RawQuery = q.Encode()
	}
	return c.String()
}

// redactedError masks secrets in the text of err, keeping err for
// errors.Is and errors.As.
type redactedError struct {
	err     error
	secrets []string
}

func (e *redactedError) Error() string {
	s := e.err.Error()
	for _, sec := range e.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "xxxxx")
		}
	}
	return s
}

func (e *redactedError) Unwrap() error { return e.err }

func redact(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	return &redactedError{err: err, secrets: secrets}
}

// openDB returns a pool of connections to the target's database that
// rebind placeholders.
func (t *pgTarget) openDB() *sql.DB {
	return sql.OpenDB(pgConnector{inner: stdlib.GetConnector(*t.config)})
}

// openPostgres connects s to the database of target, checks it and
// migrates it. s.w and s.r are the same pool: PostgreSQL needs no
// separate writer.
func (s *Store) openPostgres(ctx context.Context, t *pgTarget, migs migrationSource) error {
	db := t.openDB()
	db.SetMaxOpenConns(t.pool)
	db.SetMaxIdleConns(t.pool)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return fmt.Errorf("connect to %s: %w", t.redacted, err)
	}
	if err := checkPostgres(ctx, db, migs, t.redacted); err != nil {
		db.Close()
		return err
	}
	if err := migrate(ctx, db, postgresDialect, migs); err != nil {
		db.Close()
		return fmt.Errorf("%s: %w", t.redacted, err)
	}
	s.w, s.r = db, db
	return nil
}

// checkPostgres checks, before migrating, that every table and column the
// recorded schema version's migrations create is there (the same check as
// SQLite's, whose expected schema it shares). PostgreSQL looks after its
// own pages, so there is no quick_check. A database without
// schema_migrations is new when it has no gantry table either.
func checkPostgres(ctx context.Context, db *sql.DB, migs migrationSource, where string) error {
	got, err := readPostgresSchema(ctx, db)
	if err != nil {
		return fmt.Errorf("check %s: %w", where, err)
	}
	if _, ok := got["schema_migrations"]; !ok {
		return nil
	}
	var version int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return fmt.Errorf("check %s: read schema version: %w", where, err)
	}
	want, err := expectedSchema(ctx, migs, version)
	if err != nil || want == nil {
		return err // nil: newer than this binary; migrate says so
	}
	var problems []string
	tables := make([]string, 0, len(want))
	for t := range want {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, table := range tables {
		have, ok := got[table]
		if !ok {
			problems = append(problems, "table "+table+" is missing")
			continue
		}
		for _, col := range want[table] {
			if !have[col] {
				problems = append(problems, "table "+table+" lacks column "+col)
			}
		}
	}
	if len(problems) > 0 {
		return &DamagedError{Path: where, Problems: problems}
	}
	return nil
}

// readPostgresSchema returns the columns of every table in the current
// schema (the first of the connection's search_path).
func readPostgresSchema(ctx context.Context, db *sql.DB) (map[string]map[string]bool, error) {
	rows, err := db.QueryContext(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = current_schema()`)
	if err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]bool{}
	for rows.Next() {
		var t, c string
		if err := rows.Scan(&t, &c); err != nil {
			return nil, fmt.Errorf("read schema: %w", err)
		}
		if out[t] == nil {
			out[t] = map[string]bool{}
		}
		out[t][c] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	return out, nil
}
