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
	"time"
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
	// postgres, when set, replaces sql on PostgreSQL: the file
	// NNNN_name.postgres.sql beside NNNN_name.sql, for the statements
	// that have no form both databases take.
	postgres     string
	postgresName string
}

// postgresSuffix ends the name of a migration's PostgreSQL variant.
const postgresSuffix = ".postgres.sql"

// text returns the migration's SQL for dialect d.
func (mg migration) text(d *dialect) string {
	if d.name == dialectPostgres && mg.postgres != "" {
		return d.ddl(mg.postgres)
	}
	return d.ddl(mg.sql)
}

func (m migrationSource) load() ([]migration, error) {
	entries, err := fs.ReadDir(m.fsys, m.dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []migration
	variants := map[int]migration{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql (or NNNN_description%s)", e.Name(), postgresSuffix)
		}
		b, err := fs.ReadFile(m.fsys, path.Join(m.dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		if strings.HasSuffix(e.Name(), postgresSuffix) {
			if other, ok := variants[v]; ok {
				return nil, fmt.Errorf("migration %s: version %d has another PostgreSQL variant, %s", e.Name(), v, other.name)
			}
			variants[v] = migration{version: v, name: e.Name(), sql: string(b)}
			continue
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, mg := range out {
		if mg.version != i+1 {
			return nil, fmt.Errorf("migration %s: want version %d (versions must run 1, 2, 3, ... without gaps)", mg.name, i+1)
		}
		if pv, ok := variants[mg.version]; ok {
			if strings.TrimSuffix(pv.name, postgresSuffix) != strings.TrimSuffix(mg.name, ".sql") {
				return nil, fmt.Errorf("migration %s: a PostgreSQL variant must be named %s", pv.name, strings.TrimSuffix(mg.name, ".sql")+postgresSuffix)
			}
			out[i].postgres, out[i].postgresName = pv.sql, pv.name
			delete(variants, mg.version)
		}
	}
	if len(variants) > 0 {
		var names []string
		for _, pv := range variants {
			names = append(names, pv.name)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("migration %s: PostgreSQL variant of no migration (want a NNNN_name.sql of its version beside it)", strings.Join(names, ", "))
	}
	return out, nil
}

// migrate brings the schema up to the newest version in migs, in one
// transaction, and refuses a database whose schema is newer than that.
// On PostgreSQL the transaction first takes an advisory lock, so that of
// two processes opening the database at once one migrates and the other
// then finds the schema current.
func migrate(ctx context.Context, db *sql.DB, d *dialect, migs migrationSource) error {
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
	if d.name == dialectPostgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(migrationLockKey)); err != nil {
			return fmt.Errorf("migrate schema: take the migration lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, d.ddl(`CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name    TEXT    NOT NULL,
		applied INTEGER NOT NULL)`)); err != nil {
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
		name := mg.name
		if d.name == dialectPostgres && mg.postgresName != "" {
			name = mg.postgresName
		}
		if _, err := tx.ExecContext(ctx, mg.text(d)); err != nil {
			return fmt.Errorf("migrate schema: apply %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`,
			mg.version, mg.name, time.Now().Unix()); err != nil {
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
