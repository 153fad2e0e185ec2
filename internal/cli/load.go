package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/load"
	"github.com/gantry-ci/gantry/internal/steps/loadtest"
)

// ExitThresholds is the exit code for failed thresholds, as k6 uses.
const ExitThresholds = 99

func newLoadCmd(g *options.Global) *cobra.Command {
	o := &options.Load{}
	sf := &oneOffFlags{}
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
			return runLoad(cmd, g, o, sf, args)
		},
	}
	o.AddFlags(cmd.Flags())
	sf.addFlags(cmd.Flags())
	// The step prints its progress to its log every tenth of the test;
	// there is no live line left to hide.
	_ = cmd.Flags().MarkDeprecated("quiet", "the load-test step has no live progress line; its log shows progress every tenth of the test")
	return cmd
}

// loadInputs maps the spec file and flags to the load-test step's with:
// block and the workspace it runs in.
func loadInputs(o *options.Load, args []string) (string, map[string]any, error) {
	with := map[string]any{}
	ws := "."
	if len(args) == 1 {
		dir, rel := commonDir(args)
		ws = dir
		with["spec"] = rel(args[0])
	}
	if o.URL != "" {
		if len(args) == 1 {
			return "", nil, errors.New("give a spec file or --url, not both")
		}
		with["url"] = o.URL
	}
	if len(args) == 0 && o.URL == "" {
		return "", nil, errors.New("give a spec file or --url")
	}
	if o.Rate > 0 {
		with["rate"] = o.Rate
	}
	if o.Duration > 0 {
		with["duration"] = o.Duration.String()
	}
	if o.StartRate > 0 {
		with["start_rate"] = o.StartRate
	}
	var stages []any
	for _, st := range o.Stages {
		d, target, err := options.ParseStage(st)
		if err != nil {
			return "", nil, err
		}
		stages = append(stages, map[string]any{"duration": d.String(), "target": target})
	}
	if stages != nil {
		with["stages"] = stages
	}
	if o.VUs > 0 {
		with["vus"] = o.VUs
	}
	if o.MaxVUs > 0 {
		with["max_vus"] = o.MaxVUs
	}
	if o.Timeout > 0 {
		with["timeout"] = o.Timeout.String()
	}
	thresholds := map[string]any{}
	for _, t := range o.Thresholds {
		th, err := load.ParseThreshold(t)
		if err != nil {
			return "", nil, err
		}
		list, _ := thresholds[th.Metric].([]string)
		thresholds[th.Metric] = append(list, th.Source)
	}
	if len(thresholds) > 0 {
		with["thresholds"] = thresholds
	}
	if len(o.Watch) > 0 {
		with["watch"] = o.Watch
		if o.MetricsURL != "" {
			with["metrics_url"] = o.MetricsURL
		}
		if o.WatchInterval > 0 {
			with["watch_interval"] = o.WatchInterval.String()
		}
	}
	return ws, with, nil
}

func runLoad(cmd *cobra.Command, g *options.Global, o *options.Load, sf *oneOffFlags, args []string) error {
	ws, with, err := loadInputs(o, args)
	if err != nil {
		return usageErr(err)
	}
	job := &oneOff{command: "load", stage: "load", dir: ws, secrets: sf.secrets,
		steps: []oneOffStep{{name: "load", uses: loadtest.Kind.Name, with: with}}}
	r, err := job.run(cmd, g)
	if err != nil {
		return err
	}
	defer r.close()
	outs := r.step("load").Outputs
	if outs == nil {
		// It failed before any load was sent: a bad spec or settings.
		return r.failure(ExitUsage)
	}
	if o.SummaryExport != "" {
		if err := r.saveArtifact("summary.json", o.SummaryExport); err != nil {
			return err
		}
	}
	if o.OutDir != "" {
		if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", o.OutDir, err)
		}
		for _, name := range []string{"results.json", "report.html"} {
			if err := r.saveArtifact(name, filepath.Join(o.OutDir, name)); err != nil {
				return err
			}
		}
	}
	if passed, ok := outs["thresholds_passed"].(bool); ok && !passed {
		return r.failure(ExitThresholds)
	}
	return r.failure(ExitFailed)
}
