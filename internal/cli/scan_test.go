package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/proc"
)

func sharedData(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("GANTRY_TEST_DATA")
	if dir == "" {
		dir = "/work/shared/data"
	}
	if _, err := os.Stat(filepath.Join(dir, "go-vulndb-osv.tar.gz")); err != nil {
		t.Skipf("shared test data not found (%v); set GANTRY_TEST_DATA", err)
	}
	return dir
}

func vulnapp(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not on PATH")
	}
	src, _ := filepath.Abs("../vuln/testdata/vulnapp")
	bin := filepath.Join(t.TempDir(), "vulnapp")
	cmd := proc.Command(t.Context(), "go", "build", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=readonly")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestScanAndSBOMCommands(t *testing.T) {
	data := sharedData(t)
	db := filepath.Join(data, "go-vulndb-osv.tar.gz")
	bin := vulnapp(t)
	badExc := filepath.Join(t.TempDir(), "exceptions.yaml")
	os.WriteFile(badExc, []byte("exceptions:\n  - id: GO-2020-0015\n    owner: me\n"), 0o644)
	okExc := filepath.Join(t.TempDir(), "exceptions.yaml")
	os.WriteFile(okExc, []byte(`exceptions:
  - {id: GO-2020-0015, justification: j, owner: o, expires: 2999-01-01}
  - {id: GO-2021-0113, justification: j, owner: o, expires: 2999-01-01}
  - {id: GO-2022-1059, justification: j, owner: o, expires: 2999-01-01}
  - {id: GO-2026-5970, justification: j, owner: o, expires: 2999-01-01}
`), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"fails", []string{"scan", bin, "--db", db}, 1, "GO-2022-1059  UNSCORED  golang.org/x/text  v0.3.0   v0.3.8"},
		{"unscored warn", []string{"scan", bin, "--db", db, "--unscored", "warn"}, 0, "4 finding(s) have no severity"},
		{"excepted", []string{"scan", bin, "--db", db, "--exceptions", okExc}, 0, "4 excepted; passed"},
		{"bad exceptions", []string{"scan", bin, "--db", db, "--exceptions", badExc}, 2, badExc + ":2:5: exceptions[0]: justification is required"},
		{"bad output", []string{"scan", bin, "--db", db, "-o", "xml"}, 2, "want table, json or sarif"},
		{"no db", []string{"scan", bin}, 2, "no vulnerability database"},
		{"no target", []string{"scan", "nothing-here", "--db", db}, 2, "no such target"},
		{"sarif", []string{"scan", bin, "--db", db, "-o", "sarif"}, 1, `"ruleId": "GO-2021-0113"`},
		{"sbom", []string{"sbom", bin, "--validate", filepath.Join(data, "cyclonedx-schema")}, 0, `"purl": "pkg:golang/golang.org/x/text@v0.3.0"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GANTRY_VULN_DB", "")
			out, code := runCLI(t, "", tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, want %d; output lacks %q:\n%s", code, tc.code, tc.want, out)
			}
		})
	}
	out, code := runCLI(t, "", "scan", bin, "--db", db, "-o", "json", "--unscored", "ignore")
	var rep struct {
		Passed   bool `json:"passed"`
		Findings []struct {
			ID    string `json:"id"`
			Fixed string `json:"fixed"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || !rep.Passed || len(rep.Findings) != 4 {
		t.Errorf("json: exit %d err %v report %+v\n%s", code, err, rep, out)
	}
}
