package store

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-ci/gantry/internal/proc"
)

// pgBackend is the PostgreSQL backend of a test that is about PostgreSQL
// alone.
func pgBackend(t *testing.T) *backend {
	t.Helper()
	return newBackend(t, dialectPostgres)
}

// TestSchemaSameOnBothBackends: the migrations, with their PostgreSQL
// variants and column types, make the same tables and columns on both
// databases; PostgreSQL has one more column, logs.id, its rowid.
func TestSchemaSameOnBothBackends(t *testing.T) {
	ctx := context.Background()
	lite := openTest(t, t.TempDir())
	pg := pgBackend(t).open(t, t.TempDir())
	want, err := readSchema(ctx, lite.r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readPostgresSchema(ctx, pg.r)
	if err != nil {
		t.Fatal(err)
	}
	if !got["logs"]["id"] {
		t.Errorf("PostgreSQL logs has no id column")
	}
	delete(got["logs"], "id")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PostgreSQL schema\n got %v\nwant %v (SQLite's)", got, want)
	}
	// Times are nanoseconds: every integer column is 64 bits.
	rows, err := pg.r.QueryContext(ctx, `SELECT table_name, column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND data_type IN ('integer', 'smallint')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var tb, c, ty string
		if err := rows.Scan(&tb, &c, &ty); err != nil {
			t.Fatal(err)
		}
		t.Errorf("column %s.%s is %s, want bigint", tb, c, ty)
	}
}

// TestConcurrentOpenMigratesOnce: processes opening a new database at
// the same moment do not both migrate it (the advisory lock).
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	be := pgBackend(t)
	ctx := context.Background()
	first := t.TempDir()
	dirs := []string{first, t.TempDir(), t.TempDir(), t.TempDir()}
	for _, d := range dirs[1:] {
		be.share(d, first)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(dirs))
	for i, d := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := be.Open(ctx, d)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Open: %v", err)
	}
	s := be.open(t, first)
	var n, versions int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&n, &versions); err != nil {
		t.Fatal(err)
	}
	if want := knownVersion(t); n != want || versions != want {
		t.Errorf("schema_migrations: %d rows, %d versions; want %d of each", n, versions, want)
	}
}

// TestPostgresDamagedSchema: a table or column missing from the recorded
// schema version is refused with ErrDamaged, as on SQLite.
func TestPostgresDamagedSchema(t *testing.T) {
	be := pgBackend(t)
	ctx := context.Background()
	dir := t.TempDir()
	s := be.open(t, dir)
	if _, err := s.w.ExecContext(ctx, `ALTER TABLE steps DROP COLUMN summary`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `DROP TABLE audit`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := be.Open(ctx, dir)
	var de *DamagedError
	if !errors.As(err, &de) || !errors.Is(err, ErrDamaged) {
		t.Fatalf("Open: error %v, want a *DamagedError", err)
	}
	for _, want := range []string{"table audit is missing", "table steps lacks column summary"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestPasswordNeverShown: the password of the store URL, in its user part
// or its query, appears in no error and no log line; the URL is shown
// with the password masked.
func TestPasswordNeverShown(t *testing.T) {
	be := pgBackend(t)
	ctx := context.Background()
	const pw = "s3cret-Pa55/word"
	base, err := url.Parse(be.url(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	withUser := func(u url.URL) string { u.User = url.UserPassword(u.User.Username(), pw); return u.String() }
	withQuery := func(u url.URL, extra string) string {
		q := u.Query()
		q.Set("password", pw)
		u.RawQuery = q.Encode() + extra
		return u.String()
	}
	noDB, badPort := *base, *base
	noDB.Path = "/no_such_database"
	badPort.Host = "127.0.0.1:1"
	tests := []struct {
		name, url string
		wantErr   bool
	}{
		{"opens", withUser(*base), false},
		{"opens with the password in the query", withQuery(*base, ""), false},
		{"unknown database", withUser(noDB), true},
		{"unknown database, password in the query", withQuery(noDB, ""), true},
		{"nothing listens", withUser(badPort), true},
		{"bad pool size", withUser(*base) + "&pool_max_conns=none", true},
		{"bad parameter", withQuery(*base, "&sslmode=maybe"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			s, err := Open(ctx, t.TempDir(), WithURL(tt.url), WithLogger(log))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Open: error %v, want error %v", err, tt.wantErr)
			}
			var shown []string
			if err != nil {
				shown = append(shown, err.Error())
			} else {
				shown = append(shown, s.Location())
				if !strings.Contains(s.Location(), "xxxxx") {
					t.Errorf("Location() = %q, want the password masked as xxxxx", s.Location())
				}
				s.Close()
			}
			shown = append(shown, logs.String())
			for _, text := range shown {
				for _, form := range []string{pw, url.QueryEscape(pw), url.PathEscape(pw)} {
					if strings.Contains(text, form) {
						t.Errorf("the password (as %q) appears in %q", form, text)
					}
				}
			}
			if tt.wantErr && !strings.Contains(shown[0], "127.0.0.1") {
				t.Errorf("error %q does not say which server", shown[0])
			}
		})
	}
}

// TestRecoveryLeavesOtherHostsAlone: on a database several machines
// share, a store ends only what its own host left behind. A run whose
// owner is another host stays running and that host's process groups are
// not signalled; the owner's host, on its next open, recovers both. A run
// of this host held by a process with another state dir is alive too.
func TestRecoveryLeavesOtherHostsAlone(t *testing.T) {
	be := pgBackend(t)
	ctx := context.Background()
	dirA, dirB, dirC := t.TempDir(), t.TempDir(), t.TempDir()
	be.share(dirB, dirA)
	be.share(dirC, dirA)

	a, err := be.Open(ctx, dirA, WithHost("host-a"))
	if err != nil {
		t.Fatal(err)
	}
	r := &Run{Pipeline: "p"}
	if err := a.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	p, err := proc.Start(proc.WithTracker(ctx, a.ProcTracker(r.ID, "build", "unit")), proc.Command(ctx, "sleep", "100"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = proc.End(context.Background(), p.Group(), 0); _ = p.Wait() })

	// Same host, another state dir, while a holds the run: alive.
	c := be.open(t, dirC, WithHost("host-a"))
	if got, err := c.GetRun(ctx, r.ID); err != nil || got.Status != StatusRunning {
		t.Fatalf("run held by a store of this host with another state dir: %+v, %v; want running", got, err)
	}
	c.Close()

	a.Close() // the process of host a stops: its run lock goes

	b := be.open(t, dirB, WithHost("host-b"))
	if got, err := b.GetRun(ctx, r.ID); err != nil || got.Status != StatusRunning {
		t.Errorf("another host's run after open on host b: %+v, %v; want it left running", got, err)
	}
	if alive, err := proc.Alive(p.Group()); err != nil || len(alive) != 1 {
		t.Errorf("host a's process after open on host b: %+v, %v; want it running", alive, err)
	}
	if gs, err := b.ProcGroups(ctx, r.ID); err != nil || len(gs) != 1 || gs[0].Host != "host-a" {
		t.Errorf("process groups after open on host b: %+v, %v; want host a's one kept", gs, err)
	}
	b.Close()

	a2 := be.open(t, dirA, WithHost("host-a"))
	if got, err := a2.GetRun(ctx, r.ID); err != nil || got.Status != StatusInterrupted {
		t.Errorf("run after open on its own host: %+v, %v; want interrupted", got, err)
	}
	if alive, err := proc.Alive(p.Group()); err != nil || len(alive) != 0 {
		t.Errorf("host a's process after open on host a: %+v, %v; want it ended", alive, err)
	}
}

// TestAnyBytesInText: a log line keeps any bytes on both backends (BYTEA
// on PostgreSQL); other text with a NUL or invalid UTF-8, which
// PostgreSQL's TEXT refuses, is still recorded there, with U+FFFD in
// their place, and exactly on SQLite.
func TestAnyBytesInText(t *testing.T) { eachBackend(t, testAnyBytesInText) }

func testAnyBytesInText(t *testing.T, be *backend) {
	ctx := context.Background()
	s := be.open(t, t.TempDir())
	const odd = "nul\x00 bad\xff\xfe utf8 é"
	r := &Run{Pipeline: "p", Message: odd}
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLogs(ctx, r.ID, "s", "x", []LogLine{{Text: odd}}); err != nil {
		t.Fatal(err)
	}
	ls, err := s.Logs(ctx, r.ID, "s", "x", 0)
	if err != nil || len(ls) != 1 || ls[0].Text != odd {
		t.Errorf("log line: got %+v, %v; want %q", ls, err, odd)
	}
	if err := s.PutStep(ctx, &Step{RunID: r.ID, Stage: "s", Name: "x", Message: odd, Summary: odd}); err != nil {
		t.Fatal(err)
	}
	want := odd
	if be.postgres() {
		want = "nul\uFFFD bad\uFFFD utf8 é"
	}
	got, err := s.GetRun(ctx, r.ID)
	if err != nil || got.Message != want {
		t.Errorf("run message: got %q, %v; want %q", got.Message, err, want)
	}
	steps, err := s.Steps(ctx, r.ID)
	if err != nil || len(steps) != 1 || steps[0].Message != want || steps[0].Summary != want {
		t.Errorf("step: got %+v, %v; want message and summary %q", steps, err, want)
	}
}

// TestPostgresPing: Ping answers while the database takes connections,
// fails (naming the store, not its password) once it refuses them and
// its connections are ended, and answers again when it takes them back:
// gantry serve's readiness probe follows the database.
func TestPostgresPing(t *testing.T) {
	be := pgBackend(t)
	ctx := context.Background()
	dir := t.TempDir()
	s := be.open(t, dir)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping of a serving database: %v", err)
	}
	u, err := url.Parse(be.url(dir))
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin := pgServer.admin
	if _, err := admin.Exec(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	allow := func() {
		if _, err := admin.Exec(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS true`); err != nil {
			t.Fatal(err)
		}
	}
	defer allow()
	if _, err := admin.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name); err != nil {
		t.Fatal(err)
	}
	// The pool may hand out a connection ended under it first; a later
	// Ping dials anew and is refused.
	err = s.Ping(ctx)
	if err == nil {
		err = s.Ping(ctx)
	}
	if err == nil {
		t.Fatal("Ping after the database refused connections: nil, want an error")
	}
	if !strings.Contains(err.Error(), s.Location()) {
		t.Errorf("Ping error %q does not name the store %s", err, s.Location())
	}
	if p, ok := u.User.Password(); ok && p != "" && strings.Contains(err.Error(), p) {
		t.Errorf("Ping error %q holds the database password", err)
	}
	allow()
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping once the database takes connections again: %v", err)
	}
}
