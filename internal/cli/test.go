package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/service"
	"github.com/gantry-ci/gantry/internal/steps/builtin"
	"github.com/gantry-ci/gantry/internal/steps/gotest"
)

func newTestCmd(g *options.Global) *cobra.Command {
	o := &options.Test{}
	cmd := &cobra.Command{
		Use:   "test [DIR]",
		Short: "Run go test with the race detector and coverage (the go-test step on its own)",
		Long: "Runs go test -json in the module at DIR (default .), shows failing tests with their own output and data races\n" +
			"with their reports, computes coverage as go tool cover -func does, and writes junit.xml, coverage.out\n" +
			"and coverage.html. --services starts postgres, redis or sqs for the tests and passes DATABASE_URL,\n" +
			"REDIS_URL, SQS_ENDPOINT and SQS_QUEUE_URL. Exit 1 when a test fails or coverage is below --min-coverage.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			stateDir, err := g.ResolveStateDir()
			if err != nil {
				return usageErr(err)
			}
			out := o.Out
			if out == "" {
				if out, err = os.MkdirTemp("", "gantry-test-"); err != nil {
					return err
				}
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return usageErr(err)
			}
			cfg := gotest.Config{Packages: o.Packages, Race: o.Race, Tags: o.Tags, CoverPkg: o.CoverPkg, Timeout: o.Timeout, MinCoverage: o.MinCoverage}
			if o.NoCoverage {
				f := false
				cfg.Coverage = &f
			}
			for _, n := range o.Services {
				if _, ok := builtin.Services()[n]; !ok {
					return usageErr(fmt.Errorf("--services: unknown service %q (have postgres, redis, sqs)", n))
				}
			}
			s, err := gotest.New(structInputs{cfg})
			if err != nil {
				return usageErr(err)
			}
			ctx := cmd.Context()
			env, cleanup, err := localEnv(ctx, dir, stateDir, out, cmd.OutOrStdout(), g.Verbose)
			if err != nil {
				return err
			}
			defer cleanup()
			stop, err := startServices(ctx, o.Services, env.TempDir, &env.Vars, cmd)
			defer stop()
			if err != nil {
				return failed(err)
			}
			res, err := s.Run(ctx, env)
			if res != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\nreports in %s\n", res.Summary, out)
			}
			if err != nil {
				return failed(err)
			}
			return nil
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// startServices starts the named services and adds their env to vars. The
// returned stop always runs, with a context that survives Ctrl-C.
func startServices(ctx context.Context, names []string, dir string, vars *[]string, cmd *cobra.Command) (func(), error) {
	providers := builtin.Services()
	var started []service.Instance
	stop := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for i := len(started) - 1; i >= 0; i-- {
			if err := started[i].Stop(sctx); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "stop service:", err)
			}
		}
	}
	for _, n := range names {
		p, ok := providers[n]
		if !ok {
			return stop, fmt.Errorf("unknown service %q", n)
		}
		inst, err := p.Start(ctx, filepath.Join(dir, "services", n))
		if err != nil {
			return stop, err
		}
		started = append(started, inst)
		for k, v := range inst.Env() {
			*vars = append(*vars, k+"="+v)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "service %s started\n", n)
	}
	return stop, nil
}
