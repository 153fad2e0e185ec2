package cli

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/monitor"
	"github.com/gantry-ci/gantry/internal/serve"
)

func newMonitorCmd(g *options.Global) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "monitor",
		Short: "Synthetic monitors from other machines: gantry monitor agent",
	}
	cmd.AddCommand(newMonitorAgentCmd(g))
	return cmd
}

func newMonitorAgentCmd(g *options.Global) *cobra.Command {
	o := &options.MonitorAgent{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the pipeline's synthetic monitors from this machine's location and report them to a gantry server",
		Long: `Run as the probe agent of a location (--location eu-west) for the gantry
server at --server, authenticated with the API token of GANTRY_TOKEN or
--token-file: one bound to this location (gantry token create --user
NAME --location LOCATION) of a user with the role developer or above
(the action monitors.report). Every --poll it asks the server which monitors list
its location for the rollouts in their post-promotion window, checks
each against the environment's URL every interval, and sends the results
every --flush (a failing one at once): they count for the blue-green
gate and a failing one aborts the rollout, as the server's own (local)
monitors do (docs/monitors.md).

It runs until SIGINT or SIGTERM, then sends what results it holds and
exits 0. A server that does not answer (restarting, unreachable) is
asked again with a backoff of up to 30s; the checks go on meanwhile.
Exit 2: bad flags, no token. Exit 77: the server refuses the token
(unknown, revoked, or not bound to this location).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return usageErr(err)
			}
			if err := monitor.ValidLocation(o.Location); err != nil {
				return usageErr(fmt.Errorf("--location: %w", err))
			}
			if o.Location == monitor.Location {
				return usageErr(errors.New(`--location local is the gantry server itself; name this machine's location (eu-west)`))
			}
			c, err := dialRemote(&o.Remote)
			if err != nil {
				return err
			}
			defer c.Close()
			level := slog.LevelInfo
			if g.Verbose {
				level = slog.LevelDebug
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			logger.Info("monitor agent started", "server", c.Server(), "location", o.Location)
			a := &monitor.Agent{Server: c, Location: o.Location, Poll: o.Poll, Flush: o.Flush, Logger: logger,
				Refused: func(err error) bool { return errors.Is(err, serve.ErrForbidden) }}
			if err := a.Run(cmd.Context()); errors.Is(err, serve.ErrForbidden) {
				return &ExitError{Code: ExitForbidden, Err: err}
			} else if err != nil {
				return failed(err)
			}
			logger.Info("monitor agent stopped")
			return nil
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}
