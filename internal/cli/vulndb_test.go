package cli

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/gantry-ci/gantry/internal/vulndb"
)

func TestVulnDBCommands(t *testing.T) {
	db := testenv.RequireData(t, "go-vulndb-osv.tar.gz")
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(db))))
	defer srv.Close()
	t.Setenv(vulndb.OverrideEnv, "")
	t.Setenv(vulndb.SourcesEnv, "")
	state := t.TempDir()
	for _, tc := range []struct {
		name    string
		offline bool
		args    []string
		code    int
		want    string
	}{
		{"status before any update", false, []string{"vulndb", "status"}, 1, "gantry vulndb update"},
		{"update from a mirror", false, []string{"vulndb", "update", "--from", srv.URL + "/go-vulndb-osv.tar.gz"}, 0, "database updated: 4274 entries from 1 source(s)"},
		{"status after", false, []string{"vulndb", "status"}, 0, "source:   " + srv.URL + "/go-vulndb-osv.tar.gz (4274 entries"},
		{"update from a file", false, []string{"vulndb", "update", "--from", db}, 0, "4274 entries"},
		{"update from a missing file", false, []string{"vulndb", "update", "--from", "/nonexistent/all.zip"}, 2, "/nonexistent/all.zip"},
		{"update from a directory", false, []string{"vulndb", "update", "--from", t.TempDir()}, 2, "not a regular file"},
		{"server error keeps the database", false, []string{"vulndb", "update", "--from", srv.URL + "/Go/all.zip"}, 1, "404"},
		{"status still there", false, []string{"vulndb", "status"}, 0, "entries:  4274"},
		{"offline refuses URLs", true, []string{"vulndb", "update", "--from", srv.URL + "/go-vulndb-osv.tar.gz"}, 2, vulndb.OfflineEnv},
		{"offline refuses the defaults", true, []string{"vulndb", "update"}, 2, "use --from FILE"},
		{"offline takes a file", true, []string{"vulndb", "update", "--from", db}, 0, "4274 entries"},
		{"extra argument", false, []string{"vulndb", "update", "Go"}, 2, "takes no arguments"},
		{"no subcommand", false, []string{"vulndb"}, 2, "update or status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			off := ""
			if tc.offline {
				off = "1"
			}
			t.Setenv(vulndb.OfflineEnv, off)
			out, code := runCLI(t, "", append([]string{"--state-dir", state}, tc.args...)...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, want %d; output lacks %q:\n%s", code, tc.code, tc.want, out)
			}
		})
	}
}
