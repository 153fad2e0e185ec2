// Package steptest builds step inputs and environments for step-kind
// tests: `with:` blocks decoded strictly from YAML text and an artifact
// sink writing to a directory.
package steptest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/yamlx"
)

// Inputs is a `with:` block given as YAML text ("" for none).
type Inputs struct {
	YAML string
}

var _ step.Inputs = Inputs{}

// Decode decodes the block strictly into v.
func (in Inputs) Decode(v any) error {
	if in.YAML == "" {
		return nil
	}
	return yamlx.Decode("pipeline.yaml", []byte(in.YAML), v)
}

// Errorf returns an error naming the field.
func (in Inputs) Errorf(path, format string, args ...any) error {
	return fmt.Errorf("pipeline.yaml: with.%s: %s", path, fmt.Sprintf(format, args...))
}

// Resolved is always true.
func (Inputs) Resolved() bool { return true }

// Sink stores artifacts as files in Dir.
type Sink struct {
	Dir string
}

var _ step.ArtifactSink = (*Sink)(nil)

// Put copies the file at path.
func (s *Sink) Put(_ context.Context, name, path, _ string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.Dir, name), data, 0o644)
}

// PutBytes writes data.
func (s *Sink) PutBytes(_ context.Context, name string, data []byte, _ string) error {
	return os.WriteFile(filepath.Join(s.Dir, name), data, 0o644)
}

// Env returns an environment for a step running in dir; the log goes to
// log and artifacts to a fresh temporary directory (the Sink's Dir).
func Env(dir, stateDir, tmp string, log *bytes.Buffer) (*step.Env, *Sink) {
	sink := &Sink{Dir: tmp}
	return &step.Env{RunID: "test", Stage: "commit", Step: "check", Dir: dir, TempDir: tmp, StateDir: stateDir,
		Vars: os.Environ(), Stdout: log, Artifacts: sink}, sink
}

// NewEnv returns an environment for a step of stage running in dir, with
// fresh temporary, state and artifact directories. It returns the log and
// the artifact directory.
func NewEnv(t testing.TB, dir, stage, stepName string) (*step.Env, *bytes.Buffer, string) {
	t.Helper()
	var log bytes.Buffer
	art := t.TempDir()
	return &step.Env{
		RunID: "test", Stage: stage, Step: stepName, Dir: dir, TempDir: t.TempDir(), StateDir: t.TempDir(),
		Vars: os.Environ(), Stdout: &log, Log: slog.New(slog.NewTextHandler(&log, nil)),
		Artifacts: &Sink{Dir: art},
	}, &log, art
}
