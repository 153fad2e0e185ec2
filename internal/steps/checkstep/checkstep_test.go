package checkstep

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
)

func TestFinish(t *testing.T) {
	r := &findings.Report{Tool: "x"}
	r.Add(findings.Finding{File: "a", Line: 1, Rule: "r1", Severity: findings.Warning, Message: "w"})
	r.Add(findings.Finding{File: "b", Line: 2, Rule: "r2", Severity: findings.Note, Message: "n"})
	for _, tc := range []struct {
		failOn string
		fails  bool
	}{{"", false}, {"error", false}, {"warning", true}, {"note", true}} {
		t.Run(tc.failOn, func(t *testing.T) {
			var log bytes.Buffer
			tmp := t.TempDir()
			env, _ := steptest.Env(tmp, tmp, tmp, &log)
			res, err := Finish(context.Background(), env, "x", Gate{FailOn: tc.failOn}, map[string]any{"extra": 1}, r)
			var fe *FailedError
			if got := errors.As(err, &fe); got != tc.fails {
				t.Fatalf("failed = %v (%v), want %v", got, err, tc.fails)
			}
			want := map[string]any{"findings": 2, "errors": 0, "warnings": 1, "extra": 1}
			for k, v := range want {
				if res.Outputs[k] != v {
					t.Errorf("output %s = %v, want %v", k, res.Outputs[k], v)
				}
			}
			data, err := os.ReadFile(filepath.Join(tmp, "x.sarif"))
			if err != nil {
				t.Fatal(err)
			}
			back, err := findings.ReadSARIF(data)
			if err != nil || len(back) != 1 || len(back[0].Findings) != 2 {
				t.Errorf("SARIF artifact: %v %v", back, err)
			}
			if !bytes.Contains(log.Bytes(), []byte("a:1: warning: w [r1]")) {
				t.Errorf("log lacks the finding:\n%s", log.String())
			}
		})
	}
}

func TestGateCheck(t *testing.T) {
	err := Gate{FailOn: "fatal"}.Check(steptest.Inputs{})
	if err == nil {
		t.Fatal("want an error for fail_on: fatal")
	}
	var _ step.Inputs = steptest.Inputs{}
}
