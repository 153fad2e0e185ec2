package imagebuild

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/yamlx"
)

// inputs is a step.Inputs over a YAML snippet.
type inputs struct{ yaml string }

func (in inputs) Decode(v any) error {
	if in.yaml == "" {
		return nil
	}
	return yamlx.Decode("pipeline.yaml", []byte(in.yaml), v)
}

func (in inputs) Errorf(path, format string, args ...any) error {
	return yamlx.Errorf("pipeline.yaml", nil, path+": "+format, args...)
}

func (inputs) Resolved() bool { return true }

// sink stores artifacts in a directory.
type sink struct{ dir string }

func (s sink) Put(_ context.Context, name, path, _ string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.dir, name), b, 0o644)
}

func (s sink) PutBytes(_ context.Context, name string, data []byte, _ string) error {
	return os.WriteFile(filepath.Join(s.dir, name), data, 0o644)
}

func newEnv(t *testing.T, dir string) (*step.Env, *bytes.Buffer, string) {
	t.Helper()
	var log bytes.Buffer
	art := t.TempDir()
	return &step.Env{
		Stage: "build-test", Step: "unit", Dir: dir, TempDir: t.TempDir(), StateDir: t.TempDir(),
		Vars: os.Environ(), Stdout: &log, Log: slog.New(slog.NewTextHandler(&log, nil)),
		Artifacts: sink{art},
	}, &log, art
}
