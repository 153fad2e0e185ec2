package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	r := &Run{Pipeline: "p"}
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLogs(ctx, r.ID, "a", "b", []LogLine{{Text: "hello"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ctx, r.ID, StatusPassed, "ok", t0); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := s.r.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir)
	got, err := s.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusPassed || got.Message != "ok" {
		t.Errorf("after reopen: run %+v, want passed ok", got)
	}
	ls, err := s.Logs(ctx, r.ID, "a", "b", 0)
	if err != nil || len(ls) != 1 || ls[0].Text != "hello" {
		t.Errorf("after reopen: logs %+v, %v; want [hello]", ls, err)
	}
	v, err := s.SchemaVersion(ctx)
	if want := knownVersion(t); err != nil || v != want {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, want)
	}
	// A new run after reopening gets the next ID.
	r2 := &Run{}
	if err := s.CreateRun(ctx, r2); err != nil || r2.ID != 2 {
		t.Errorf("second run ID = %d, %v; want 2", r2.ID, err)
	}
}

func TestNewerSchemaRejected(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (7, '0007_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(ctx, dir)
	if err == nil {
		t.Fatal("Open of a database with schema version 7 succeeded, want an error")
	}
	for _, want := range []string{"version 7", fmt.Sprintf("version %d", knownVersion(t))} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

// knownVersion is the newest schema version this binary knows.
func knownVersion(t *testing.T) int {
	t.Helper()
	all, err := migrationFiles.load()
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

// withMigration returns the real migrations plus one more file.
func withMigration(t *testing.T, name, sqlText string) migrationSource {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(migrationsFS, "migrations", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrationsFS, p)
		m[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	m["migrations/"+name] = &fstest.MapFile{Data: []byte(sqlText)}
	return migrationSource{fsys: m, dir: "migrations"}
}

func TestUpgrade(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	r := &Run{Pipeline: "p"}
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ctx, r.ID, StatusPassed, "", t0); err != nil {
		t.Fatal(err)
	}
	s.Close()

	next := knownVersion(t) + 1
	t.Run("failing migration rolls back", func(t *testing.T) {
		name := fmt.Sprintf("%04d_bad.sql", next)
		bad := withMigration(t, name, "ALTER TABLE runs ADD COLUMN note TEXT; THIS IS NOT SQL;")
		_, err := open(ctx, dir, bad)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Fatalf("open with a bad migration: error %v, want one naming %s", err, name)
		}
		db, err := sql.Open("sqlite", dsn(filepath.Join(dir, "gantry.db"), true))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM pragma_table_info('runs') WHERE name = 'note'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("column note exists (%d, %v) after a failed migration, want it rolled back", n, err)
		}
	})

	t.Run("good migration applies", func(t *testing.T) {
		good := withMigration(t, fmt.Sprintf("%04d_note.sql", next), "ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT 'x';")
		s2, err := open(ctx, dir, good)
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		if v, _ := s2.SchemaVersion(ctx); v != next {
			t.Errorf("SchemaVersion = %d, want %d", v, next)
		}
		if got, err := s2.GetRun(ctx, r.ID); err != nil || got.Status != StatusPassed {
			t.Errorf("run after upgrade = %+v, %v; want it passed", got, err)
		}
	})

	t.Run("gap rejected", func(t *testing.T) {
		name := fmt.Sprintf("%04d_gap.sql", next+1)
		gap := withMigration(t, name, "SELECT 1;")
		if _, err := open(ctx, t.TempDir(), gap); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("open with a gap in versions: error %v, want one naming %s", err, name)
		}
	})
}
