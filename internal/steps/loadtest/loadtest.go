// Package loadtest is the load-test step kind: gantry's open-model load
// generator with k6 thresholds and an optional soak watch of the target's
// Prometheus metrics.
package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/load"
	"github.com/gantry-ci/gantry/internal/step"
)

// Kind is `uses: load-test`.
var Kind = step.Kind{
	Name:    "load-test",
	Summary: "Send load at a constant or ramping arrival rate, check k6-style thresholds, watch for leaks",
	Outputs: append(slices.Clone(Outputs), alertOutputs...),
	New:     New,
}

// Outputs are set by load-test and k6 steps alike.
var Outputs = []string{"http_reqs", "rps", "p50_ms", "p95_ms", "p99_ms", "max_ms", "error_rate", "checks_rate", "dropped", "thresholds_passed", "watch_passed"}

// Config is the `with:` block.
type Config struct {
	// URL is requested with GET; Spec names a spec file (relative to the
	// repository) with requests, rates and thresholds. One of them.
	URL       string        `yaml:"url"`
	Spec      string        `yaml:"spec"`
	Rate      float64       `yaml:"rate"`
	Duration  time.Duration `yaml:"duration"`
	StartRate float64       `yaml:"start_rate"`
	Stages    []load.Stage  `yaml:"stages"`
	// VUs selects the closed model: this many loops back to back.
	VUs        int             `yaml:"vus"`
	MaxVUs     int             `yaml:"max_vus"`
	Timeout    time.Duration   `yaml:"timeout"`
	Thresholds load.Thresholds `yaml:"thresholds"`
	// Watch lists memory, goroutines, connections, db_pool.
	Watch         []string      `yaml:"watch"`
	MetricsURL    string        `yaml:"metrics_url"`
	WatchInterval time.Duration `yaml:"watch_interval"`
	// Alerts adds "no alert firing" to the gate (see AlertsConfig).
	Alerts *AlertsConfig `yaml:"alerts"`
}

type loadStep struct {
	cfg        Config
	thresholds []load.Threshold
}

// New decodes and checks the inputs; it does no I/O.
func New(in step.Inputs) (step.Step, error) {
	var c Config
	if err := in.Decode(&c); err != nil {
		return nil, err
	}
	if (c.URL == "") == (c.Spec == "") {
		return nil, in.Errorf("url", "load-test needs exactly one of url and spec")
	}
	if c.Spec == "" && c.Rate == 0 && len(c.Stages) == 0 && c.VUs == 0 {
		return nil, in.Errorf("rate", "give rate (requests per second), stages or vus")
	}
	if c.Spec == "" && c.Duration == 0 && len(c.Stages) == 0 && !unresolved(in, "duration") {
		return nil, in.Errorf("duration", "give a duration, e.g. 2m")
	}
	if c.Rate < 0 {
		return nil, in.Errorf("rate", "rate must be positive")
	}
	th, err := c.Thresholds.Compile()
	if err != nil {
		return nil, in.Errorf("thresholds", "%v", err)
	}
	wc := load.WatchConfig{Watch: c.Watch, URL: "-"}
	if err := wc.Validate(); err != nil {
		return nil, in.Errorf("watch", "%v", err)
	}
	if err := c.Alerts.check(in); err != nil {
		return nil, err
	}
	if in.Resolved() && c.URL != "" {
		if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, in.Errorf("url", "url %q: want an absolute http(s) URL", c.URL)
		}
	}
	return &loadStep{cfg: c, thresholds: th}, nil
}

// unresolved reports whether the with: field holds an expression not yet
// evaluated (validating the file, before the run), which the decoder
// leaves at its zero value.
func unresolved(in step.Inputs, field string) bool {
	if in.Resolved() {
		return false
	}
	var fields map[string]yaml.Node
	if err := in.Decode(&fields); err != nil {
		return false
	}
	n, ok := fields[field]
	return ok && n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${")
}

// config builds the generator's config, reading the spec file if any.
func (s *loadStep) config(env *step.Env) (load.Config, error) {
	c := s.cfg
	var cfg load.Config
	if c.Spec != "" {
		path := c.Spec
		if !filepath.IsAbs(path) {
			path = filepath.Join(env.Dir, path)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read load spec: %w", err)
		}
		spec, err := load.ParseSpec(c.Spec, data)
		if err != nil {
			return cfg, err
		}
		if cfg, err = load.FromSpec(spec); err != nil {
			return cfg, err
		}
	} else {
		cfg.Requests = []load.Request{{URL: c.URL}}
	}
	// with: overrides the spec file.
	if c.Rate > 0 {
		cfg.Rate = c.Rate
	}
	if c.Duration > 0 {
		cfg.Duration = c.Duration
	}
	if c.StartRate > 0 {
		cfg.StartRate = c.StartRate
	}
	if len(c.Stages) > 0 {
		cfg.Stages = c.Stages
	}
	if c.VUs > 0 {
		cfg.VUs = c.VUs
	}
	if c.MaxVUs > 0 {
		cfg.MaxVUs = c.MaxVUs
	}
	if c.Timeout > 0 {
		cfg.Timeout = c.Timeout
	}
	cfg.Thresholds = append(cfg.Thresholds, s.thresholds...)
	if len(c.Watch) > 0 {
		mu := metricsURL(c, cfg)
		if mu == "" {
			return cfg, errors.New("watch needs metrics_url")
		}
		interval := c.WatchInterval
		if interval == 0 {
			// About 100 samples over the test, between 1 s and 15 s apart.
			interval = min(15*time.Second, max(time.Second, cfg.TotalDuration()/100))
		}
		cfg.Watch = &load.WatchConfig{URL: mu, Watch: c.Watch, Interval: interval}
		if err := cfg.Watch.Validate(); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// metricsURL is metrics_url, else the first request's origin + /metrics,
// else "".
func metricsURL(c Config, cfg load.Config) string {
	if c.MetricsURL != "" {
		return c.MetricsURL
	}
	if len(cfg.Requests) == 0 {
		return ""
	}
	u, err := url.Parse(cfg.Requests[0].URL)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host + "/metrics"
}

// Run sends the load, stores summary.json (k6 --summary-export shape),
// results.json and report.html, and fails when a threshold or the soak
// watch fails.
func (s *loadStep) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	cfg, err := s.config(env)
	if err != nil {
		return nil, err
	}
	total := cfg.TotalDuration()
	every := max(time.Second, min(30*time.Second, total/10))
	var last time.Duration
	lt, err := load.New(cfg, load.WithLogger(env.Log), load.WithProgress(func(snap *load.Snapshot) {
		if snap.Elapsed-last >= every {
			last = snap.Elapsed
			fmt.Fprintln(env.Stdout, load.ProgressLine(snap, total))
		}
	}))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(env.Stdout, "load-test: %s, %s\n", cfg.Model(), describe(cfg))
	var alerts *alertWatch
	if a := s.cfg.Alerts; a != nil {
		ac := *a
		if len(ac.Rules) > 0 {
			ps, err := startRules(ctx, env, ac, metricsURL(s.cfg, cfg))
			if err != nil {
				return nil, err
			}
			defer func() { _ = ps.Stop(context.WithoutCancel(ctx)) }()
			ac.URL = ps.URL()
			if ac.Settle == 0 {
				ac.Settle = intervalOr(ac.Interval)
			}
		}
		alerts = newAlertWatch(ac, env.Log)
		alerts.start(ctx)
		defer alerts.halt()
	}
	res, err := lt.Run(ctx)
	if err != nil {
		return nil, err
	}
	r, err := Finish(ctx, env, res)
	if alerts == nil || r == nil {
		return r, err
	}
	firing, pending, aerr := alerts.finish(ctx, env.Stdout)
	r.Outputs["alerts_firing"], r.Outputs["alerts_pending"] = firing, pending
	return r, errors.Join(err, aerr)
}

func describe(c load.Config) string {
	switch c.Model() {
	case "constant-vus":
		return fmt.Sprintf("%d VUs for %s", c.VUs, c.Duration)
	case "ramping-arrival-rate":
		return fmt.Sprintf("%d stages over %s", len(c.Stages), c.TotalDuration())
	}
	return fmt.Sprintf("%g requests/s for %s", c.Rate, c.Duration)
}

// Finish writes the summary and artifacts of a finished test and turns its
// outcome into the step result.
func Finish(ctx context.Context, env *step.Env, res *load.Result) (*step.Result, error) {
	sum := res.Summary()
	var text bytes.Buffer
	if err := sum.WriteText(&text); err != nil {
		return nil, err
	}
	fmt.Fprint(env.Stdout, text.String())
	if res.Watch != nil {
		for _, v := range res.Watch.Verdicts {
			fmt.Fprintf(env.Stdout, "watch %s: %s\n", v.Watch, v.Reason)
		}
	}
	if err := putJSON(ctx, env, "summary.json", sum); err != nil {
		return nil, err
	}
	results, err := res.JSON()
	if err != nil {
		return nil, err
	}
	if err := env.Artifacts.PutBytes(ctx, "results.json", results, "application/json"); err != nil {
		return nil, fmt.Errorf("store results.json: %w", err)
	}
	var html bytes.Buffer
	if err := res.WriteHTML(&html); err != nil {
		return nil, fmt.Errorf("render report.html: %w", err)
	}
	if err := env.Artifacts.PutBytes(ctx, "report.html", html.Bytes(), "text/html"); err != nil {
		return nil, fmt.Errorf("store report.html: %w", err)
	}
	out := sum.Outputs()
	if res.Watch != nil {
		out["watch_passed"] = res.Watch.Err() == nil
	}
	r := &step.Result{Outputs: out, Summary: fmt.Sprintf("%.0f reqs at %.1f/s, p99 %.1fms, %.3f%% failed, %.0f dropped",
		out["http_reqs"], out["rps"], out["p99_ms"], 100*out["error_rate"].(float64), out["dropped"])}
	if err := res.Err(); err != nil {
		if res.AbortedBy != "" {
			err = fmt.Errorf("%w (test aborted early by %s)", err, res.AbortedBy)
		}
		return r, err
	}
	return r, nil
}

func putJSON(ctx context.Context, env *step.Env, name string, v any) error {
	data, err := jsonIndent(v)
	if err != nil {
		return err
	}
	if err := env.Artifacts.PutBytes(ctx, name, data, "application/json"); err != nil {
		return fmt.Errorf("store %s: %w", name, err)
	}
	return nil
}

var (
	_ step.Step       = (*loadStep)(nil)
	_ step.PathInputs = (*loadStep)(nil)
)

// Paths names the spec file and the alert rule files.
func (s *loadStep) Paths() []step.PathRef {
	refs := []step.PathRef{{Field: "spec", Value: s.cfg.Spec, Type: step.PathFile}}
	if s.cfg.Alerts != nil {
		for i, r := range s.cfg.Alerts.Rules {
			refs = append(refs, step.PathRef{Field: fmt.Sprintf("alerts.rules.%d", i), Value: r, Type: step.PathFile})
		}
	}
	return refs
}
