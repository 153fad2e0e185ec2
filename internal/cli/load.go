package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/load"
)

// ExitThresholds is the exit code for failed thresholds, as k6 uses.
const ExitThresholds = 99

func newLoadCmd() *cobra.Command {
	o := &options.Load{}
	cmd := &cobra.Command{
		Use:   "load [SPEC]",
		Short: "Send load at a constant or ramping arrival rate and check k6-style thresholds",
		Long: `Send HTTP load with an open model (constant or ramping arrival rate; latency
counted from each request's intended start, drops counted like k6's
dropped_iterations) or a closed model (--vus). Requests come from a spec file
or --url. Failed thresholds exit 99, as k6 does; a failed --watch verdict
exits 1.`,
		Example: `  gantry load --url http://localhost:8080/health --rate 50 --duration 2m \
    --threshold 'http_req_duration:p(99)<500' --threshold 'http_req_failed:rate<0.001' \
    --summary-export summary.json
  gantry load smoke.yaml --out load-report
  gantry load --url http://localhost:8080/pay --rate 200 --duration 30m --watch memory,goroutines,db_pool`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLoad(cmd, o, args)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func loadConfig(o *options.Load, args []string) (load.Config, error) {
	var cfg load.Config
	if len(args) == 1 {
		data, err := os.ReadFile(args[0])
		if err != nil {
			return cfg, err
		}
		spec, err := load.ParseSpec(args[0], data)
		if err != nil {
			return cfg, err
		}
		if cfg, err = load.FromSpec(spec); err != nil {
			return cfg, err
		}
	}
	if o.URL != "" {
		cfg.Requests = []load.Request{{URL: o.URL}}
	}
	if len(cfg.Requests) == 0 {
		return cfg, errors.New("give a spec file or --url")
	}
	if o.Rate > 0 {
		cfg.Rate = o.Rate
	}
	if o.Duration > 0 {
		cfg.Duration = o.Duration
	}
	if o.StartRate > 0 {
		cfg.StartRate = o.StartRate
	}
	for _, s := range o.Stages {
		d, target, err := options.ParseStage(s)
		if err != nil {
			return cfg, err
		}
		cfg.Stages = append(cfg.Stages, load.Stage{Duration: d, Target: target})
	}
	if o.VUs > 0 {
		cfg.VUs = o.VUs
	}
	if o.MaxVUs > 0 {
		cfg.MaxVUs = o.MaxVUs
	}
	if o.Timeout > 0 {
		cfg.Timeout = o.Timeout
	}
	for _, t := range o.Thresholds {
		th, err := load.ParseThreshold(t)
		if err != nil {
			return cfg, err
		}
		cfg.Thresholds = append(cfg.Thresholds, th)
	}
	if len(o.Watch) > 0 {
		mu := o.MetricsURL
		if mu == "" {
			u, err := urlOrigin(cfg.Requests[0].URL)
			if err != nil {
				return cfg, err
			}
			mu = u + "/metrics"
		}
		interval := o.WatchInterval
		if interval == 0 {
			interval = min(15e9, max(1e9, cfg.TotalDuration()/100))
		}
		cfg.Watch = &load.WatchConfig{URL: mu, Watch: o.Watch, Interval: interval}
		if err := cfg.Watch.Validate(); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

func runLoad(cmd *cobra.Command, o *options.Load, args []string) error {
	cfg, err := loadConfig(o, args)
	if err != nil {
		return usageErr(err)
	}
	stderr := cmd.ErrOrStderr()
	tty := false
	if f, ok := stderr.(*os.File); ok && !o.Quiet {
		tty = term.IsTerminal(int(f.Fd()))
	}
	total := cfg.TotalDuration()
	opts := []load.Option{}
	if tty {
		opts = append(opts, load.WithProgress(func(s *load.Snapshot) {
			fmt.Fprintf(stderr, "\r\033[K%s", load.ProgressLine(s, total))
		}))
	}
	lt, err := load.New(cfg, opts...)
	if err != nil {
		return usageErr(err)
	}
	res, err := lt.Run(cmd.Context())
	if tty {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if err != nil {
		return failed(err)
	}
	out := cmd.OutOrStdout()
	sum := res.Summary()
	if err := sum.WriteText(out); err != nil {
		return err
	}
	if res.Watch != nil {
		for _, v := range res.Watch.Verdicts {
			fmt.Fprintf(out, "   watch %s: %s\n", v.Watch, v.Reason)
		}
	}
	if o.SummaryExport != "" {
		data, err := jsonBytes(sum)
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.SummaryExport, data, 0o644); err != nil {
			return fmt.Errorf("write summary export: %w", err)
		}
	}
	if o.OutDir != "" {
		if err := writeLoadReports(o.OutDir, res); err != nil {
			return err
		}
	}
	err = res.Err()
	var te *load.ThresholdsError
	if errors.As(err, &te) {
		return &ExitError{Code: ExitThresholds, Err: err}
	}
	if err != nil {
		return failed(err)
	}
	return nil
}

func writeLoadReports(dir string, res *load.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	data, err := res.JSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), data, 0o644); err != nil {
		return fmt.Errorf("write results.json: %w", err)
	}
	var html bytes.Buffer
	if err := res.WriteHTML(&html); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.html"), html.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write report.html: %w", err)
	}
	return nil
}
