package cli

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/service/localproc"
	"github.com/gantry-ci/gantry/internal/service/postgres"
	"github.com/gantry-ci/gantry/internal/store"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// testPostgres starts a throwaway PostgreSQL for the test and returns the
// URL of an empty database.
func testPostgres(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a safety net for initdb and startup
	defer cancel()
	inst, err := postgres.Provider{Database: "gantry"}.Start(ctx, t.TempDir())
	if errors.Is(err, localproc.ErrNotInstalled) {
		testenv.Missing(t, "postgres", err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inst.Stop(context.Background()) })
	return inst.Env()["DATABASE_URL"]
}

// TestStoreFlag: --store (or $GANTRY_STORE) puts the run history in
// PostgreSQL; without it the state dir's SQLite is used. A bad value is a
// usage error, and no message shows the password.
func TestStoreFlag(t *testing.T) {
	t.Setenv(options.StoreEnv, "") // --store exports it; restored after the test
	pg := testPostgres(t)
	state := t.TempDir()
	ctx := context.Background()
	st, err := store.Open(ctx, state, store.WithURL(pg))
	if err != nil {
		t.Fatal(err)
	}
	r := &store.Run{Pipeline: "recorded-in-postgres", Started: time.Now()}
	if err := st.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := st.FinishRun(ctx, r.ID, store.StatusPassed, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	st.Close()

	t.Run("flag", func(t *testing.T) {
		out, stderr, code := gantry(t, state, "--store", pg, "runs")
		if code != 0 || !strings.Contains(out, "recorded-in-postgres") {
			t.Errorf("gantry --store URL runs: exit %d, stdout %q, stderr %q; want the PostgreSQL run", code, out, stderr)
		}
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv(options.StoreEnv, pg)
		out, stderr, code := gantry(t, state, "runs")
		if code != 0 || !strings.Contains(out, "recorded-in-postgres") {
			t.Errorf("GANTRY_STORE=URL gantry runs: exit %d, stdout %q, stderr %q; want the PostgreSQL run", code, out, stderr)
		}
	})
	t.Run("default is SQLite", func(t *testing.T) {
		t.Setenv(options.StoreEnv, "")
		out, stderr, code := gantry(t, state, "runs")
		if code != 0 || strings.Contains(out, "recorded-in-postgres") {
			t.Errorf("gantry runs: exit %d, stdout %q, stderr %q; want the state dir's SQLite history, without the PostgreSQL run", code, out, stderr)
		}
	})

	t.Run("a run, its approval and its logs", func(t *testing.T) {
		repo := gitRepo(t, `name: on-pg
stages:
  - name: build
    steps:
      - {name: hello, run: 'echo "hello from postgres"'}
  - name: prod
    approval: {required: true}
    steps:
      - {name: deploy, run: 'echo "deployed"'}
`)
		if out, code := runCLIIn(t, state, "--store", pg, "run", "--dir", repo, "--progress", "plain"); code != ExitWaiting {
			t.Fatalf("run: exit %d, want %d\n%s", code, ExitWaiting, out)
		}
		if out, code := runCLIIn(t, state, "--store", pg, "approve", "2", "--dir", repo); code != 0 {
			t.Fatalf("approve: exit %d\n%s", code, out)
		}
		out, code := runCLIIn(t, state, "--store", pg, "logs", "2")
		if code != 0 || !strings.Contains(out, "hello from postgres") || !strings.Contains(out, "deployed") {
			t.Errorf("logs 2: exit %d\n%s\nwant both steps' output", code, out)
		}
		t.Setenv(options.StoreEnv, "")
		if out, code := runCLIIn(t, state, "show", "2"); code == 0 {
			t.Errorf("show 2 in the state dir's SQLite: exit 0\n%s\nwant the run absent there", out)
		}
	})

	const pw = "n0t-f0r-y0ur-eyes"
	u, err := url.Parse(pg)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("gantry", pw)
	down := *u
	down.Host = "127.0.0.1:1"
	for _, tt := range []struct {
		name, store string
		code        int
	}{
		{"not postgres", "mysql://gantry:" + pw + "@db/gantry", ExitUsage},
		{"empty", "", ExitUsage},
		{"bad sslmode", u.String() + "&sslmode=sometimes", ExitUsage},
		{"bad pool size", u.String() + "&pool_max_conns=0", ExitUsage},
		{"unreachable", down.String(), ExitFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := gantry(t, state, "--store", tt.store, "runs")
			if code != tt.code || strings.Contains(stderr, pw) || stderr == "" {
				t.Errorf("gantry --store %s runs: exit %d, stderr %q; want exit %d, a message without the password", tt.name, code, stderr, tt.code)
			}
		})
	}
}
