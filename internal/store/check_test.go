package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The tests of this file are SQLite's alone: they check the database
// file itself (quick_check of its pages, a file that is not a database).
// PostgreSQL's schema check is TestPostgresDamagedSchema.

// seedStore makes a store with one run and enough log lines to span many
// pages, and closes it (which checkpoints the WAL into gantry.db).
func seedStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	r := &Run{Pipeline: "p", Started: t0}
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	var lines []LogLine
	for i := 0; i < 3000; i++ {
		lines = append(lines, LogLine{Text: fmt.Sprintf("line %d of a log that fills pages", i)})
	}
	if err := s.AppendLogs(ctx, r.ID, "s", "x", lines); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ctx, r.ID, StatusPassed, "", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestOpenRefusesADamagedDatabase: a dropped table, a corrupted page or a
// file that is not a database make Open fail with ErrDamaged, naming the
// problem, and leave the file as it was.
func TestOpenRefusesADamagedDatabase(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, db string)
		want   string
	}{
		{"dropped table", func(t *testing.T, db string) { execRaw(t, db, "DROP TABLE logs") }, "table logs is missing"},
		{"dropped column", func(t *testing.T, db string) { execRaw(t, db, "ALTER TABLE runs DROP COLUMN trigger") }, "table runs lacks column trigger"},
		{"dropped migrations table", func(t *testing.T, db string) { execRaw(t, db, "DROP TABLE schema_migrations") }, "schema_migrations is missing"},
		{"corrupted page", corruptPage, "quick_check"},
		{"not a database", func(t *testing.T, db string) {
			if err := os.WriteFile(db, []byte(strings.Repeat("garbage ", 1024)), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "not a database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := seedStore(t)
			db := filepath.Join(dir, "gantry.db")
			tt.damage(t, db)
			before := fileSum(t, db)
			s, err := Open(context.Background(), dir)
			if err == nil {
				s.Close()
				t.Fatal("Open of a damaged database: want an error")
			}
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("Open: got %v, want ErrDamaged", err)
			}
			var de *DamagedError
			if !errors.As(err, &de) || de.Path != db {
				t.Errorf("error %v: want a *DamagedError naming %s", err, db)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q: want it to say %q", err, tt.want)
			}
			if after := fileSum(t, db); after != before {
				t.Error("Open changed the damaged database file")
			}
		})
	}
}

func TestOpenAcceptsAHealthyDatabase(t *testing.T) {
	dir := seedStore(t)
	s, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatalf("reopen a healthy store: %v", err)
	}
	s.Close()
}

// execRaw changes the database behind the store's back, as a user with
// the sqlite3 shell could.
func execRaw(t *testing.T, db, stmt string) {
	t.Helper()
	conn, err := sql.Open("sqlite", "file:"+db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Exec(stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

// corruptPage overwrites a page in the middle of the file (a b-tree page
// of the log table) with bytes that are no valid page.
func corruptPage(t *testing.T, db string) {
	t.Helper()
	f, err := os.OpenFile(db, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	pages := fi.Size() / page
	if pages < 8 {
		t.Fatalf("database has %d pages, want more to corrupt one in the middle", pages)
	}
	junk := []byte(strings.Repeat("\xff\x00\x13\x37", page/4))
	if _, err := f.WriteAt(junk, (pages/2)*page); err != nil {
		t.Fatal(err)
	}
}

// TestCheckOfALargeDatabase: past the full-check size, every table but
// logs is still checked, and so is the schema.
func TestCheckOfALargeDatabase(t *testing.T) {
	ctx := context.Background()
	dir := seedStore(t)
	db := filepath.Join(dir, "gantry.db")
	if err := checkDatabase(ctx, db, migrationFiles, 0); err != nil {
		t.Fatalf("healthy database, table by table: %v", err)
	}
	execRaw(t, db, "DROP TABLE approvals")
	if err := checkDatabase(ctx, db, migrationFiles, 0); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "table approvals is missing") {
		t.Errorf("dropped table, table by table: got %v, want ErrDamaged naming approvals", err)
	}
}
