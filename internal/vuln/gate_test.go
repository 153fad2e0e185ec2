package vuln

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/policy"
)

func TestGate(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	recent := now.AddDate(0, 0, -5)
	old := now.AddDate(0, -3, 0)
	exc, err := policy.ParseExceptions(".gantry/exceptions.yaml", []byte(`exceptions:
  - id: GO-2022-1059
    package: golang.org/x/text
    justification: input is never user-controlled
    owner: alice
    expires: 2026-12-31
  - id: CVE-2020-14040
    justification: accepted last quarter
    owner: bob
    expires: 2026-10-01
  - id: GHSA-soon
    justification: upgrade scheduled
    owner: carol
    expires: 2026-12-05
`))
	if err != nil {
		t.Fatal(err)
	}
	fs := []Finding{
		{ID: "GO-2022-1059", Package: "golang.org/x/text", Fixed: "v0.3.8", Severity: Score{Level: High}},
		{ID: "GO-2020-0015", Aliases: []string{"CVE-2020-14040"}, Package: "golang.org/x/text", Fixed: "v0.3.3", Severity: Score{Level: High}},
		{ID: "GO-2099-0001", Package: "example.com/a", Fixed: "v1.0.1", Severity: Score{Level: Medium}},
		{ID: "GO-2099-0002", Package: "example.com/b", Severity: Score{Level: Critical}, Published: &recent},
		{ID: "GO-2099-0003", Package: "example.com/c", Severity: Score{Level: Critical}, Published: &old},
		{ID: "GO-2099-0004", Package: "example.com/d", Fixed: "v2.0.0"},
	}
	type want struct {
		status Status
		fails  bool
	}
	for _, tc := range []struct {
		name    string
		gate    Gate
		want    []want
		failing int
	}{
		{"defaults", Gate{Exceptions: exc}, []want{
			{StatusExcepted, false}, {StatusExpired, true}, {StatusOpen, false}, {StatusOpen, true}, {StatusOpen, true}, {StatusOpen, true},
		}, 4},
		{"no fix grace", Gate{Exceptions: exc, NoFixOlderThan: 30 * 24 * time.Hour}, []want{
			{StatusExcepted, false}, {StatusExpired, true}, {StatusOpen, false}, {StatusOpen, false}, {StatusOpen, true}, {StatusOpen, true},
		}, 3},
		{"fixed only, unscored warn", Gate{Exceptions: exc, FixedOnly: true, Unscored: UnscoredWarn}, []want{
			{StatusExcepted, false}, {StatusExpired, true}, {StatusOpen, false}, {StatusOpen, false}, {StatusOpen, false}, {StatusOpen, false},
		}, 1},
		{"fail on medium", Gate{FailOn: []Level{Medium, High, Critical}, Unscored: UnscoredIgnore}, []want{
			{StatusOpen, true}, {StatusOpen, true}, {StatusOpen, true}, {StatusOpen, true}, {StatusOpen, true}, {StatusOpen, false},
		}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.gate.Check(); err != nil {
				t.Fatal(err)
			}
			v := tc.gate.Apply(fs, now)
			for i, w := range tc.want {
				f := v.Findings[i]
				if f.Status != w.status || f.Fails != w.fails {
					t.Errorf("%s: status %s fails %v, want %s %v (%s)", f.ID, f.Status, f.Fails, w.status, w.fails, f.Reason)
				}
			}
			if v.Failing != tc.failing || v.Passed() != (tc.failing == 0) {
				t.Errorf("failing = %d, want %d", v.Failing, tc.failing)
			}
		})
	}
	v := Gate{Exceptions: exc}.Apply(fs, now)
	if r := v.Findings[1].Reason; !strings.Contains(r, "expired on 2026-10-01") || !strings.Contains(r, ".gantry/exceptions.yaml:7") {
		t.Errorf("expired reason = %q", r)
	}
	if len(v.Warnings) != 1 || !strings.Contains(v.Warnings[0], "GHSA-soon") {
		t.Errorf("warnings = %q, want the exception expiring 2026-12-05", v.Warnings)
	}
	if err := (Gate{Unscored: "maybe"}).Check(); err == nil {
		t.Error("unscored: maybe accepted")
	}
}

// TestExpiredExceptionFailsRealScan: an exception that covered the real
// x/text findings stops covering them the day after it expires.
func TestExpiredExceptionFailsRealScan(t *testing.T) {
	db := loadGoVulnDB(t)
	bin := buildVulnApp(t)
	inv := mustBinary(t, bin)
	exc, err := policy.ParseExceptions("exceptions.yaml", []byte(`exceptions:
  - {id: GO-2020-0015, package: golang.org/x/text, justification: t, owner: o, expires: 2026-06-30}
  - {id: GO-2021-0113, package: golang.org/x/text, justification: t, owner: o, expires: 2026-06-30}
  - {id: GO-2022-1059, package: golang.org/x/text, justification: t, owner: o, expires: 2026-06-30}
  - {id: GO-2026-5970, package: golang.org/x/text, justification: t, owner: o, expires: 2026-06-30}
`))
	if err != nil {
		t.Fatal(err)
	}
	fs := Scan(inv, db)
	before := Gate{Exceptions: exc}.Apply(fs, time.Date(2026, 6, 30, 23, 59, 0, 0, time.UTC))
	if !before.Passed() || before.Excepted != 4 {
		t.Errorf("on the expiry day: failing %d excepted %d, want 0 and 4", before.Failing, before.Excepted)
	}
	after := Gate{Exceptions: exc}.Apply(fs, time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC))
	if after.Passed() || after.Failing != 4 {
		t.Errorf("after expiry: failing %d, want 4", after.Failing)
	}
	for _, f := range after.Findings {
		if f.Status != StatusExpired || !strings.Contains(f.Reason, "expired on 2026-06-30") {
			t.Errorf("%s: status %s reason %q", f.ID, f.Status, f.Reason)
		}
	}
}
