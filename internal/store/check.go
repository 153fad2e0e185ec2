package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"

	"modernc.org/sqlite"
)

// ErrDamaged is matched (errors.Is) by the *DamagedError Open returns for
// a database that fails its integrity check.
var ErrDamaged = errors.New("run history database is damaged")

// DamagedError says why Open refused a database. Open never modifies a
// database it refuses.
type DamagedError struct {
	Path     string
	Problems []string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Path, ErrDamaged, strings.Join(e.Problems, "; "))
}

// Is makes errors.Is(err, ErrDamaged) true.
func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

// FullCheckLimit is the largest database Open checks page by page with
// PRAGMA quick_check (which reads every page: about 17 ms per MiB here,
// 4.3 s for 264 MiB). A larger database gets the same check for every
// table except logs, whose pages are most of it.
const FullCheckLimit = 64 << 20

// SQLite primary result codes for a damaged file.
const (
	sqliteCorrupt = 11
	sqliteNotADB  = 26
)

// checkDatabase checks the database at path before anything writes to it:
// SQLite's quick_check (of every table but logs past fullLimit bytes), and that every table and column the recorded
// schema version implies is there. It reads through a read-only
// connection, so a damaged file is left as it is. A missing or empty file
// (a new store) passes.
func checkDatabase(ctx context.Context, path string, migs migrationSource, fullLimit int64) error {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) || (err == nil && fi.Size() == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Set("mode", "ro")
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	damaged := func(problems ...string) error { return &DamagedError{Path: path, Problems: problems} }
	classify := func(what string, err error) error {
		var se *sqlite.Error
		if errors.As(err, &se) && (se.Code()&0xff == sqliteCorrupt || se.Code()&0xff == sqliteNotADB) {
			return damaged(what + ": " + err.Error())
		}
		return fmt.Errorf("check %s: %s: %w", path, what, err)
	}

	got, err := readSchema(ctx, db)
	if err != nil {
		return classify("read schema", err)
	}
	var problems []string
	if fi.Size() <= fullLimit {
		p, err := quickCheck(ctx, db, "")
		if err != nil {
			return classify("quick_check", err)
		}
		problems = append(problems, p...)
	} else {
		for table := range got {
			if table == "logs" {
				continue
			}
			p, err := quickCheck(ctx, db, table)
			if err != nil {
				return classify("quick_check "+table, err)
			}
			problems = append(problems, p...)
		}
	}
	if len(problems) > 0 {
		return damaged(problems...)
	}

	if _, ok := got["schema_migrations"]; !ok {
		if len(got) > 0 {
			return damaged("table schema_migrations is missing, so the schema version is unknown")
		}
		return nil
	}
	var version int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return classify("read schema version", err)
	}
	want, err := expectedSchema(ctx, migs, version)
	if err != nil {
		return err
	}
	if want == nil {
		return nil // newer than this binary; migrate says so
	}
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
		return damaged(problems...)
	}
	return nil
}

// quickCheck runs PRAGMA quick_check, of one table when table is set, and
// returns the problems it reports.
func quickCheck(ctx context.Context, db *sql.DB, table string) ([]string, error) {
	stmt := `PRAGMA quick_check`
	if table != "" {
		stmt = `PRAGMA quick_check("` + strings.ReplaceAll(table, `"`, `""`) + `")`
	}
	rows, err := db.QueryContext(ctx, stmt)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		if s != "ok" {
			problems = append(problems, "quick_check: "+s)
		}
	}
	return problems, rows.Err()
}

// readSchema returns the columns of every table in db.
func readSchema(ctx context.Context, db *sql.DB) (map[string]map[string]bool, error) {
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		return nil, err
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		tables = append(tables, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := map[string]map[string]bool{}
	for _, t := range tables {
		cols, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, t)
		if err != nil {
			return nil, err
		}
		out[t] = map[string]bool{}
		for cols.Next() {
			var c string
			if err := cols.Scan(&c); err != nil {
				cols.Close()
				return nil, err
			}
			out[t][c] = true
		}
		cols.Close()
		if err := cols.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// expectedSchema returns the tables and columns the first version
// migrations create, by applying them to an empty in-memory database; nil
// when version is past the migrations this binary knows.
func expectedSchema(ctx context.Context, migs migrationSource, version int) (map[string][]string, error) {
	all, err := migs.load()
	if err != nil {
		return nil, err
	}
	if version > len(all) {
		return nil, nil
	}
	mem, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return nil, fmt.Errorf("expected schema: %w", err)
	}
	defer mem.Close()
	mem.SetMaxOpenConns(1) // every connection is its own in-memory database
	for _, mg := range all[:version] {
		if _, err := mem.ExecContext(ctx, mg.sql); err != nil {
			return nil, fmt.Errorf("expected schema: apply %s: %w", mg.name, err)
		}
	}
	got, err := readSchema(ctx, mem)
	if err != nil {
		return nil, fmt.Errorf("expected schema: %w", err)
	}
	out := map[string][]string{}
	for t, cols := range got {
		for c := range cols {
			out[t] = append(out[t], c)
		}
		sort.Strings(out[t])
	}
	return out, nil
}
