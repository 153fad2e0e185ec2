package licensecheck

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/checkstep"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
)

func TestGPLFlagged(t *testing.T) {
	dir, err := filepath.Abs("../../license/testdata")
	if err != nil {
		t.Fatal(err)
	}
	st, err := Kind.New(steptest.Inputs{YAML: "dir: app\npolicy: app/.gantry/licenses.yaml\n"})
	if err != nil {
		t.Fatal(err)
	}
	env, log, art := steptest.NewEnv(t, dir, "security", "licenses")
	res, err := st.Run(context.Background(), env)
	var fe *checkstep.FailedError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want gate failure\n%s", err, log)
	}
	if res.Outputs["modules"] != 2 || res.Outputs["violations"] != 2 || res.Outputs["unknown"] != 1 {
		t.Errorf("outputs = %v", res.Outputs)
	}
	if !strings.Contains(log.String(), "go.mod: error: example.com/gpllib@v0.1.0: [GPL-3.0-or-later]") {
		t.Errorf("log:\n%s", log)
	}
	data, err := os.ReadFile(filepath.Join(art, "licenses.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Violations []struct{ Module, Rule string }
	}
	if err := json.Unmarshal(data, &doc); err != nil || len(doc.Violations) != 2 || doc.Violations[0].Rule != "copyleft" {
		t.Errorf("licenses.json = %s (%v)", data, err)
	}
	if _, err := os.Stat(filepath.Join(art, "license-check.sarif")); err != nil {
		t.Error(err)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := Kind.New(steptest.Inputs{YAML: "policy: /etc/x\n"}); err == nil {
		t.Error("absolute policy: want error")
	}
}

func TestCacheKey(t *testing.T) {
	st, err := Kind.New(steptest.Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	env, _, _ := steptest.NewEnv(t, "../../../examples/payment-service", "security", "licenses")
	key, err := st.(*Step).CacheKey(context.Background(), env)
	if err != nil || len(key.Files) != 3 || key.Files[2] != ".gantry/licenses.yaml" {
		t.Errorf("key = %+v, %v", key, err)
	}
	env.Dir = "../../license/testdata/app" // local replacements: not cacheable
	if _, err := st.(*Step).CacheKey(context.Background(), env); !errors.Is(err, step.ErrNotCacheable) {
		t.Errorf("err = %v, want ErrNotCacheable", err)
	}
}
