package vulnscan

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/steps/steptest"
	"github.com/gantry-ci/gantry/internal/vulndb"
)

// TestDatabaseOnFirstUse: with no database configured, the step fetches
// one into the state dir on first use (from a mirror of the shared data
// served over HTTP), updates a stale one, warns and goes on with a stale
// one it cannot update, and in offline mode fails clearly without one.
func TestDatabaseOnFirstUse(t *testing.T) {
	dbFile := goVulnDB(t)
	image := buildImage(t)
	var hits atomic.Int32
	var broken atomic.Bool
	files := http.FileServer(http.Dir(filepath.Dir(dbFile)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if broken.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		files.ServeHTTP(w, r)
	}))
	defer srv.Close()
	mirror := srv.URL + "/" + filepath.Base(dbFile)
	state := t.TempDir()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	run := func(t *testing.T, with string, at time.Time, extra ...string) (map[string]any, string, error) {
		t.Helper()
		s, err := New(steptest.Inputs{YAML: "unscored: warn\n" + with})
		if err != nil {
			t.Fatal(err)
		}
		s.(*scanStep).now = func() time.Time { return at }
		env, log, _ := steptest.NewEnv(t, t.TempDir(), "security", "trivy")
		env.StateDir = state
		var vars []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GANTRY_VULN_DB") {
				vars = append(vars, kv)
			}
		}
		env.Vars = append(vars, append([]string{vulndb.SourcesEnv + "=" + mirror}, extra...)...)
		env.Outputs = func(stage, name string) (map[string]any, bool) {
			if stage == "build-test" && name == "image" {
				return map[string]any{"image": image}, true
			}
			return nil, false
		}
		res, err := s.Run(context.Background(), env)
		if res == nil {
			return nil, log.String(), err
		}
		return res.Outputs, log.String(), err
	}

	t.Run("offline without a database fails clearly", func(t *testing.T) {
		_, log, err := run(t, "db_offline: true\n", now)
		if !errors.Is(err, vulndb.ErrNoDB) || !strings.Contains(err.Error(), "gantry vulndb update") {
			t.Fatalf("err = %v, want ErrNoDB naming gantry vulndb update\n%s", err, log)
		}
		if hits.Load() != 0 {
			t.Errorf("offline mode fetched %d times", hits.Load())
		}
	})
	t.Run("offline by environment", func(t *testing.T) {
		_, _, err := run(t, "", now, vulndb.OfflineEnv+"=1")
		if !errors.Is(err, vulndb.ErrNoDB) || hits.Load() != 0 {
			t.Fatalf("err = %v, hits %d; want ErrNoDB without fetching", err, hits.Load())
		}
	})
	t.Run("first use fetches", func(t *testing.T) {
		out, log, err := run(t, "", now)
		if err != nil {
			t.Fatalf("%v\n%s", err, log)
		}
		if out["findings"] != 4 || hits.Load() != 1 || !strings.Contains(log, "first use") {
			t.Errorf("findings %v, fetches %d, log:\n%s", out["findings"], hits.Load(), log)
		}
	})
	t.Run("fresh is reused", func(t *testing.T) {
		hits.Store(0)
		if _, log, err := run(t, "", now.Add(time.Hour)); err != nil || hits.Load() != 0 {
			t.Errorf("err %v, fetches %d\n%s", err, hits.Load(), log)
		}
	})
	t.Run("stale and unreachable warns and scans", func(t *testing.T) {
		hits.Store(0)
		broken.Store(true)
		defer broken.Store(false)
		out, log, err := run(t, "", now.Add(48*time.Hour))
		if err != nil {
			t.Fatalf("%v\n%s", err, log)
		}
		if out["findings"] != 4 || hits.Load() != 1 || !strings.Contains(log, "warning: could not update the vulnerability database") {
			t.Errorf("findings %v, fetches %d, log:\n%s", out["findings"], hits.Load(), log)
		}
	})
}

// TestDBPathSkipsEmptyDir: an empty STATE_DIR/vulndb (a first fetch that
// failed) is no database: scanning against it would pass everything.
func TestDBPathSkipsEmptyDir(t *testing.T) {
	state := t.TempDir()
	if err := os.MkdirAll(filepath.Join(state, "vulndb"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "vulndb", ".fetch-123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := DBPath("", nil, state); !errors.Is(err, vulndb.ErrNoDB) {
		t.Errorf("DBPath = %q, %v; want ErrNoDB", got, err)
	}
	if err := os.WriteFile(filepath.Join(state, "vulndb", "GO-1.json"), []byte(`{"id":"GO-1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := DBPath("", nil, state); err != nil || got != filepath.Join(state, "vulndb") {
		t.Errorf("DBPath = %q, %v; want the directory", got, err)
	}
}
