package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/testenv"
	"github.com/gantry-ci/gantry/internal/vuln/trivy/trivytest"
)

func sharedData(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("GANTRY_TEST_DATA")
	if dir == "" {
		dir = "/work/shared/data"
	}
	if _, err := os.Stat(filepath.Join(dir, "go-vulndb-osv.tar.gz")); err != nil {
		testenv.Missing(t, "shared data go-vulndb-osv.tar.gz", err.Error()+"; set GANTRY_TEST_DATA")
	}
	return dir
}

func vulnapp(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "go", "install Go")
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
		// The step runs in the directory holding the exceptions file and names
		// it inside that directory.
		{"bad exceptions", []string{"scan", bin, "--db", db, "--exceptions", badExc}, 2, filepath.Base(filepath.Dir(badExc)) + "/exceptions.yaml:2:5: exceptions[0]: justification is required"},
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

// TestScanTrivy runs `gantry scan` with Trivy: a fake trivy (trivytest;
// the real one needs its database from the network) or an existing report.
func TestScanTrivy(t *testing.T) {
	report, _ := filepath.Abs("../vuln/testdata/trivy/image.json")
	fakeDir, fakeEnv := trivytest.Install(t, report)
	for _, kv := range fakeEnv {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	bin := filepath.Join(t.TempDir(), "api")
	os.WriteFile(bin, []byte("\x7fELF"), 0o755)
	exc := filepath.Join(t.TempDir(), "exceptions.yaml")
	os.WriteFile(exc, []byte(`exceptions:
  - {id: GO-2022-1059, justification: j, owner: alice, expires: 2999-01-01}
  - {id: GO-2024-2887, justification: upgrade scheduled, owner: bob, expires: 2999-01-01}
`), 0o644)
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte("{\"SchemaVersion\": 2,\n\"Results\": 3}"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"report fails", []string{"scan", "--trivy-report", report, "--exceptions", exc}, 1, "vuln-scan: 7 finding(s): 2 critical, 3 high, 1 medium, 1 unscored; 2 excepted; FAILED (4 failing)"},
		{"report narrower gate", []string{"scan", "--trivy-report", report, "--exceptions", exc, "--fail-on", "CRITICAL", "--fixed-only", "--unscored", "ignore"}, 0, "2 excepted; passed"},
		{"report sarif", []string{"scan", "--trivy-report", report, "-o", "sarif"}, 1, `"name": "gantry vuln-scan (trivy)"`},
		{"report json", []string{"scan", "--trivy-report", report, "-o", "json"}, 1, `"scanner": "trivy"`},
		{"bad report", []string{"scan", "--trivy-report", bad}, 2, bad + ":2:12 (byte offset 32)"},
		{"runs trivy", []string{"scan", bin, "--scanner", "trivy", "--exceptions", exc}, 1, "scanned by trivy"},
		{"auto picks trivy", []string{"scan", bin, "--scanner", "auto", "--exceptions", exc}, 1, "scanned by trivy"},
		{"report and target", []string{"scan", bin, "--trivy-report", report}, 2, "give no TARGET"},
		{"no target", []string{"scan"}, 2, "TARGET is required"},
		{"bad scanner", []string{"scan", bin, "--scanner", "grype"}, 2, `--scanner "grype": want gantry, trivy or auto`},
		{"db with trivy", []string{"scan", bin, "--scanner", "trivy", "--db", "x.tar.gz"}, 2, "--db is gantry's OSV database"},
		{"report with gantry", []string{"scan", "--scanner", "gantry", "--trivy-report", report}, 2, "--trivy-report needs --scanner trivy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := runCLI(t, "", tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, want %d; output lacks %q:\n%s", code, tc.code, tc.want, out)
			}
		})
	}
	calls := trivytest.Calls(t, fakeDir)
	if len(calls) != 2 || calls[0][0] != "rootfs" || calls[0][len(calls[0])-1] != bin || !slices.Contains(calls[0], "--offline-scan") {
		t.Errorf("trivy calls %v", calls)
	}
	t.Setenv("PATH", t.TempDir())
	out, code := runCLI(t, "", "scan", bin, "--scanner", "trivy")
	if code != 2 || !strings.Contains(out, "trivy is not installed (not on PATH): install it from https://trivy.dev") {
		t.Errorf("no trivy: exit %d\n%s", code, out)
	}
}
