package terraformfmt

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/steps/checkstep"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
)

func TestStep(t *testing.T) {
	for _, tc := range []struct {
		dir      string
		findings int
		fails    bool
	}{
		{"clean", 0, false},
		{"dirty", 4, true},
		{"broken", 2, true},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			s, err := Kind.New(steptest.Inputs{YAML: "dir: " + tc.dir})
			if err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			tmp := t.TempDir()
			env, _ := steptest.Env("../../tfmt/testdata", tmp, tmp, &log)
			res, err := s.Run(context.Background(), env)
			var fe *checkstep.FailedError
			if errors.As(err, &fe) != tc.fails {
				t.Fatalf("err = %v, want failure %v", err, tc.fails)
			}
			if res.Outputs["findings"] != tc.findings {
				t.Errorf("findings = %v, want %d", res.Outputs["findings"], tc.findings)
			}
			if _, err := os.Stat(filepath.Join(tmp, "terraform-fmt.sarif")); err != nil {
				t.Error(err)
			}
			if tc.dir == "dirty" {
				diff, err := os.ReadFile(filepath.Join(tmp, "terraform-fmt.diff"))
				if err != nil || !strings.Contains(string(diff), "+  acl    = \"private\"") {
					t.Errorf("diff artifact: %v\n%s", err, diff)
				}
			}
		})
	}
}

func TestBadInputs(t *testing.T) {
	if _, err := Kind.New(steptest.Inputs{YAML: "dirs: x"}); err == nil || !strings.Contains(err.Error(), "pipeline.yaml:1:1") {
		t.Errorf("unknown field: got %v", err)
	}
	if _, err := Kind.New(steptest.Inputs{YAML: "fail_on: fatal"}); err == nil {
		t.Error("fail_on: fatal accepted")
	}
}
