package vuln

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/inventory"
	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/testenv"
)

// want is what the Go database (golang/vulndb a752ea54) says about
// golang.org/x/text v0.3.0.
var wantText = []struct{ id, fixed string }{
	{"GO-2020-0015", "v0.3.3"},
	{"GO-2021-0113", "v0.3.7"},
	{"GO-2022-1059", "v0.3.8"},
	{"GO-2026-5970", "v0.39.0"},
}

func TestScanRealBinary(t *testing.T) {
	db := loadGoVulnDB(t)
	if db.Len() < 4000 {
		t.Fatalf("database has %d entries, want the full Go database", db.Len())
	}
	bin := buildVulnApp(t)
	inv, err := inventory.FromBinaryFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range Scan(inv, db) {
		if f.Package == "golang.org/x/text" {
			if f.Version != "v0.3.0" || f.Location != bin {
				t.Errorf("%s: version %q location %q, want v0.3.0 %s", f.ID, f.Version, f.Location, bin)
			}
			if f.Severity.Level != Unscored {
				t.Errorf("%s: severity %v, want UNSCORED (the Go database has none)", f.ID, f.Severity.Level)
			}
			got[f.ID] = f.Fixed
		}
	}
	if len(got) != len(wantText) {
		t.Errorf("got %d x/text findings %v, want %d", len(got), got, len(wantText))
	}
	for _, w := range wantText {
		if got[w.id] != w.fixed {
			t.Errorf("%s fixed = %q, want %q", w.id, got[w.id], w.fixed)
		}
	}
}

// TestMatchesGovulncheck runs the real govulncheck -mode=binary -scan=module
// on the same binary with the same database (extracted; govulncheck reads a
// flat directory of OSV files) and compares (ID, module, fixed) sets.
func TestMatchesGovulncheck(t *testing.T) {
	gv, err := exec.LookPath("govulncheck")
	if err != nil {
		home, _ := os.UserHomeDir()
		gv = filepath.Join(home, "go", "bin", "govulncheck")
		if _, err := os.Stat(gv); err != nil {
			testenv.Missing(t, "govulncheck", "go install golang.org/x/vuln/cmd/govulncheck@v1.9.0")
		}
	}
	db := loadGoVulnDB(t)
	bin := buildVulnApp(t)
	dir := t.TempDir()
	cmd := proc.Command(t.Context(), "tar", "-xzf", goVulnDB(t), "-C", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("extract database: %v\n%s", err, out)
	}
	cmd = proc.Command(t.Context(), gv, "-mode=binary", "-scan=module", "-format=json", "-db=file://"+filepath.Join(dir, "data", "osv"), bin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("govulncheck: %v\n%s", err, out)
	}
	want := govulncheckFindings(t, string(out))
	if len(want) == 0 {
		t.Fatal("govulncheck reported nothing; the comparison would be empty")
	}
	inv, err := inventory.FromBinaryFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range Scan(inv, db) {
		got = append(got, f.ID+" "+f.Package+" "+f.Fixed)
	}
	slices.Sort(got)
	got = slices.Compact(got)
	if !slices.Equal(got, want) {
		t.Errorf("gantry found\n%s\ngovulncheck found\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func govulncheckFindings(t *testing.T, stream string) []string {
	dec := json.NewDecoder(strings.NewReader(stream))
	var out []string
	for {
		var msg struct {
			Finding *struct {
				OSV   string `json:"osv"`
				Fixed string `json:"fixed_version"`
				Trace []struct {
					Module string `json:"module"`
				} `json:"trace"`
			} `json:"finding"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode govulncheck output: %v", err)
		}
		if f := msg.Finding; f != nil && len(f.Trace) > 0 {
			out = append(out, f.OSV+" "+f.Trace[0].Module+" "+f.Fixed)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestInRange(t *testing.T) {
	r := func(evs ...Event) Range { return Range{Type: "SEMVER", Events: evs} }
	for _, tc := range []struct {
		name string
		r    Range
		v    string
		want bool
	}{
		{"below fix", r(Event{Introduced: "0"}, Event{Fixed: "0.3.3"}), "v0.3.0", true},
		{"at fix", r(Event{Introduced: "0"}, Event{Fixed: "0.3.3"}), "v0.3.3", false},
		{"above fix", r(Event{Introduced: "0"}, Event{Fixed: "0.3.3"}), "v0.4.0", false},
		{"before introduced", r(Event{Introduced: "1.2.0"}, Event{Fixed: "1.2.5"}), "v1.1.9", false},
		{"second window", r(Event{Introduced: "0"}, Event{Fixed: "1.20.12"}, Event{Introduced: "1.21.0-0"}, Event{Fixed: "1.21.5"}), "v1.21.3", true},
		{"between windows", r(Event{Introduced: "0"}, Event{Fixed: "1.20.12"}, Event{Introduced: "1.21.0-0"}, Event{Fixed: "1.21.5"}), "v1.20.13", false},
		{"last affected", r(Event{Introduced: "0"}, Event{LastAffected: "2.0.0"}), "v2.0.0", true},
		{"after last affected", r(Event{Introduced: "0"}, Event{LastAffected: "2.0.0"}), "v2.0.1", false},
		{"no fix", r(Event{Introduced: "1.0.0"}), "v9.0.0", true},
		{"pseudo-version", r(Event{Introduced: "0"}, Event{Fixed: "0.3.3"}), "v0.3.3-0.20200101000000-abcdefabcdef", true},
		{"prerelease of fix", r(Event{Introduced: "0"}, Event{Fixed: "1.21.5"}), "v1.21.5-rc.1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := inRange(tc.r, tc.v); got != tc.want {
				t.Errorf("inRange(%v, %s) = %v, want %v", tc.r.Events, tc.v, got, tc.want)
			}
		})
	}
}

func TestGoVersion(t *testing.T) {
	for in, want := range map[string]string{
		"go1.22.3":                         "v1.22.3",
		"go1.21":                           "v1.21.0",
		"go1.21rc2":                        "v1.21.0-rc.2",
		"go1.20beta1":                      "v1.20.0-beta.1",
		"go1.26.8 X:nocoverageredesign":    "v1.26.8",
		"devel go1.23-abcdef Tue Jan 1 +0": "",
		"":                                 "",
	} {
		if got := goVersion(in); got != want {
			t.Errorf("goVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStdlib checks that a binary's Go version is matched as module stdlib
// with the real database: go1.20.1 has many fixed standard-library issues.
func TestStdlib(t *testing.T) {
	db := loadGoVulnDB(t)
	inv := &inventory.Inventory{Binaries: []inventory.Binary{{Path: "/app", GoVersion: "go1.20.1"}}}
	fs := Scan(inv, db)
	if len(fs) == 0 {
		t.Fatal("no stdlib findings for go1.20.1")
	}
	ids := map[string]Finding{}
	for _, f := range fs {
		if f.Package != "stdlib" || f.Version != "go1.20.1" {
			t.Errorf("finding %s on %s %s, want stdlib go1.20.1", f.ID, f.Package, f.Version)
		}
		ids[f.ID] = f
	}
	// GO-2023-1621: crypto/internal/nistec, fixed in 1.19.7 and 1.20.2.
	if f, ok := ids["GO-2023-1621"]; !ok || f.Fixed != "go1.20.2" {
		t.Errorf("GO-2023-1621 = %+v, want fixed go1.20.2", f)
	}
}

// TestDebianRanges matches dpkg packages (by source package too) against
// Debian OSV ECOSYSTEM ranges with dpkg's version order.
func TestDebianRanges(t *testing.T) {
	var e Entry
	if err := json.Unmarshal([]byte(`{"id":"DSA-5678-1","aliases":["CVE-2024-0001"],
	  "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}],
	  "affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},
	    "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.14-1~deb12u1"}]}]}]}`), &e); err != nil {
		t.Fatal(err)
	}
	db := NewDB("test", []*Entry{&e})
	for _, tc := range []struct {
		version string
		want    bool
	}{
		{"3.0.13-1~deb12u1", true},
		{"3.0.14-1~deb12u1", false},
		{"3.0.14-1~deb12u2", false},
		{"3.0.14-1~deb11u1", true},
		{"1:1.0", false},
	} {
		inv := &inventory.Inventory{Packages: []inventory.Package{{Type: "deb", Name: "libssl3", Source: "openssl", Version: tc.version, DB: "/var/lib/dpkg/status"}}}
		fs := Scan(inv, db)
		if got := len(fs) == 1; got != tc.want {
			t.Errorf("libssl3 %s: affected = %v, want %v (%+v)", tc.version, got, tc.want, fs)
			continue
		}
		if tc.want && (fs[0].Package != "libssl3" || fs[0].Fixed != "3.0.14-1~deb12u1" || fs[0].Severity.Level != High || fs[0].Ecosystem != "Debian") {
			t.Errorf("finding %+v", fs[0])
		}
	}
}
