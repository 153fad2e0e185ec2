package vuln

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/policy"
)

func loadTrivyFixture(t testing.TB) *TrivyReport {
	t.Helper()
	data, err := os.ReadFile("testdata/trivy/image.json")
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseTrivy("testdata/trivy/image.json", data)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestTrivyFindings(t *testing.T) {
	r := loadTrivyFixture(t)
	fs := r.Findings("linux/amd64")
	type row struct {
		pkg, version, fixed, status, eco, loc, level, vector, source string
		score                                                        float64
		aliases                                                      []string
		published                                                    string
	}
	want := map[string]row{
		"CVE-2024-5535": {"libssl3", "3.0.13-1~deb12u1", "3.0.14-1~deb12u1", "fixed", "Debian", r.Results[0].Target, "MEDIUM",
			"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:H", "trivy:debian", 9.1, []string{"DSA-5750-1"}, "2024-06-27"},
		"CVE-2023-45853": {"zlib1g", "1:1.2.13.dfsg-1", "", "will_not_fix", "Debian", r.Results[0].Target, "CRITICAL",
			"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "trivy:nvd", 9.8, nil, "2023-10-14"},
		"TEMP-0290435-0B57B5": {"tar", "1.34+dfsg-1.2+deb12u1", "", "affected", "Debian", r.Results[0].Target, "UNSCORED",
			"", "", 0, nil, ""},
		"CVE-2022-32149": {"golang.org/x/text", "v0.3.0", "0.3.8", "fixed", "Go", "app/api", "HIGH",
			"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", "trivy:ghsa", 7.5, []string{"GHSA-69ch-w2m2-3vjp", "GO-2022-1059"}, "2022-10-14"},
		"CVE-2020-14040": {"golang.org/x/text", "v0.3.0", "0.3.3", "fixed", "Go", "app/api", "HIGH",
			"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", "trivy:ghsa", 7.5, []string{"GHSA-5rcv-m4m3-hfh7", "GO-2020-0015"}, "2020-06-17"},
		"CVE-2024-24790": {"stdlib", "v1.22.3", "1.21.11, 1.22.4", "fixed", "Go", "app/api", "CRITICAL",
			"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "trivy:nvd", 9.8, []string{"GO-2024-2887"}, "2024-06-05"},
		"GHSA-xr7r-f8xq-vfvv": {"github.com/example/fresh", "v1.4.0", "", "affected", "Go", "app/plugins/fresh", "HIGH",
			"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N", "trivy:ghsa", 0, nil, "2026-11-10"},
	}
	if len(fs) != len(want) {
		t.Fatalf("got %d findings, want %d: %+v", len(fs), len(want), fs)
	}
	for _, f := range fs {
		w, ok := want[f.ID]
		if !ok {
			t.Errorf("unexpected finding %s", f.ID)
			continue
		}
		pub := ""
		if f.Published != nil {
			pub = f.Published.Format("2006-01-02")
		}
		got := row{f.Package, f.Version, f.Fixed, f.FixStatus, f.Ecosystem, f.Location, f.Severity.Level.String(),
			f.Severity.Vector, f.Severity.Source, f.Severity.Score, f.Aliases, pub}
		if got.pkg != w.pkg || got.version != w.version || got.fixed != w.fixed || got.status != w.status || got.eco != w.eco ||
			got.loc != w.loc || got.level != w.level || got.vector != w.vector || got.source != w.source || got.score != w.score ||
			!slices.Equal(got.aliases, w.aliases) || got.published != w.published {
			t.Errorf("%s:\n got %+v\nwant %+v", f.ID, got, w)
		}
		if f.Platform != "linux/amd64" {
			t.Errorf("%s: platform %q", f.ID, f.Platform)
		}
	}
	if !slices.IsSortedFunc(fs, func(a, b Finding) int {
		return strings.Compare(a.Location+"|"+a.Package+"|"+a.ID, b.Location+"|"+b.Package+"|"+b.ID)
	}) {
		t.Errorf("findings not sorted by location, package, ID")
	}
}

func trivyExceptions(t *testing.T) *policy.Exceptions {
	t.Helper()
	x, err := policy.ParseExceptions(".gantry/exceptions.yaml", []byte(`exceptions:
  - id: GO-2022-1059              # the Go ID of Trivy's CVE-2022-32149
    package: golang.org/x/text
    justification: Accept-Language is parsed by the proxy, not by us
    owner: alice@example.com
    expires: 2027-01-31
  - id: ghsa-5rcv-m4m3-hfh7       # CVE-2020-14040, expired
    justification: fixed upstream soon
    owner: bob@example.com
    expires: 2026-11-01
  - id: DSA-5750-1                # Trivy's VendorID of CVE-2024-5535
    package: libssl3
    justification: no TLS in this image
    owner: carol@example.com
    expires: 2026-12-05
`))
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestTrivyGate(t *testing.T) {
	r := loadTrivyFixture(t)
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		gate        Gate
		wantFailing []string
		wantExc     int
	}{
		{"default", Gate{},
			[]string{"CVE-2020-14040", "CVE-2023-45853", "CVE-2024-24790", "GHSA-xr7r-f8xq-vfvv", "TEMP-0290435-0B57B5"}, 2},
		{"fixed only", Gate{FixedOnly: true}, []string{"CVE-2020-14040", "CVE-2024-24790"}, 2},
		{"unscored ignore", Gate{Unscored: UnscoredIgnore},
			[]string{"CVE-2020-14040", "CVE-2023-45853", "CVE-2024-24790", "GHSA-xr7r-f8xq-vfvv"}, 2},
		{"no fix older than 30d", Gate{NoFixOlderThan: 30 * 24 * time.Hour},
			[]string{"CVE-2020-14040", "CVE-2023-45853", "CVE-2024-24790", "TEMP-0290435-0B57B5"}, 2},
		{"critical only", Gate{FailOn: []Level{Critical}, Unscored: UnscoredWarn}, []string{"CVE-2023-45853", "CVE-2024-24790"}, 2},
		{"medium and up", Gate{FailOn: []Level{Medium, High, Critical}, Unscored: UnscoredIgnore},
			[]string{"CVE-2020-14040", "CVE-2023-45853", "CVE-2024-24790", "GHSA-xr7r-f8xq-vfvv"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.gate
			g.Exceptions = trivyExceptions(t)
			v := g.Apply(r.Findings(""), now)
			var failing []string
			for _, f := range v.Findings {
				if f.Fails {
					failing = append(failing, f.ID)
				}
			}
			slices.Sort(failing)
			if !slices.Equal(failing, tc.wantFailing) || v.Failing != len(tc.wantFailing) || v.Excepted != tc.wantExc {
				t.Errorf("failing %v (%d), excepted %d; want %v, %d", failing, v.Failing, v.Excepted, tc.wantFailing, tc.wantExc)
			}
		})
	}
	g := Gate{Exceptions: trivyExceptions(t)}
	v := g.Apply(r.Findings(""), now)
	byID := map[string]Finding{}
	for _, f := range v.Findings {
		byID[f.ID] = f
	}
	if f := byID["CVE-2022-32149"]; f.Status != StatusExcepted || f.Exception == nil || f.Exception.Owner != "alice@example.com" {
		t.Errorf("CVE-2022-32149 (alias GO-2022-1059): %+v", f)
	}
	if f := byID["CVE-2020-14040"]; f.Status != StatusExpired || !strings.Contains(f.Reason, "expired on 2026-11-01") {
		t.Errorf("CVE-2020-14040 (alias GHSA-5rcv-m4m3-hfh7): %+v", f)
	}
	if f := byID["CVE-2024-5535"]; f.Status != StatusExcepted {
		t.Errorf("CVE-2024-5535 (vendor ID DSA-5750-1): %+v", f)
	}
	if !slices.ContainsFunc(v.Warnings, func(s string) bool { return strings.Contains(s, "DSA-5750-1") && strings.Contains(s, "2026-12-05") }) {
		t.Errorf("no warning for the exception expiring soon: %v", v.Warnings)
	}
	if v.Counts["CRITICAL"] != 2 || v.Counts["HIGH"] != 3 || v.Counts["MEDIUM"] != 1 || v.Counts["UNSCORED"] != 1 {
		t.Errorf("counts %v", v.Counts)
	}
}

func TestTrivyReportOutputs(t *testing.T) {
	r := loadTrivyFixture(t)
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	g := Gate{Exceptions: trivyExceptions(t)}
	rep := NewTrivyReport("", []*TrivyReport{r}, g.Apply(r.Findings(""), now), now)
	if rep.Scanner != ScannerTrivy || rep.Kind != "image" || rep.Binaries != 2 || rep.Passed ||
		rep.Digest != "sha256:4c5e0f9b7d6a1e2f3a4b5c6d7e8f90112233445566778899aabbccddeeff0011" || rep.Target != r.ArtifactName {
		t.Errorf("report header: %+v", rep)
	}
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"scanned by trivy; 2 Go binaries",
		"CVE-2024-24790       CRITICAL 9.8",
		"CVE-2022-32149: excepted until 2027-01-31 by alice@example.com (.gantry/exceptions.yaml:2)",
		"vuln-scan: 7 finding(s): 2 critical, 3 high, 1 medium, 1 unscored; 2 excepted; FAILED (5 failing)",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
	js, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js, &back); err != nil || back.Scanner != "trivy" || len(back.Findings) != 7 {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
	sarif, err := rep.SARIF()
	if err != nil {
		t.Fatal(err)
	}
	logs, err := findings.ReadSARIF(sarif)
	if err != nil || len(logs) != 1 {
		t.Fatalf("SARIF: %v", err)
	}
	if logs[0].Tool != "gantry vuln-scan (trivy)" || logs[0].Count(findings.Error) != 5 {
		t.Errorf("SARIF tool %q, %d errors", logs[0].Tool, logs[0].Count(findings.Error))
	}
	if !strings.Contains(string(sarif), "no fix available (will_not_fix)") {
		t.Errorf("SARIF lacks the fix status:\n%s", sarif)
	}
}

func TestParseTrivyErrors(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"empty", "  \n", "r.json: empty file"},
		{"syntax", "{\n  \"SchemaVersion\": 2,\n  \"Results\": [\n    {\"Target\": \"x\",}\n  ]\n}", "r.json:4:20 (byte offset 58): invalid character '}'"},
		{"type", "{\"SchemaVersion\": 2,\n\"Results\": {\"Target\": 1}}", "r.json:2:12 (byte offset 32): json: cannot unmarshal object into Go struct field TrivyReport.Results"},
		{"truncated", `{"SchemaVersion": 2, "Results": [`, "r.json:1:33 (byte offset 32): unexpected end of JSON input"},
		{"schema 1", `{"SchemaVersion": 1}`, "SchemaVersion 1, want 2"},
		{"not trivy", `[]`, "cannot unmarshal array"},
		{"no id", `{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"PkgName": "p"}]}]}`, "Results[0].Vulnerabilities[0]: VulnerabilityID is missing"},
		{"no package", `{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"VulnerabilityID": "CVE-1"}]}]}`, "(CVE-1): PkgName is missing"},
		{"severity", `{"SchemaVersion": 2, "Results": [{}, {"Vulnerabilities": [{"VulnerabilityID": "CVE-1", "PkgName": "p", "Severity": "SEVERE"}]}]}`,
			`Results[1].Vulnerabilities[0] (CVE-1): unknown severity "SEVERE"`},
		{"bad date", `{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"VulnerabilityID": "CVE-1", "PkgName": "p", "PublishedDate": "yesterday"}]}]}`,
			`r.json: parsing time "yesterday"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTrivy("r.json", []byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	// A report without results (nothing found) is fine.
	r, err := ParseTrivy("r.json", []byte(`{"SchemaVersion": 2, "ArtifactName": "app", "ArtifactType": "filesystem"}`))
	if err != nil || len(r.Findings("")) != 0 {
		t.Errorf("empty report: %v", err)
	}
}

func TestTrivyAliases(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    TrivyVuln
		want []string
	}{
		{"none", TrivyVuln{VulnerabilityID: "CVE-2024-1"}, nil},
		{"own id dropped", TrivyVuln{VulnerabilityID: "GHSA-69ch-w2m2-3vjp", PrimaryURL: "https://github.com/advisories/GHSA-69ch-w2m2-3vjp",
			References: []string{"https://nvd.nist.gov/vuln/detail/CVE-2022-32149", "https://www.cve.org/CVERecord?id=CVE-2022-32149"}},
			[]string{"CVE-2022-32149"}},
		{"unrelated CVE mention ignored", TrivyVuln{VulnerabilityID: "CVE-2024-2", References: []string{"https://example.com/blog/CVE-2019-9999-and-CVE-2024-2"}}, nil},
		{"vendor ids first", TrivyVuln{VulnerabilityID: "CVE-2024-3", VendorIDs: []string{"RHSA-2024:1", "ALAS-2024-9"},
			References: []string{"https://pkg.go.dev/vuln/GO-2024-2887", "https://pkg.go.dev/vuln/GO-2024-2887"}},
			[]string{"RHSA-2024:1", "ALAS-2024-9", "GO-2024-2887"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.v.Aliases(); !slices.Equal(got, tc.want) {
				t.Errorf("Aliases() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTrivyScoreBadVector(t *testing.T) {
	v := TrivyVuln{Severity: "LOW", CVSS: map[string]TrivyCVSS{"redhat": {V3Vector: "CVSS:3.1/AV:N", V3Score: 3.1}}}
	if s := v.Score(); s.Level != Low || s.Score != 3.1 || s.Source != "trivy" || s.Vector != "CVSS:3.1/AV:N" {
		t.Errorf("Score() = %+v", s)
	}
}

// FuzzParseTrivy decodes arbitrary input as a Trivy report and, when it
// parses, converts and gates it: neither may panic, and every finding
// keeps an ID and package.
func FuzzParseTrivy(f *testing.F) {
	if data, err := os.ReadFile("testdata/trivy/image.json"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`{"SchemaVersion":2,"Results":[{"Target":"t","Type":"gobinary","Vulnerabilities":[{"VulnerabilityID":"CVE-1","PkgName":"p","Severity":"HIGH","CVSS":{"nvd":{"V3Vector":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}},"References":["https://pkg.go.dev/vuln/GO-2020-0001"]}]}]}`))
	f.Add([]byte(`{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"VulnerabilityID":"X","PkgName":"p","PublishedDate":"0001-01-01T00:00:00Z","Title":"ééééé"}]}]}`))
	f.Add([]byte(`{"SchemaVersion":2,"Results":null}`))
	now := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseTrivy("fuzz.json", data)
		if err != nil {
			if r != nil {
				t.Error("report returned with an error")
			}
			return
		}
		fs := r.Findings("linux/amd64")
		for _, f := range fs {
			if f.ID == "" || f.Package == "" {
				t.Errorf("finding without ID or package: %+v", f)
			}
			if f.Severity.Score < 0 || f.Severity.Score > 10 {
				t.Errorf("score %v out of range", f.Severity.Score)
			}
		}
		v := Gate{FixedOnly: true}.Apply(fs, now)
		rep := NewTrivyReport("t", []*TrivyReport{r}, v, now)
		if _, err := rep.SARIF(); err != nil {
			t.Errorf("SARIF: %v", err)
		}
	})
}
