package vulndb

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/gantry-ci/gantry/internal/vuln"
)

const goDB = "go-vulndb-osv.tar.gz"

// dataServer serves the shared data directory (the real Go vulnerability
// database) as an OSV mirror would, counting requests; while *broken is
// true it answers 503.
type dataServer struct {
	*httptest.Server
	hits   atomic.Int32
	broken atomic.Bool
}

func newDataServer(t *testing.T) *dataServer {
	t.Helper()
	dir := filepath.Dir(testenv.RequireData(t, goDB))
	s := &dataServer{}
	files := http.FileServer(http.Dir(dir))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if s.broken.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func clock(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestUpdateFromHTTP(t *testing.T) {
	srv := newDataServer(t)
	state := t.TempDir()
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	m, err := Update(t.Context(), Options{StateDir: state, Sources: []string{srv.URL + "/" + goDB}, Now: clock(at)})
	if err != nil {
		t.Fatal(err)
	}
	if !m.FetchedAt.Equal(at) {
		t.Errorf("FetchedAt = %v, want %v", m.FetchedAt, at)
	}
	if len(m.Sources) != 1 || m.Sources[0].Source != srv.URL+"/"+goDB || len(m.Sources[0].SHA256) != 64 {
		t.Fatalf("Sources = %+v", m.Sources)
	}
	db, err := vuln.Open(Dir(state))
	if err != nil {
		t.Fatal(err)
	}
	if db.Len() < 4000 || db.Len() != m.Entries() {
		t.Errorf("database holds %d entries, record says %d; want the >4000 of the Go database", db.Len(), m.Entries())
	}
	again, err := ReadMeta(Dir(state))
	if err != nil {
		t.Fatal(err)
	}
	if !again.FetchedAt.Equal(at) || again.Entries() != m.Entries() {
		t.Errorf("ReadMeta = %+v, want %+v", again, m)
	}
}

func TestUpdateFromFile(t *testing.T) {
	src := testenv.RequireData(t, goDB)
	state := t.TempDir()
	m, err := Update(t.Context(), Options{StateDir: state, Sources: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Sources[0].File, "01-go-vulndb-osv.tar.gz"; got != want {
		t.Errorf("stored as %s, want %s", got, want)
	}
	if _, err := os.Stat(filepath.Join(Dir(state), m.Sources[0].File)); err != nil {
		t.Error(err)
	}
}

// TestFailedUpdateKeepsDatabase: a source that is down, missing, not an
// archive or not OSV leaves the stored database as it was.
func TestFailedUpdateKeepsDatabase(t *testing.T) {
	srv := newDataServer(t)
	state := t.TempDir()
	good, err := Update(t.Context(), Options{StateDir: state, Sources: []string{srv.URL + "/" + goDB}})
	if err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(t.TempDir(), "junk.zip")
	if err := os.WriteFile(junk, []byte("PK\x03\x04 not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(text, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, src, want string
	}{
		{"404", srv.URL + "/nope.zip", "404"},
		{"not an archive", text, "not a .zip or .tar.gz"},
		{"broken zip", junk, "junk.zip"},
		{"missing file", "/nonexistent/osv.zip", "/nonexistent/osv.zip"},
		{"other scheme", "ftp://example.com/all.zip", "scheme"},
		{"second source fails", srv.URL + "/" + goDB + " " + srv.URL + "/nope.zip", "nope.zip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Update(t.Context(), Options{StateDir: state, Sources: strings.Fields(tt.src)})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Update: got %v, want an error mentioning %q", err, tt.want)
			}
			m, err := ReadMeta(Dir(state))
			if err != nil {
				t.Fatal(err)
			}
			if !m.FetchedAt.Equal(good.FetchedAt) || m.Entries() != good.Entries() {
				t.Errorf("record changed: got %+v, want %+v", m, good)
			}
			ents, _ := os.ReadDir(Dir(state))
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if got, want := strings.Join(names, " "), ".gantry-vulndb.json 01-go-vulndb-osv.tar.gz"; got != want {
				t.Errorf("directory holds %q, want %q", got, want)
			}
		})
	}
}

func TestUpdateRedactsCredentials(t *testing.T) {
	srv := newDataServer(t)
	srv.broken.Store(true)
	src := strings.Replace(srv.URL, "http://", "http://reader:s3cr3t@", 1) + "/" + goDB
	_, err := Update(t.Context(), Options{StateDir: t.TempDir(), Sources: []string{src}})
	if err == nil {
		t.Fatal("Update from a broken server succeeded")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestEnsure(t *testing.T) {
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	type setup struct {
		stored  time.Duration // age of a stored database; <0: none
		broken  bool
		offline bool
	}
	tests := []struct {
		name      string
		setup     setup
		wantFetch bool
		wantErr   error
		wantWarn  bool
		wantAt    time.Time
	}{
		{"none: fetched on first use", setup{stored: -1}, true, nil, false, at},
		{"fresh: used", setup{stored: time.Hour}, false, nil, false, at.Add(-time.Hour)},
		{"stale: updated", setup{stored: 25 * time.Hour}, true, nil, false, at},
		{"stale, update fails: used with a warning", setup{stored: 25 * time.Hour, broken: true}, true, nil, true, at.Add(-25 * time.Hour)},
		{"none, fetch fails: error", setup{stored: -1, broken: true}, true, ErrNoDB, false, time.Time{}},
		{"none, offline: error without fetching", setup{stored: -1, offline: true}, false, ErrNoDB, false, time.Time{}},
		{"stale, offline: used without fetching", setup{stored: 30 * 24 * time.Hour, offline: true}, false, nil, false, at.Add(-30 * 24 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newDataServer(t)
			state := t.TempDir()
			src := srv.URL + "/" + goDB
			if tt.setup.stored >= 0 {
				if _, err := Update(t.Context(), Options{StateDir: state, Sources: []string{src}, Now: clock(at.Add(-tt.setup.stored))}); err != nil {
					t.Fatal(err)
				}
			}
			srv.hits.Store(0)
			srv.broken.Store(tt.setup.broken)
			env := map[string]string{SourcesEnv: src}
			if tt.setup.offline {
				env[OfflineEnv] = "1"
			}
			var progress strings.Builder
			loc, err := Ensure(t.Context(), Options{StateDir: state, Now: clock(at), Progress: &progress,
				Getenv: func(k string) string { return env[k] }})
			if fetched := srv.hits.Load() > 0; fetched != tt.wantFetch {
				t.Errorf("fetched = %v, want %v", fetched, tt.wantFetch)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "gantry vulndb update") {
					t.Errorf("error does not say what to run: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := loc.Warning != ""; got != tt.wantWarn {
				t.Errorf("warning = %q, want one: %v", loc.Warning, tt.wantWarn)
			}
			if tt.wantWarn && !strings.Contains(progress.String(), "warning") {
				t.Errorf("progress does not warn: %q", progress.String())
			}
			if !loc.Meta.FetchedAt.Equal(tt.wantAt) {
				t.Errorf("database fetched at %v, want %v", loc.Meta.FetchedAt, tt.wantAt)
			}
			if loc.Path != Dir(state) || loc.Meta.Entries() < 4000 {
				t.Errorf("Ensure = %s with %d entries, want %s with the >4000 of the Go database", loc.Path, loc.Meta.Entries(), Dir(state))
			}
		})
	}
}

// TestEnsureRefreshesFromRecordedSources: an update refreshes from where
// the stored database came from, not from the defaults.
func TestEnsureRefreshesFromRecordedSources(t *testing.T) {
	srv := newDataServer(t)
	state := t.TempDir()
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	if _, err := Update(t.Context(), Options{StateDir: state, Sources: []string{srv.URL + "/" + goDB}, Now: clock(at.Add(-48 * time.Hour))}); err != nil {
		t.Fatal(err)
	}
	srv.hits.Store(0)
	loc, err := Ensure(t.Context(), Options{StateDir: state, Now: clock(at), Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if srv.hits.Load() != 1 || !loc.Meta.FetchedAt.Equal(at) {
		t.Errorf("hits = %d, fetched at %v; want one fetch at %v", srv.hits.Load(), loc.Meta.FetchedAt, at)
	}
}

// TestEnsureUserProvided: OSV files put in STATE_DIR/vulndb by hand are
// used as they are, never replaced.
func TestEnsureUserProvided(t *testing.T) {
	state := t.TempDir()
	if err := os.MkdirAll(Dir(state), 0o755); err != nil {
		t.Fatal(err)
	}
	entry := `{"id":"GO-0001","affected":[{"package":{"ecosystem":"Go","name":"example.com/m"}}]}`
	if err := os.WriteFile(filepath.Join(Dir(state), "GO-0001.json"), []byte(entry), 0o644); err != nil {
		t.Fatal(err)
	}
	loc, err := Ensure(t.Context(), Options{StateDir: state, Getenv: func(k string) string {
		if k == SourcesEnv {
			return "http://127.0.0.1:1/unreachable.zip"
		}
		return ""
	}})
	if err != nil {
		t.Fatal(err)
	}
	if loc.Path != Dir(state) || loc.Meta != nil {
		t.Errorf("Ensure = %+v, want the hand-made %s", loc, Dir(state))
	}
}

// TestConcurrentEnsureFetchesOnce: steps that start at once take turns,
// and the second finds the database the first fetched.
func TestConcurrentEnsureFetchesOnce(t *testing.T) {
	srv := newDataServer(t)
	state := t.TempDir()
	getenv := func(k string) string {
		if k == SourcesEnv {
			return srv.URL + "/" + goDB
		}
		return ""
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Ensure(context.Background(), Options{StateDir: state, Getenv: getenv})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Ensure %d: %v", i, err)
		}
	}
	if got := srv.hits.Load(); got != 1 {
		t.Errorf("fetched %d times, want 1", got)
	}
}

func TestFileName(t *testing.T) {
	tests := []struct {
		src, ext, want string
	}{
		{OSVBase + "/Go/all.zip", ".zip", "01-Go-all.zip"},
		{OSVBase + "/Debian/all.zip", ".zip", "01-Debian-all.zip"},
		{"/data/go-vulndb-osv.tar.gz", ".tar.gz", "01-go-vulndb-osv.tar.gz"},
		{"http://mirror/../../etc/passwd", ".zip", "01-etc-passwd.zip"},
		{"http://mirror/", ".zip", "01-osv.zip"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			if got := fileName(0, tt.src, tt.ext, map[string]bool{}); got != tt.want {
				t.Errorf("fileName(%q) = %q, want %q", tt.src, got, tt.want)
			}
		})
	}
}
