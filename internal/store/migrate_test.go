package store

import (
	"context"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func TestReopenKeepsData(t *testing.T) { eachBackend(t, testReopenKeepsData) }

func testReopenKeepsData(t *testing.T, be *backend) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := be.Open(ctx, dir)
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
	if !be.postgres() { // WAL is SQLite's
		var mode string
		if err := s.r.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("journal_mode = %q, %v; want wal", mode, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = be.open(t, dir)
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

func TestNewerSchemaRejected(t *testing.T) { eachBackend(t, testNewerSchemaRejected) }

func testNewerSchemaRejected(t *testing.T, be *backend) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := be.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (70, '0070_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = be.Open(ctx, dir)
	if err == nil {
		t.Fatal("Open of a database with schema version 70 succeeded, want an error")
	}
	for _, want := range []string{"version 70", fmt.Sprintf("version %d", knownVersion(t))} {
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

// nextMigration names a migration file n versions after the known ones.
func nextMigration(t *testing.T, n int, desc string) string {
	return fmt.Sprintf("%04d_%s.sql", knownVersion(t)+n, desc)
}

// upTo returns the real migrations up to version n.
func upTo(t *testing.T, n int) migrationSource {
	t.Helper()
	m := fstest.MapFS{}
	all, err := migrationFiles.load()
	if err != nil {
		t.Fatal(err)
	}
	for _, mg := range all[:n] {
		m["migrations/"+mg.name] = &fstest.MapFile{Data: []byte(mg.sql)}
	}
	return migrationSource{fsys: m, dir: "migrations"}
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

func TestUpgrade(t *testing.T) { eachBackend(t, testUpgrade) }

func testUpgrade(t *testing.T, be *backend) {
	ctx := context.Background()
	dir := t.TempDir()
	s := be.open(t, dir)
	r := &Run{Pipeline: "p"}
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ctx, r.ID, StatusPassed, "", t0); err != nil {
		t.Fatal(err)
	}
	s.Close()

	t.Run("failing migration rolls back", func(t *testing.T) {
		name := nextMigration(t, 1, "bad")
		bad := withMigration(t, name, "ALTER TABLE runs ADD COLUMN note TEXT; THIS IS NOT SQL;")
		_, err := be.openMigs(ctx, dir, bad)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Fatalf("open with a bad migration: error %v, want one naming %s", err, name)
		}
		if be.columnExists(t, dir, "runs", "note") {
			t.Errorf("column note exists after a failed migration, want it rolled back")
		}
	})

	t.Run("good migration applies", func(t *testing.T) {
		good := withMigration(t, nextMigration(t, 1, "note"), "ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT 'x';")
		s2, err := be.openMigs(ctx, dir, good)
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		if v, want := mustVersion(t, s2), knownVersion(t)+1; v != want {
			t.Errorf("SchemaVersion = %d, want %d", v, want)
		}
		if got, err := s2.GetRun(ctx, r.ID); err != nil || got.Status != StatusPassed {
			t.Errorf("run after upgrade = %+v, %v; want it passed", got, err)
		}
	})

	t.Run("gap rejected", func(t *testing.T) {
		name := nextMigration(t, 2, "gap")
		gap := withMigration(t, name, "SELECT 1;")
		if _, err := be.openMigs(ctx, t.TempDir(), gap); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("open with a gap in versions: error %v, want one naming %s", err, name)
		}
	})
}

func mustVersion(t *testing.T, s *Store) int {
	t.Helper()
	v, err := s.SchemaVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMigrateWaiting upgrades a version-1 database holding a run that
// awaits approval: the run and its stage read back as waiting, the run's
// pipeline is unknown (nil) and its approval has no deadline.
func TestMigrateWaiting(t *testing.T) { eachBackend(t, testMigrateWaiting) }

func testMigrateWaiting(t *testing.T, be *backend) {
	ctx := context.Background()
	dir := t.TempDir()
	// A database as version 1 left it: migrated to 1 only, written with a
	// plain connection (opening a Store would run the recovery of later
	// versions, whose tables do not exist yet).
	old, d := be.rawDB(t, dir)
	if err := migrate(ctx, old, d, upTo(t, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := old.ExecContext(ctx, `INSERT INTO runs (id, status) VALUES (1, 'awaiting_approval')`); err != nil {
		t.Fatal(err)
	}
	if _, err := old.ExecContext(ctx, `INSERT INTO stages (run_id, name, status) VALUES (1, 'prod', 'awaiting_approval'), (1, 'build', 'passed')`); err != nil {
		t.Fatal(err)
	}
	if _, err := old.ExecContext(ctx, `INSERT INTO approvals (run_id, stage, status) VALUES (1, 'prod', 'pending')`); err != nil {
		t.Fatal(err)
	}
	old.Close()

	s := be.open(t, dir)
	r, err := s.GetRun(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusWaiting || r.PipelineSource != nil {
		t.Errorf("run after upgrade: status %q, source %q; want waiting, nil", r.Status, r.PipelineSource)
	}
	stages, err := s.Stages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Status{}
	for _, st := range stages {
		got[st.Name] = st.Status
	}
	if want := map[string]Status{"prod": StatusWaiting, "build": StatusPassed}; !reflect.DeepEqual(got, want) {
		t.Errorf("stages after upgrade: got %v, want %v", got, want)
	}
	aps, err := s.Approvals(ctx, 1)
	if err != nil || len(aps) != 1 || !aps[0].Deadline.IsZero() || aps[0].Status != ApprovalPending {
		t.Errorf("approvals after upgrade: %+v, %v; want one pending without deadline", aps, err)
	}
}
