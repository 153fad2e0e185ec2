package helmlint

import (
	"bytes"
	"context"
	"testing"

	"github.com/gantry-ci/gantry/internal/steps/steptest"
)

func TestStep(t *testing.T) {
	for _, tc := range []struct {
		with             string
		findings, errors int
		fails            bool
	}{
		{"chart: good", 0, 0, false},
		{"chart: lintbad", 4, 3, true},
		{"{chart: lintbad, fail_on: warning}", 4, 3, true},
		{"chart: renderbad", 1, 1, true},
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
				t.Fatalf("err = %v, want failure %v", err, tc.fails)
			}
			if res.Outputs["findings"] != tc.findings || res.Outputs["errors"] != tc.errors {
				t.Errorf("outputs = %v\n%s", res.Outputs, log.String())
			}
		})
	}
	if _, err := Kind.New(steptest.Inputs{YAML: "strict: true"}); err == nil {
		t.Error("missing chart accepted")
	}
}
