package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the test server's admin connection

	"github.com/gantry-ci/gantry/internal/service/localproc"
	"github.com/gantry-ci/gantry/internal/service/postgres"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// The store's tests run on both backends: each test that is not about
// SQLite alone (quick_check of a damaged file, WAL, query plans) is a
// func(t, *backend) run by eachBackend as the subtests sqlite and
// postgres. PostgreSQL is one throwaway server per test binary (the
// postgres service's: initdb into a temp dir, a free port, its unix
// socket in that dir, fsync off), started by the first test that needs
// it and stopped by TestMain; every test gets databases of its own.

func TestMain(m *testing.M) {
	code := m.Run()
	pgServer.stop()
	os.Exit(code)
}

// backend opens stores of one kind for one test. A state dir maps to one
// database, so that opening the same dir again reopens the same data.
type backend struct {
	name string
	tb   testing.TB
	// urls maps a state dir to its PostgreSQL database.
	urls map[string]string
}

func (b *backend) postgres() bool { return b.name == dialectPostgres }

// eachBackend runs fn as the subtests sqlite and postgres.
func eachBackend(t *testing.T, fn func(t *testing.T, be *backend)) {
	t.Helper()
	for _, name := range []string{dialectSQLite, dialectPostgres} {
		t.Run(name, func(t *testing.T) {
			fn(t, newBackend(t, name))
		})
	}
}

// eachBackendB is eachBackend for benchmarks.
func eachBackendB(b *testing.B, fn func(b *testing.B, be *backend)) {
	for _, name := range []string{dialectSQLite, dialectPostgres} {
		b.Run(name, func(b *testing.B) {
			fn(b, newBackend(b, name))
		})
	}
}

func newBackend(tb testing.TB, name string) *backend {
	be := &backend{name: name, tb: tb, urls: map[string]string{}}
	if be.postgres() {
		pgServer.require(tb)
	}
	return be
}

// url returns the database of state dir dir ("" on SQLite), creating it
// on first use.
func (b *backend) url(dir string) string {
	if !b.postgres() {
		return ""
	}
	if u, ok := b.urls[dir]; ok {
		return u
	}
	u := pgServer.newDatabase(b.tb)
	b.urls[dir] = u
	return u
}

// share makes the store of state dir dir use the database of state dir
// of: two gantry processes with state dirs of their own (server
// replicas) sharing one PostgreSQL database. SQLite has no such thing:
// the test must use one dir there.
func (b *backend) share(dir, of string) {
	b.tb.Helper()
	if !b.postgres() {
		b.tb.Fatalf("share: SQLite keeps its database in the state dir")
	}
	b.urls[dir] = b.url(of)
}

// options are the Open options that put dir's store on this backend,
// followed by extra.
func (b *backend) options(dir string, extra ...Option) []Option {
	if u := b.url(dir); u != "" {
		return append([]Option{WithURL(u)}, extra...)
	}
	return extra
}

// Open is Open of the store of dir on this backend.
func (b *backend) Open(ctx context.Context, dir string, extra ...Option) (*Store, error) {
	return Open(ctx, dir, b.options(dir, extra...)...)
}

// openMigs is open with the migrations migs.
func (b *backend) openMigs(ctx context.Context, dir string, migs migrationSource, extra ...Option) (*Store, error) {
	return open(ctx, dir, migs, b.options(dir, extra...)...)
}

// open opens the store of dir, failing the test on error, and closes it
// when the test ends.
func (b *backend) open(t testing.TB, dir string, extra ...Option) *Store {
	t.Helper()
	s, err := b.Open(context.Background(), dir, extra...)
	if err != nil {
		t.Fatalf("Open(%s) on %s: %v", dir, b.name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawDB is a plain connection to dir's database, as the store's own
// connections see it (placeholders rebound on PostgreSQL), for tests that
// write what an older gantry would have.
func (b *backend) rawDB(t testing.TB, dir string) (*sql.DB, *dialect) {
	t.Helper()
	if !b.postgres() {
		db, err := sql.Open("sqlite", dsn(dir+"/gantry.db", false))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db, sqliteDialect
	}
	tg, err := parsePostgresURL(b.url(dir))
	if err != nil {
		t.Fatal(err)
	}
	db := tg.openDB()
	t.Cleanup(func() { db.Close() })
	return db, postgresDialect
}

// columnExists reports whether table has column in dir's database.
func (b *backend) columnExists(t testing.TB, dir, table, column string) bool {
	t.Helper()
	db, _ := b.rawDB(t, dir)
	q := `SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?`
	if b.postgres() {
		q = `SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? AND column_name = ?`
	}
	var n int
	if err := db.QueryRow(q, table, column).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// pgServer is the test binary's PostgreSQL.
var pgServer = &testServer{}

type testServer struct {
	once  sync.Once
	inst  interface{ Stop(context.Context) error }
	admin *sql.DB
	url   string
	err   error
	// missing is set when the server binaries are not installed.
	missing bool
	n       atomic.Int64
}

// require starts the server on first use; when PostgreSQL is not
// installed the test skips, or fails under CI=true.
func (s *testServer) require(tb testing.TB) {
	tb.Helper()
	s.once.Do(s.start)
	if s.missing {
		testenv.Missing(tb, "postgres", s.err.Error())
		return
	}
	if s.err != nil {
		tb.Fatalf("start the test PostgreSQL: %v", s.err)
	}
}

func (s *testServer) start() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a safety net for initdb and startup
	defer cancel()
	inst, err := postgres.Provider{Database: "gantry"}.Start(ctx, os.TempDir())
	if err != nil {
		s.err, s.missing = err, errors.Is(err, localproc.ErrNotInstalled)
		return
	}
	s.inst = inst
	s.url = inst.Env()["DATABASE_URL"]
	s.admin, s.err = sql.Open("pgx", s.url)
}

// newDatabase creates an empty database and returns its URL; it is
// dropped when the test ends.
func (s *testServer) newDatabase(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.n.Add(1))
	if _, err := s.admin.Exec(`CREATE DATABASE ` + name); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := s.admin.Exec(`DROP DATABASE ` + name + ` WITH (FORCE)`); err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
	})
	return replaceDatabase(s.url, name)
}

// replaceDatabase returns the URL u with its database replaced by name.
func replaceDatabase(u, name string) string {
	p, err := url.Parse(u)
	if err != nil {
		panic(fmt.Sprintf("the test server's URL %q: %v", u, err))
	}
	p.Path = "/" + name
	return p.String()
}

func (s *testServer) stop() {
	if s.admin != nil {
		s.admin.Close()
	}
	if s.inst != nil {
		_ = s.inst.Stop(context.Background())
	}
}
