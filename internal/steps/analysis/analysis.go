// Package analysisstep is the analysis step kind: it runs an Argo Rollouts
// AnalysisTemplate against any target and fails unless the run is
// Successful.
package analysisstep

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/load"
	"github.com/gantry-ci/gantry/internal/step"
)

// Kind is `uses: analysis`.
var Kind = step.Kind{
	Name:    "analysis",
	Summary: "Run an Argo Rollouts AnalysisTemplate (prometheus, web, job, gantry providers)",
	Outputs: []string{"phase", "successful", "failed", "inconclusive", "errors", "measurements"},
	New:     New,
}

// Config is the `with:` block.
type Config struct {
	// Template is the AnalysisTemplate file, relative to the repository;
	// Name picks one template when the file holds several.
	Template string            `yaml:"template"`
	Name     string            `yaml:"name"`
	Args     map[string]string `yaml:"args"`
	// Timeout stops the run (reported as Stopped if measurements remain).
	Timeout time.Duration `yaml:"timeout"`
	// Load runs gantry's load generator for the run's duration so that
	// metrics with the gantry provider can measure it.
	Load *LoadConfig `yaml:"load"`
}

// LoadConfig is the background load of an analysis.
type LoadConfig struct {
	URL      string        `yaml:"url"`
	Rate     float64       `yaml:"rate"`
	Duration time.Duration `yaml:"duration"`
}

type analysisStep struct{ cfg Config }

var (
	_ step.Step       = (*analysisStep)(nil)
	_ step.PathInputs = (*analysisStep)(nil)
)

// New decodes and checks the inputs.
func New(in step.Inputs) (step.Step, error) {
	var c Config
	if err := in.Decode(&c); err != nil {
		return nil, err
	}
	if c.Template == "" {
		return nil, in.Errorf("template", "analysis needs a template file")
	}
	if c.Load != nil && (c.Load.URL == "" || c.Load.Rate <= 0) {
		return nil, in.Errorf("load", "load needs url and a positive rate")
	}
	return &analysisStep{cfg: c}, nil
}

// Run executes the template; it stores analysis-run.json and fails unless
// the run is Successful.
func (s *analysisStep) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	path := s.cfg.Template
	if !filepath.IsAbs(path) {
		path = filepath.Join(env.Dir, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read analysis template: %w", err)
	}
	tmpl, err := analysis.ParseTemplate(s.cfg.Template, data, s.cfg.Name)
	if err != nil {
		return nil, err
	}
	opts := analysis.Options{
		Args: s.cfg.Args, Secret: analysis.SecretsFromEnv(env.Vars), JobEnv: env.Vars, Dir: env.Dir, Log: env.Log,
		OnMeasurement: func(metric string, m analysis.Measurement) {
			fmt.Fprintf(env.Stdout, "%s  %-24s %-12s %s %s\n", m.FinishedAt.Format("15:04:05"), metric, m.Phase, m.Value, m.Message)
		},
	}
	if s.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
	}
	run, err := RunWithLoad(ctx, tmpl, opts, s.cfg.Load)
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := env.Artifacts.PutBytes(ctx, "analysis-run.json", out, "application/json"); err != nil {
		return nil, fmt.Errorf("store analysis-run.json: %w", err)
	}
	res := &step.Result{Outputs: Outputs(run), Summary: fmt.Sprintf("analysis %s: %s", run.Template, run.Phase)}
	if run.Phase != analysis.PhaseSuccessful {
		return res, fmt.Errorf("analysis %s: %s: %s", run.Template, run.Phase, run.Message)
	}
	return res, nil
}

// RunWithLoad executes the template, with a background load test when lc
// is set (its metrics feed the gantry provider).
func RunWithLoad(ctx context.Context, tmpl *analysis.Template, opts analysis.Options, lc *LoadConfig) (*analysis.Run, error) {
	if lc == nil {
		return analysis.Execute(ctx, tmpl, opts)
	}
	dur := lc.Duration
	if dur == 0 {
		dur = 24 * time.Hour // until the analysis ends
	}
	lt, err := load.New(load.Config{Requests: []load.Request{{URL: lc.URL}}, Rate: lc.Rate, Duration: dur}, load.WithLogger(opts.Log))
	if err != nil {
		return nil, fmt.Errorf("analysis load: %w", err)
	}
	opts.Gantry = lt
	lctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := lt.Run(lctx); err != nil && opts.Log != nil {
			opts.Log.Warn("analysis load", "error", err)
		}
	}()
	run, err := analysis.Execute(ctx, tmpl, opts)
	stop()
	<-done
	return run, err
}

// Outputs are the step outputs of a run: its phase, the measurement
// counts and every measurement (metric, time, value, phase).
func Outputs(run *analysis.Run) map[string]any {
	var ok, failed, inc, errs int
	var list []any
	for _, m := range run.Metrics {
		ok += m.Successful
		failed += m.Failed
		inc += m.Inconclusive
		errs += m.Error
		for _, ms := range m.Measurements {
			list = append(list, map[string]any{
				"metric": m.Name, "time": ms.FinishedAt.UTC().Format(time.RFC3339Nano), "value": ms.Value, "phase": string(ms.Phase),
			})
		}
	}
	return map[string]any{
		"phase": string(run.Phase), "successful": ok, "failed": failed, "inconclusive": inc, "errors": errs, "measurements": list,
	}
}

// Paths names the AnalysisTemplate file.
func (s *analysisStep) Paths() []step.PathRef {
	return []step.PathRef{{Field: "template", Value: s.cfg.Template, Type: step.PathFile}}
}
