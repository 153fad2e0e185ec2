package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// migrationFiles is the schema this binary knows.
var migrationFiles = migrationSource{fsys: migrationsFS, dir: "migrations"}

// migrationSource is a directory of NNNN_name.sql files, applied in order.
type migrationSource struct {
	fsys fs.FS
	dir  string
}

type migration struct {
	version int
	name    string
	sql     string
}

func (m migrationSource) load() ([]migration, error) {
	entries, err := fs.ReadDir(m.fsys, m.dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", e.Name())
		}
		b, err := fs.ReadFile(m.fsys, path.Join(m.dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, mg := range out {
		if mg.version != i+1 {
			return nil, fmt.Errorf("migration %s: want version %d (versions must run 1, 2, 3, ... without gaps)", mg.name, i+1)
		}
	}
	return out, nil
}

// migrate brings the schema up to the newest version in migs, in one
// transaction, and refuses a database whose schema is newer than that.
func migrate(ctx context.Context, db *sql.DB, migs migrationSource) error {
	all, err := migs.load()
	if err != nil {
		return err
	}
	known := len(all)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate schema: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name    TEXT    NOT NULL,
		applied INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate schema: create schema_migrations: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("migrate schema: read version: %w", err)
	}
	if current > known {
		return fmt.Errorf("database schema version %d is newer than this gantry binary supports (version %d); use a newer gantry", current, known)
	}
	for _, mg := range all[current:] {
		if _, err := tx.ExecContext(ctx, mg.sql); err != nil {
			return fmt.Errorf("migrate schema: apply %s: %w", mg.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, strftime('%s','now'))`,
			mg.version, mg.name); err != nil {
			return fmt.Errorf("migrate schema: record %s: %w", mg.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate schema: commit: %w", err)
	}
	return nil
}

// SchemaVersion returns the schema version of the open database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}
