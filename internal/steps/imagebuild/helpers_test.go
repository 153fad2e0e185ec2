package imagebuild

import (
	"bytes"
	"testing"

	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
)

// inputs is a step.Inputs over a YAML snippet.
type inputs = steptest.Inputs

func newEnv(t *testing.T, dir string) (*step.Env, *bytes.Buffer, string) {
	t.Helper()
	return steptest.NewEnv(t, dir, "build-test", "unit")
}
