package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/steps/gotest"
)

func newTestCmd(g *options.Global) *cobra.Command {
	o := &options.Test{}
	sf := &oneOffFlags{}
	cmd := &cobra.Command{
		Use:   "test [DIR]",
		Short: "Run go test with the race detector and coverage (the go-test step on its own)",
		Long: "Runs go test -json in the module at DIR (default .), shows failing tests with their own output and data races\n" +
			"with their reports, computes coverage as go tool cover -func does, and writes junit.xml, coverage.out\n" +
			"and coverage.html. --services starts postgres, redis or sqs for the tests and passes DATABASE_URL,\n" +
			"REDIS_URL, SQS_ENDPOINT and SQS_QUEUE_URL. It runs as a one-step pipeline through the engine: recorded\n" +
			"in gantry runs, --secret values masked, and an unchanged module is a cache hit.\n" +
			"Exit 1 when a test fails or coverage is below --min-coverage.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return runTest(cmd, g, o, sf, dir)
		},
	}
	o.AddFlags(cmd.Flags())
	sf.addFlags(cmd.Flags())
	return cmd
}

func runTest(cmd *cobra.Command, g *options.Global, o *options.Test, sf *oneOffFlags, dir string) error {
	with := map[string]any{"race": o.Race}
	if len(o.Packages) > 0 {
		with["packages"] = o.Packages
	}
	if len(o.Tags) > 0 {
		with["tags"] = o.Tags
	}
	if o.CoverPkg != "" {
		with["coverpkg"] = o.CoverPkg
	}
	if o.Timeout != "" {
		with["timeout"] = o.Timeout
	}
	if o.MinCoverage != 0 {
		with["min_coverage"] = o.MinCoverage
	}
	if o.NoCoverage {
		with["coverage"] = false
	}
	job := &oneOff{command: "test", stage: "test", dir: dir, secrets: sf.secrets,
		steps: []oneOffStep{{name: "test", uses: gotest.Kind.Name, with: with, services: o.Services}}}
	r, err := job.run(cmd, g)
	if err != nil {
		return err
	}
	defer r.close()
	out := o.Out
	if out == "" {
		if out, err = os.MkdirTemp("", "gantry-test-"); err != nil {
			return err
		}
	}
	if err := r.saveArtifacts(out); err != nil {
		return err
	}
	if s := r.step("test"); s.Summary != "" {
		fmt.Fprintf(cmd.OutOrStdout(), "%s\nreports in %s\n", s.Summary, out)
	}
	return r.failure(ExitFailed)
}
