package cli

import (
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/signing"
)

func TestPredicateType(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"slsaprovenance1", signing.SLSAProvenanceV1, true},
		{"cyclonedx", signing.CycloneDX, true},
		{"https://github.com/gantry-ci/gantry/attestations/tests/v1", "https://github.com/gantry-ci/gantry/attestations/tests/v1", true},
		{"urn:example:predicate", "urn:example:predicate", true},
		{"spdx", "", false},
		{"", "", false},
		{"/just/a/path", "", false},
	} {
		got, err := predicateType(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("predicateType(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseAttestation(t *testing.T) {
	statement := `{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`
	for _, tc := range []struct {
		name, data, typ string
		wantType        string
		wantStatement   bool
		wantErr         string
	}{
		{"predicate", `{"bomFormat":"CycloneDX"}`, "cyclonedx", signing.CycloneDX, false, ""},
		{"statement", statement, "", signing.SLSAProvenanceV1, true, ""},
		{"statement with its type", statement, "slsaprovenance1", signing.SLSAProvenanceV1, true, ""},
		{"statement v0.1", strings.Replace(statement, "Statement/v1", "Statement/v0.1", 1), "", signing.SLSAProvenanceV1, true, ""},
		{"statement without a type", strings.Replace(statement, `"predicateType":"https://slsa.dev/provenance/v1",`, "", 1), "", "", false, "without a predicateType"},
		{"statement with another type", statement, "cyclonedx", "", false, "not --type"},
		{"predicate without type", `{"a":1}`, "", "", false, "say its --type"},
		{"array", `[1,2]`, "cyclonedx", "", false, "not a JSON object"},
		{"not JSON", `hello`, "cyclonedx", "", false, "not a JSON object"},
		{"bad type", `{}`, "nonsense", "", false, "want cyclonedx, slsaprovenance1 or a predicate type URI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseAttestation("f.json", []byte(tc.data), tc.typ)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.predicateType != tc.wantType || (got.statement != nil) != tc.wantStatement {
				t.Errorf("got type %q statement %v, want %q %v", got.predicateType, got.statement != nil, tc.wantType, tc.wantStatement)
			}
		})
	}
}

func FuzzParseAttestation(f *testing.F) {
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"x:y"}`), "")
	f.Add([]byte(`{"a":1}`), "cyclonedx")
	f.Add([]byte(`null`), "https://example.com/p")
	f.Fuzz(func(t *testing.T, data []byte, typ string) {
		a, err := parseAttestation("f.json", data, typ)
		if err == nil && a.predicateType == "" {
			t.Errorf("accepted %q --type %q without a predicate type", data, typ)
		}
	})
}

func TestParseAnnotations(t *testing.T) {
	got, err := parseAnnotations([]string{"run=7", "url=https://x/?a=b", "empty="})
	if err != nil || got["run"] != "7" || got["url"] != "https://x/?a=b" || got["empty"] != "" {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"novalue", "=v"} {
		if _, err := parseAnnotations([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
