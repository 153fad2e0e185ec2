package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/serve"
	"github.com/gantry-ci/gantry/internal/store"
)

// Exit codes of gantry serve and gantry env (sysexits values).
const (
	// ExitNotRunning: no gantry serve runs for the state dir (gantry env,
	// gantry serve status); sysexits' EX_UNAVAILABLE.
	ExitNotRunning = 69
	// ExitAlreadyRunning: another gantry serve holds the state dir (gantry
	// serve); sysexits' EX_CANTCREAT, its lock cannot be taken.
	ExitAlreadyRunning = 73
)

// newDeployer builds the environment controller the serve process
// exposes. It is the one place the controller is wired in.
//
// The controller (internal/envctl) is not part of this build yet: until
// it is, the serve process runs with a deployer that refuses every
// environment call with errors.ErrUnsupported, while health, stop and
// status work.
func newDeployer(_ context.Context, _ string, _ *slog.Logger) (serve.Deployer, error) {
	return notBuilt{}, nil
}

// errNotBuilt is what every environment call answers in a build without
// the environment controller.
var errNotBuilt = fmt.Errorf("environments are not built yet in this gantry: %w", errors.ErrUnsupported)

// notBuilt is the deployer of a build without environments.
type notBuilt struct{}

var _ serve.Deployer = notBuilt{}

func (notBuilt) Deploy(context.Context, runtime.DeployRequest) (runtime.Revision, error) {
	return runtime.Revision{}, errNotBuilt
}
func (notBuilt) Rollback(context.Context, string, int, string, string) (runtime.Revision, error) {
	return runtime.Revision{}, errNotBuilt
}
func (notBuilt) Status(context.Context, string) (runtime.EnvironmentStatus, error) {
	return runtime.EnvironmentStatus{}, errNotBuilt
}
func (notBuilt) List(context.Context) ([]runtime.EnvironmentStatus, error) { return nil, errNotBuilt }
func (notBuilt) History(context.Context, string) ([]runtime.Revision, error) {
	return nil, errNotBuilt
}
func (notBuilt) Logs(context.Context, string, bool, io.Writer) error { return errNotBuilt }
func (notBuilt) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
func (notBuilt) Close(context.Context) error { return nil }

func newServeCmd(g *options.Global) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the long-lived gantry process of the state dir (environments, embedded registry) in the foreground",
		Long: `Run the long-lived gantry process of the state dir in the foreground,
logging to stderr: for a terminal or a systemd unit. It hosts the
environment controller and the embedded registry, and answers the CLI on
the Unix socket STATE_DIR/gantry.sock (mode 0600, the same user only).
SIGINT or SIGTERM, or gantry serve stop, stop it gracefully.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stateDir, err := g.ResolveStateDir()
			if err != nil {
				return usageErr(err)
			}
			level := slog.LevelInfo
			if g.Verbose {
				level = slog.LevelDebug
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			ctx := cmd.Context()
			d, err := newDeployer(ctx, stateDir, logger)
			if err != nil {
				return failed(fmt.Errorf("start the environment controller: %w", err))
			}
			err = serve.Run(ctx, serve.Config{StateDir: stateDir, Deployer: d, Version: version(), Logger: logger})
			var running *serve.AlreadyRunningError
			if errors.As(err, &running) {
				return &ExitError{Code: ExitAlreadyRunning, Err: err}
			}
			if err != nil {
				return failed(err)
			}
			return nil
		},
	}
	cmd.AddCommand(newServeStopCmd(g), newServeStatusCmd(g))
	return cmd
}

func newServeStopCmd(g *options.Global) *cobra.Command {
	o := &options.ServeStop{}
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop the gantry serve of the state dir and wait until it has released it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return usageErr(err)
			}
			stateDir, err := g.ResolveStateDir()
			if err != nil {
				return usageErr(err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.Timeout)
			defer cancel()
			c, err := serve.Dial(ctx, stateDir)
			if errors.Is(err, serve.ErrNotRunning) {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "gantry serve is not running for %s\n", stateDir)
				return err
			}
			if err != nil {
				return failed(err)
			}
			defer c.Close()
			h, err := c.Health(ctx)
			if err != nil {
				return failed(err)
			}
			if err := c.Shutdown(ctx); err != nil {
				return failed(fmt.Errorf("stop gantry serve (pid %d): %w", h.Pid, err))
			}
			if err := serve.WaitStopped(ctx, stateDir); err != nil {
				return failed(fmt.Errorf("gantry serve (pid %d): %w", h.Pid, err))
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "stopped gantry serve (pid %d) for %s\n", h.Pid, stateDir)
			return err
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func newServeStatusCmd(g *options.Global) *cobra.Command {
	out := &options.Output{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Say whether gantry serve runs for the state dir, and since when",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Validate(); err != nil {
				return usageErr(err)
			}
			h, err := callServe(cmd, g, func(ctx context.Context, c *serve.Client) (serve.Health, error) {
				return c.Health(ctx)
			})
			if err != nil {
				return err
			}
			return printAs(cmd.OutOrStdout(), out.Format, h, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "state dir:\t%s\n", h.StateDir)
				fmt.Fprintf(tw, "socket:\t%s\n", serve.SocketPath(h.StateDir))
				fmt.Fprintf(tw, "pid:\t%d\n", h.Pid)
				fmt.Fprintf(tw, "version:\t%s\n", terminalSafe(h.Version))
				fmt.Fprintf(tw, "up:\t%s (since %s)\n", (time.Duration(h.Uptime) * time.Second).Round(time.Second), h.Started.Local().Format(time.RFC3339))
				if h.Registry != "" {
					fmt.Fprintf(tw, "registry:\t%s\n", h.Registry)
				}
			})
		},
	}
	out.AddFlags(cmd.Flags())
	return cmd
}

// dialServe connects to the gantry serve of the state dir; when none
// runs the error says so (exit ExitNotRunning).
func dialServe(cmd *cobra.Command, g *options.Global) (*serve.Client, error) {
	stateDir, err := g.ResolveStateDir()
	if err != nil {
		return nil, usageErr(err)
	}
	c, err := serve.Dial(cmd.Context(), stateDir)
	if err != nil {
		return nil, envErr(err)
	}
	return c, nil
}

// callServe connects to the gantry serve of the state dir, makes one call
// and closes the connection; the errors of both are mapped to exit codes
// (dialServe, envErr).
func callServe[T any](cmd *cobra.Command, g *options.Global, call func(context.Context, *serve.Client) (T, error)) (T, error) {
	c, err := dialServe(cmd, g)
	if err != nil {
		var zero T
		return zero, err
	}
	defer c.Close()
	v, err := call(cmd.Context(), c)
	if err != nil {
		return v, envErr(err)
	}
	return v, nil
}

// envErr maps an error of the serve client to an exit code.
func envErr(err error) error {
	switch {
	case errors.Is(err, serve.ErrNotRunning):
		return &ExitError{Code: ExitNotRunning, Err: fmt.Errorf("%w (start it with: gantry serve)", err)}
	case errors.Is(err, serve.ErrForbidden):
		return &ExitError{Code: ExitForbidden, Err: err}
	case errors.Is(err, serve.ErrBadRequest), errors.Is(err, store.ErrNotFound):
		return usageErr(err)
	}
	return failed(err)
}

// terminalSafe replaces control characters, so that text from a repository
// or a webhook (reasons, messages) cannot drive the terminal.
func terminalSafe(s string) string {
	b := []rune(s)
	for i, r := range b {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			b[i] = '?'
		}
	}
	return string(b)
}
