package kubeconform

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/gantry-ci/gantry/internal/steps/checkstep"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
)

func TestStep(t *testing.T) {
	for _, tc := range []struct {
		name, with     string
		findings, docs int
		fails          bool
	}{
		{"good files", "paths: [manifests/testdata/good]", 0, 5, false},
		{"bad files", "paths: [manifests/testdata/bad/deployment.yaml]", 4, 1, true},
		{"unknown kinds skipped", "{paths: [manifests/testdata/crd/widgets.yaml], unknown_kinds: skip}", 0, 2, false},
		{"kustomize", "kustomize: [manifests/testdata/kustomize/overlays/staging]", 1, 1, true},
		{"helm good", "helm: [{chart: helmcheck/testdata/good, set: [replicaCount=4]}]", 0, 2, false},
		{"helm schema error", "helm: [{chart: helmcheck/testdata/schemabad}]", 2, 1, true},
		{"helm render error", "helm: [{chart: helmcheck/testdata/renderbad}]", 1, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Kind.New(steptest.Inputs{YAML: tc.with})
			if err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			tmp := t.TempDir()
			env, _ := steptest.Env("../..", tmp, tmp, &log)
			res, err := s.Run(context.Background(), env)
			var fe *checkstep.FailedError
			if err != nil && !errors.As(err, &fe) {
				t.Fatal(err)
			}
			if (err != nil) != tc.fails {
				t.Fatalf("err = %v, want failure %v\n%s", err, tc.fails, log.String())
			}
			if res.Outputs["findings"] != tc.findings || res.Outputs["documents"] != tc.docs {
				t.Errorf("outputs = %v, want findings %d documents %d\n%s", res.Outputs, tc.findings, tc.docs, log.String())
			}
		})
	}
}

func TestBadInputs(t *testing.T) {
	for _, with := range []string{"unknown_kinds: maybe", "helm: [{values: [x.yaml]}]", "paths: x"} {
		if _, err := Kind.New(steptest.Inputs{YAML: with}); err == nil {
			t.Errorf("%q accepted", with)
		}
	}
}
