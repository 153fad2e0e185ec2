package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/cli/options"
	analysisstep "github.com/gantry-ci/gantry/internal/steps/analysis"
)

func newAnalysisCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "analysis",
		Short: "Run Argo Rollouts AnalysisTemplates",
	}
	cmd.AddCommand(newAnalysisRunCmd())
	return cmd
}

func newAnalysisRunCmd() *cobra.Command {
	o := &options.Analysis{}
	out := &options.Output{}
	cmd := &cobra.Command{
		Use:   "run TEMPLATE",
		Short: "Run an AnalysisTemplate against any target; exit 0 only when the run is Successful",
		Long: `Run an Argo Rollouts AnalysisTemplate file unchanged: every metric takes its
measurements at its interval from its provider (prometheus, web, job, or
gantry with --load-url), and the run's phase is the worst of its metrics.
Secrets named by valueFrom.secretKeyRef are read from SECRET_<NAME>_<KEY>.`,
		Example: `  gantry analysis run deploy/analysis-template.yaml --arg service-name=payment
  gantry analysis run smoke.yaml --load-url http://localhost:8080/health --load-rate 50 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.Validate(); err != nil {
				return usageErr(err)
			}
			return runAnalysis(cmd, o, out.Format, args[0])
		},
	}
	o.AddFlags(cmd.Flags())
	out.AddFlags(cmd.Flags())
	return cmd
}

func runAnalysis(cmd *cobra.Command, o *options.Analysis, format, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return usageErr(err)
	}
	tmpl, err := analysis.ParseTemplate(file, data, o.Name)
	if err != nil {
		return usageErr(err)
	}
	args, err := o.ArgMap()
	if err != nil {
		return usageErr(err)
	}
	opts := analysis.Options{Args: args, Secret: analysis.SecretsFromEnv(os.Environ())}
	if format == "table" {
		w := cmd.ErrOrStderr()
		opts.OnMeasurement = func(metric string, m analysis.Measurement) {
			fmt.Fprintf(w, "%s  %s: %s %s\n", m.FinishedAt.Format("15:04:05"), metric, m.Phase, m.Value)
		}
	}
	var lc *analysisstep.LoadConfig
	if o.LoadURL != "" {
		if u, err := url.Parse(o.LoadURL); err != nil || u.Host == "" {
			return usageErr(fmt.Errorf("--load-url %q: want an absolute URL", o.LoadURL))
		}
		lc = &analysisstep.LoadConfig{URL: o.LoadURL, Rate: o.LoadRate}
	} else if err := analysis.Check(tmpl, opts); err != nil {
		return usageErr(err)
	}
	ctx := cmd.Context()
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	run, err := analysisstep.RunWithLoad(ctx, tmpl, opts, lc)
	if err != nil {
		return usageErr(err)
	}
	if err := printAs(cmd.OutOrStdout(), format, run, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "METRIC\tTIME\tVALUE\tPHASE\tMESSAGE")
		for _, m := range run.Metrics {
			name := m.Name
			if m.DryRun {
				name += " (dry run)"
			}
			for _, ms := range m.Measurements {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, ms.FinishedAt.Format("15:04:05.000"), ms.Value, ms.Phase, ms.Message)
			}
			fmt.Fprintf(tw, "%s\t\t\t%s\t%s\n", name, m.Phase, m.Message)
		}
		fmt.Fprintf(tw, "RUN %s\t\t\t%s\t%s\n", run.Template, run.Phase, run.Message)
	}); err != nil {
		return err
	}
	if run.Phase != analysis.PhaseSuccessful {
		return failed(fmt.Errorf("analysis %s: %s", run.Template, run.Phase))
	}
	return nil
}
