package vuln

import (
	"encoding/json"
	"testing"
)

// Vectors and base scores as published (NVD / the CVSS v3.1 user guide).
func TestCVSS3Score(t *testing.T) {
	for _, tc := range []struct {
		vector string
		score  float64
		level  Level
	}{
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, Critical},               // CVE-2021-44228 class RCE
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, Critical},              // Log4Shell CVE-2021-44228
		{"CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5, High},                   // Heartbleed CVE-2014-0160 (NVD v3.0)
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, Medium},                 // typical reflected XSS
		{"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8, High},                   // local privilege escalation
		{"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H", 5.9, Medium},                 // CVE-2022-41717 class DoS
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, High},                   // Go net/http DoS, e.g. CVE-2022-41723
		{"CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4, Medium},                 // stored XSS
		{"CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6, Low},                    // minimum-ish
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N", 5.3, Medium},                 // information disclosure
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0, None},                   // no impact
		{"CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:C/C:H/I:H/A:H/E:P/RL:O/RC:C", 9.1, Critical}, // temporal metrics ignored
	} {
		t.Run(tc.vector, func(t *testing.T) {
			got, err := CVSS3Score(tc.vector)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.score {
				t.Errorf("score = %v, want %v", got, tc.score)
			}
			if l := LevelOf(got); l != tc.level {
				t.Errorf("level = %v, want %v", l, tc.level)
			}
		})
	}
}

func TestCVSS3ScoreErrors(t *testing.T) {
	for _, v := range []string{
		"",
		"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",          // A missing
		"CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",      // bad value
		"CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", // duplicate
		"CVSS:3.1/AVN",
	} {
		if _, err := CVSS3Score(v); err == nil {
			t.Errorf("CVSS3Score(%q): no error", v)
		}
	}
}

func TestScoreSources(t *testing.T) {
	entry := func(js string) *Entry {
		var e Entry
		if err := json.Unmarshal([]byte(js), &e); err != nil {
			t.Fatal(err)
		}
		return &e
	}
	for _, tc := range []struct {
		name   string
		js     string
		level  Level
		source string
		vector bool
	}{
		{"cvss v3", `{"id":"X","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],"affected":[{}]}`, Critical, "cvss_v3", true},
		{"highest v3 wins", `{"id":"X","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N"}],"affected":[{"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}]}]}`, High, "cvss_v3", true},
		{"database_specific", `{"id":"X","database_specific":{"severity":"MODERATE"},"affected":[{}]}`, Medium, "database_specific", false},
		{"v4 only is stored unscored", `{"id":"X","severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}],"affected":[{}]}`, Unscored, "", true},
		{"v4 with database severity", `{"id":"X","severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}],"database_specific":{"severity":"CRITICAL"},"affected":[{}]}`, Critical, "database_specific", true},
		{"nothing", `{"id":"X","affected":[{}]}`, Unscored, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := entry(tc.js)
			got := score(e, &e.Affected[0])
			if got.Level != tc.level || got.Source != tc.source || (got.Vector != "") != tc.vector {
				t.Errorf("score = %+v, want level %v source %q vector %v", got, tc.level, tc.source, tc.vector)
			}
		})
	}
}
