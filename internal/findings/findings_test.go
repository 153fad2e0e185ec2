package findings

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

func sample() *Report {
	r := &Report{Tool: "kubeconform", Version: "v1.31.4"}
	r.Add(Finding{File: "deploy/b.yaml", Line: 7, Column: 3, Rule: "unknown-field", Severity: Error, Message: `spec.replica: unknown field "replica"`})
	r.Add(Finding{File: "deploy/a.yaml", Line: 2, Rule: "unknown-kind", Severity: Warning, Message: "Widget/v1 has no schema"})
	r.Add(Finding{File: "commit 1a2b3c4", Rule: "subject-case", Severity: Error, Message: "subject must not be sentence-case"})
	r.Sort()
	return r
}

func TestText(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `commit 1a2b3c4: error: subject must not be sentence-case [subject-case]
deploy/a.yaml:2: warning: Widget/v1 has no schema [unknown-kind]
deploy/b.yaml:7:3: error: spec.replica: unknown field "replica" [unknown-field]
kubeconform: 2 errors, 1 warning
`
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got, want := (&Report{Tool: "x"}).Summary(), "x: no findings"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCount(t *testing.T) {
	r := sample()
	for _, tc := range []struct {
		min  Severity
		want int
	}{{Note, 3}, {Warning, 3}, {Error, 2}} {
		if got := r.Count(tc.min); got != tc.want {
			t.Errorf("Count(%s) = %d, want %d", tc.min, got, tc.want)
		}
	}
}

func TestSARIFRoundTrip(t *testing.T) {
	r := sample()
	data, err := SARIF(r)
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(data, &generic); err != nil {
		t.Fatal(err)
	}
	if generic["version"] != "2.1.0" {
		t.Errorf("version = %v", generic["version"])
	}
	run := generic["runs"].([]any)[0].(map[string]any)
	rules := run["tool"].(map[string]any)["driver"].(map[string]any)["rules"].([]any)
	if len(rules) != 3 {
		t.Errorf("got %d rules, want 3", len(rules))
	}
	res := run["results"].([]any)[2].(map[string]any)
	region := res["locations"].([]any)[0].(map[string]any)["physicalLocation"].(map[string]any)["region"].(map[string]any)
	if region["startLine"] != float64(7) || region["startColumn"] != float64(3) {
		t.Errorf("region = %v", region)
	}
	back, err := ReadSARIF(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back[0].Findings, r.Findings) {
		t.Errorf("round trip:\ngot  %+v\nwant %+v", back[0].Findings, r.Findings)
	}
}

func TestSeverityJSON(t *testing.T) {
	b, err := json.Marshal(Finding{Rule: "r", Severity: Warning, Message: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"rule":"r","severity":"warning","message":"m"}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if _, err := ParseSeverity("fatal"); err == nil {
		t.Error("ParseSeverity(fatal): want error")
	}
}
