package vuln

import (
	"encoding/json"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/inventory"
)

// platformDB holds Go entries for golang.org/x/sys v0.1.0 limited to some
// platforms by ecosystem_specific.imports, as the Go database writes them.
func platformDB(t *testing.T) *DB {
	t.Helper()
	src := `[
 {"id": "GO-T-WINDOWS", "affected": [{"package": {"ecosystem": "Go", "name": "golang.org/x/sys"},
   "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.2.0"}]}],
   "ecosystem_specific": {"imports": [{"path": "golang.org/x/sys/windows", "goos": ["windows"], "symbols": ["X"]}]}}]},
 {"id": "GO-T-UNIX", "affected": [{"package": {"ecosystem": "Go", "name": "golang.org/x/sys"},
   "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.2.0"}]}],
   "ecosystem_specific": {"imports": [{"path": "golang.org/x/sys/unix", "goos": ["linux", "darwin"]}]}}]},
 {"id": "GO-T-ARM64", "affected": [{"package": {"ecosystem": "Go", "name": "golang.org/x/sys"},
   "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.2.0"}]}],
   "ecosystem_specific": {"imports": [{"path": "golang.org/x/sys/cpu", "goarch": ["arm64"]}]}}]},
 {"id": "GO-T-SPLIT", "affected": [{"package": {"ecosystem": "Go", "name": "golang.org/x/sys"},
   "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.2.0"}]}],
   "ecosystem_specific": {"imports": [{"path": "golang.org/x/sys/windows", "goos": ["windows"]}, {"path": "golang.org/x/sys/plan9", "goos": ["plan9"]}]}}]},
 {"id": "GO-T-ANY", "affected": [{"package": {"ecosystem": "Go", "name": "golang.org/x/sys"},
   "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.2.0"}]}],
   "ecosystem_specific": {"imports": [{"path": "golang.org/x/sys/execabs"}]}}]},
 {"id": "GO-T-NOSPEC", "affected": [{"package": {"ecosystem": "Go", "name": "golang.org/x/sys"},
   "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.2.0"}]}]}]}
]`
	var entries []*Entry
	if err := json.Unmarshal([]byte(src), &entries); err != nil {
		t.Fatal(err)
	}
	return NewDB("test", entries)
}

// TestScanFiltersByPlatform: as govulncheck, an entry whose imports all
// name other operating systems or architectures than the scanned target's
// is not reported.
func TestScanFiltersByPlatform(t *testing.T) {
	db := platformDB(t)
	sys := []inventory.Module{{Path: "golang.org/x/sys", Version: "v0.1.0"}}
	host := "GO-T-ANY GO-T-NOSPEC"
	if runtime.GOOS == "linux" || runtime.GOOS == "darwin" {
		host += " GO-T-UNIX"
	}
	if runtime.GOARCH == "arm64" {
		host += " GO-T-ARM64"
	}
	tests := []struct {
		name string
		bin  inventory.Binary
		want string
	}{
		{"linux binary (build info)", inventory.Binary{Path: "app", Deps: sys, Settings: map[string]string{"GOOS": "linux", "GOARCH": "amd64"}},
			"GO-T-ANY GO-T-NOSPEC GO-T-UNIX"},
		{"windows binary (build info)", inventory.Binary{Path: "app.exe", Deps: sys, Settings: map[string]string{"GOOS": "windows", "GOARCH": "amd64"}},
			"GO-T-ANY GO-T-NOSPEC GO-T-SPLIT GO-T-WINDOWS"},
		{"linux/arm64 image binary", inventory.Binary{Path: "/app", Platform: "linux/arm64", Deps: sys},
			"GO-T-ANY GO-T-ARM64 GO-T-NOSPEC GO-T-UNIX"},
		{"plan9 image binary", inventory.Binary{Path: "/app", Platform: "plan9/386", Deps: sys},
			"GO-T-ANY GO-T-NOSPEC GO-T-SPLIT"},
		{"source tree: the host", inventory.Binary{Path: "/src/go.mod", Deps: sys}, host},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids []string
			inv := &inventory.Inventory{Kind: "binary", Binaries: []inventory.Binary{tt.bin}}
			if strings.HasSuffix(tt.bin.Path, "go.mod") {
				inv.Kind = "source"
			}
			for _, f := range Scan(inv, db) {
				ids = append(ids, f.ID)
			}
			slices.Sort(ids)
			want := strings.Fields(tt.want)
			slices.Sort(want)
			if !slices.Equal(ids, want) {
				t.Errorf("findings %v, want %v", ids, want)
			}
		})
	}
}

// TestScanRealDatabaseByPlatform: in the real Go database, golang.org/x/sys
// has entries only for Windows (golang.org/x/sys/windows); a Linux build
// does not get them, a Windows build does.
func TestScanRealDatabaseByPlatform(t *testing.T) {
	db := loadGoVulnDB(t)
	scan := func(goos string) map[string]bool {
		bin := inventory.Binary{Path: "app", Deps: []inventory.Module{{Path: "golang.org/x/sys", Version: "v0.0.0-20200116001909-b77594299b42"}},
			Settings: map[string]string{"GOOS": goos, "GOARCH": "amd64"}}
		ids := map[string]bool{}
		for _, f := range Scan(&inventory.Inventory{Kind: "binary", Binaries: []inventory.Binary{bin}}, db) {
			ids[f.ID] = true
		}
		return ids
	}
	linux, windows := scan("linux"), scan("windows")
	var windowsOnly []string
	for id := range windows {
		if !linux[id] {
			windowsOnly = append(windowsOnly, id)
		}
	}
	if len(windowsOnly) == 0 {
		t.Fatalf("no Windows-only x/sys entry: linux %v, windows %v", linux, windows)
	}
	for _, id := range windowsOnly {
		for _, e := range db.lookup("Go", "golang.org/x/sys") {
			if e.ID == id && !strings.Contains(string(e.Affected[0].EcosystemSpecific), "golang.org/x/sys/windows") {
				t.Errorf("%s left out of the Linux scan, but it is not about golang.org/x/sys/windows: %s", id, e.Affected[0].EcosystemSpecific)
			}
		}
	}
	t.Logf("Windows-only entries left out of the Linux scan: %v", windowsOnly)
}
