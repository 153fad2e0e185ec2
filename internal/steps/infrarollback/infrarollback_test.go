package infrarollback

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/infra/infratest"
	"github.com/gantry-ci/gantry/internal/infra/s3state"
	"github.com/gantry-ci/gantry/internal/steps/steptest"
)

func TestNewRefuses(t *testing.T) {
	tests := []struct{ name, with, want string }{
		{"neither", "{dir: infra}", "exactly one of snapshot"},
		{"both", "{snapshot: s, to_version: v}", "exactly one of snapshot"},
		{"bad ref", "{snapshot: a/b/c}", "must be STEP or STAGE/STEP"},
		{"unknown input", "{snapshot: s, nope: 1}", "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Kind.New(steptest.Inputs{YAML: tt.with})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %v, want it to say %q", err, tt.want)
			}
		})
	}
	if _, err := Kind.New(steptest.Inputs{YAML: "{dir: infra, snapshot: deploy/snap, backend_config: [b.hcl, region=x]}"}); err != nil {
		t.Errorf("New: %v", err)
	}
}

const key = "app/terraform.tfstate"

func state(serial int, resources string) string {
	return `{"version":4,"terraform_version":"1.5.7","serial":` + string(rune('0'+serial)) + `,"lineage":"L","resources":[` + resources + `]}`
}

const resA = `{"mode":"managed","type":"terraform_data","name":"a","instances":[{"attributes":{"id":"1"}}]}`
const resB = `{"mode":"managed","type":"terraform_data","name":"b","instances":[{"attributes":{"id":"2"}}]}`

// TestSnapshotThenRollback records the current version, lets the state
// move on, and restores the recorded version through the step's outputs,
// with credentials from the step's environment only.
func TestSnapshotThenRollback(t *testing.T) {
	s := infratest.StartS3(t)
	s.Bucket(t, "tfstate", true)
	first := s.Put(t, "tfstate", key, state(1, resA))
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "infra"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "infra", "main.tf"), []byte(s.BackendHCL("tfstate", key)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx := context.Background()

	env, log, _ := steptest.NewEnv(t, dir, "deploy", "snap")
	env.Vars = s.Env()
	snap, err := SnapshotKind.New(steptest.Inputs{YAML: "{dir: infra}"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := snap.Run(ctx, env)
	if err != nil {
		t.Fatalf("snapshot: %v\n%s", err, log)
	}
	if res.Outputs["version_id"] != first || res.Outputs["serial"] != uint64(1) || res.Outputs["location"] != "s3://tfstate/"+key {
		t.Fatalf("snapshot outputs = %v, want version %s serial 1", res.Outputs, first)
	}
	outputs := map[string]map[string]any{"deploy/snap": res.Outputs}

	rb, err := Kind.New(steptest.Inputs{YAML: "{dir: infra, snapshot: snap}"})
	if err != nil {
		t.Fatal(err)
	}
	renv, rlog, _ := steptest.NewEnv(t, dir, "deploy", "on_failure-1-infra-rollback")
	renv.Vars = s.Env()
	renv.Outputs = func(stage, step string) (map[string]any, bool) {
		o, ok := outputs[stage+"/"+step]
		return o, ok
	}

	// Unchanged since the snapshot: nothing to do, nothing written.
	res, err = rb.Run(ctx, renv)
	if err != nil || res.Outputs["restored"] != false {
		t.Fatalf("rollback of an unchanged state: %v, %v", res, err)
	}
	if n := len(s.Versions(t, "tfstate", key)); n != 1 {
		t.Errorf("versions = %d, want 1", n)
	}

	s.Put(t, "tfstate", key, state(2, resA+","+resB))
	res, err = rb.Run(ctx, renv)
	if err != nil {
		t.Fatalf("rollback: %v\n%s", err, rlog)
	}
	if res.Outputs["restored"] != true || res.Outputs["to_version"] != first || res.Outputs["serial"] != uint64(3) {
		t.Errorf("rollback outputs = %v, want restored %s as serial 3", res.Outputs, first)
	}
	if !strings.Contains(rlog.String(), "-terraform_data.b") || !strings.Contains(rlog.String(), "reason: gantry run test, deploy/on_failure-1-infra-rollback") {
		t.Errorf("rollback log lacks the changes or the reason:\n%s", rlog)
	}
	if n := len(s.Versions(t, "tfstate", key)); n != 3 {
		t.Errorf("versions = %d, want 3 (history kept)", n)
	}

	// Without credentials in the step's environment, the server refuses.
	renv.Vars = nil
	if _, err := rb.Run(ctx, renv); err == nil {
		t.Error("rollback without credentials: no error")
	}
	// A snapshot step that did not run.
	norun, _ := Kind.New(steptest.Inputs{YAML: "{dir: infra, snapshot: other}"})
	renv.Vars = s.Env()
	if _, err := norun.Run(ctx, renv); !errors.Is(err, ErrNoSnapshot) {
		t.Errorf("rollback of a missing snapshot: %v, want ErrNoSnapshot", err)
	}
	// Versioning off: the snapshot refuses.
	s.Bucket(t, "plain", false)
	if err := os.WriteFile(filepath.Join(dir, "infra", "main.tf"), []byte(s.BackendHCL("plain", key)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := snap.Run(ctx, env); !errors.Is(err, s3state.ErrNotVersioned) {
		t.Errorf("snapshot of an unversioned bucket: %v, want ErrNotVersioned", err)
	}
}
