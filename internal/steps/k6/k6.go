// Package k6 is the k6 step kind: it runs a real k6 script with a pinned
// k6 (installed on first use with go install) and reads k6's summary
// export into the same outputs and gates as load-test.
package k6

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/gantry-ci/gantry/internal/load"
	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/loadtest"
	"github.com/gantry-ci/gantry/internal/toolcache"
)

// Tool is the pinned k6.
var Tool = toolcache.Tool{Name: "k6", Package: "go.k6.io/k6", Version: "v1.4.2"}

// ExitThresholds is k6's exit code for failed thresholds.
const ExitThresholds = 99

// Kind is `uses: k6`.
var Kind = step.Kind{
	Name:    "k6",
	Summary: "Run a k6 script with a pinned k6 and gate on its thresholds",
	Outputs: loadtest.Outputs,
	New:     New,
}

// Config is the `with:` block.
type Config struct {
	// Script is the k6 script, relative to the repository.
	Script string `yaml:"script"`
	// Args are extra arguments for `k6 run` (e.g. [--vus, "10"]).
	Args []string `yaml:"args"`
	// Env is passed to the script as __ENV (k6 -e KEY=VALUE).
	Env map[string]string `yaml:"env"`
}

type k6Step struct{ cfg Config }

var (
	_ step.Step       = (*k6Step)(nil)
	_ step.PathInputs = (*k6Step)(nil)
)

// New decodes the inputs.
func New(in step.Inputs) (step.Step, error) {
	var c Config
	if err := in.Decode(&c); err != nil {
		return nil, err
	}
	if c.Script == "" {
		return nil, in.Errorf("script", "k6 needs a script")
	}
	return &k6Step{cfg: c}, nil
}

// Find returns a k6 binary: one on PATH, else the pinned one from the tool
// cache (installed on first use).
func Find(ctx context.Context, stateDir string, progress io.Writer) (string, error) {
	if p, err := exec.LookPath("k6"); err == nil {
		return p, nil
	}
	return toolcache.New(toolcache.Dir(stateDir)).Ensure(ctx, Tool, progress)
}

// Run runs `k6 run` and turns its summary export into outputs; exit code 99
// (failed thresholds) fails the step with the failed thresholds named.
func (s *k6Step) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	bin, err := Find(ctx, env.StateDir, env.Stdout)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(env.TempDir, "k6-*")
	if err != nil {
		return nil, fmt.Errorf("k6: %w", err)
	}
	defer os.RemoveAll(tmp)
	export := filepath.Join(tmp, "summary.json")
	args := []string{"run", "--no-color", "--summary-export", export, "--summary-trend-stats", load.TrendStatsFlag()}
	for k, v := range s.cfg.Env {
		args = append(args, "-e", k+"="+v)
	}
	args = append(append(args, s.cfg.Args...), s.cfg.Script)
	cmd := proc.Command(ctx, bin, args...)
	cmd.Dir = env.Dir
	cmd.Env = append(append([]string{}, env.Vars...), "K6_NO_USAGE_REPORT=true")
	cmd.Stdout, cmd.Stderr = env.Stdout, env.Stdout
	runErr := cmd.Run()
	var ee *exec.ExitError
	if runErr != nil && !(errors.As(runErr, &ee) && ee.ExitCode() == ExitThresholds) {
		return nil, fmt.Errorf("k6 run %s: %w", s.cfg.Script, runErr)
	}
	data, err := os.ReadFile(export)
	if err != nil {
		return nil, fmt.Errorf("k6 wrote no summary export: %w", err)
	}
	sum, err := load.ParseSummary(data)
	if err != nil {
		return nil, err
	}
	if err := env.Artifacts.PutBytes(ctx, "summary.json", data, "application/json"); err != nil {
		return nil, fmt.Errorf("store summary.json: %w", err)
	}
	out := sum.Outputs()
	res := &step.Result{Outputs: out, Summary: fmt.Sprintf("k6: %.0f reqs at %.1f/s, p99 %.1fms, %.3f%% failed",
		out["http_reqs"], out["rps"], out["p99_ms"], 100*out["error_rate"].(float64))}
	if failed := sum.FailedThresholds(); len(failed) > 0 || runErr != nil {
		return res, &load.ThresholdsError{Failed: failed}
	}
	return res, nil
}

// Paths names the script.
func (s *k6Step) Paths() []step.PathRef {
	return []step.PathRef{{Field: "script", Value: s.cfg.Script, Type: step.PathFile}}
}
