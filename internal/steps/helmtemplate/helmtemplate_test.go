package helmtemplate

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/steps/steptest"
)

func TestStep(t *testing.T) {
	for _, tc := range []struct {
		with                string
		findings, documents int
		fails               bool
	}{
		{"chart: good", 0, 2, false},
		{"{chart: good, validate: false}", 0, 0, false},
		{"chart: schemabad", 2, 1, true},
		{"chart: renderbad", 1, 0, true},
	} {
		t.Run(tc.with, func(t *testing.T) {
			s, err := Kind.New(steptest.Inputs{YAML: tc.with})
			if err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			tmp := t.TempDir()
			env, _ := steptest.Env("../../helmcheck/testdata", tmp, tmp, &log)
			res, err := s.Run(context.Background(), env)
			if (err != nil) != tc.fails {
				t.Fatalf("err = %v, want failure %v\n%s", err, tc.fails, log.String())
			}
			if res.Outputs["findings"] != tc.findings || res.Outputs["documents"] != tc.documents {
				t.Errorf("outputs = %v\n%s", res.Outputs, log.String())
			}
			if tc.with == "chart: good" {
				data, err := os.ReadFile(filepath.Join(tmp, "helm-template.yaml"))
				if err != nil || !strings.Contains(string(data), "kind: Deployment") {
					t.Errorf("rendered artifact: %v", err)
				}
			}
		})
	}
}
