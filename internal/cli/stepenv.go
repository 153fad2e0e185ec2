package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/step"
)

// structInputs hands a step kind a `with:` block built from flags.
type structInputs struct{ v any }

func (s structInputs) Decode(v any) error {
	b, err := json.Marshal(s.v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (structInputs) Errorf(path, format string, args ...any) error {
	return fmt.Errorf("--%s: %s", strings.ReplaceAll(path, "_", "-"), fmt.Sprintf(format, args...))
}

func (structInputs) Resolved() bool { return true }

// dirSink stores artifacts in a directory.
type dirSink struct{ dir string }

func (d dirSink) Put(_ context.Context, name, path, _ string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(d.dir, name), b, 0o644)
}

func (d dirSink) PutBytes(_ context.Context, name string, data []byte, _ string) error {
	return os.WriteFile(filepath.Join(d.dir, name), data, 0o644)
}

// localEnv is a step.Env for running one step kind from the command line
// on the repository at dir.
func localEnv(ctx context.Context, dir, stateDir, artifacts string, out io.Writer, verbose bool) (*step.Env, func(), error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	tmp, err := os.MkdirTemp("", "gantry-")
	if err != nil {
		return nil, nil, err
	}
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	env := &step.Env{
		RunID: "local", Stage: "local", Step: "local", Dir: abs, TempDir: tmp, StateDir: stateDir,
		Vars: os.Environ(), Stdout: out, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		Artifacts: dirSink{artifacts},
	}
	if b, err := proc.Command(ctx, "git", "-C", abs, "log", "-1", "--format=%H %ct").Output(); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			env.Git.SHA = f[0]
			env.Git.Time, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return env, func() { _ = os.RemoveAll(tmp) }, nil
}
