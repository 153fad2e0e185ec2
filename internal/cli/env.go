package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/serve"
)

func newEnvCmd(g *options.Global) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "env",
		Short: "The environments of the state dir (through gantry serve) and of the pipeline file's kubernetes environments",
	}
	cmd.AddCommand(newEnvLsCmd(g), newEnvStatusCmd(g), newEnvHistoryCmd(g), newEnvLogsCmd(g), newEnvRollbackCmd(g))
	return cmd
}

// envArg checks an ENV argument (bad usage when malformed).
func envArg(name string) (string, error) {
	if err := serve.ValidEnvironment(name); err != nil {
		return "", usageErr(err)
	}
	return name, nil
}

func newEnvLsCmd(g *options.Global) *cobra.Command {
	out := &options.Output{}
	src := &options.EnvSource{}
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the environments: URL, current revision, digest, instances ready",
		Long: `List the environments of the state dir's gantry serve, then the pipeline
file's runtime: kubernetes environments, read from their clusters (a
release not installed yet has no revision). With kubernetes environments
and no gantry serve running, only those are listed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Validate(); err != nil {
				return usageErr(err)
			}
			kreqs, err := kubeRequests(g, src)
			if err != nil {
				return err
			}
			envs, err := callServe(cmd, g, func(ctx context.Context, c *serve.Client) ([]runtime.EnvironmentStatus, error) {
				return c.List(ctx)
			})
			if ee := (*ExitError)(nil); errors.As(err, &ee) && ee.Code == ExitNotRunning && len(kreqs) > 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "gantry serve is not running: listing the pipeline file's kubernetes environments only")
				err = nil
			}
			if err != nil {
				return err
			}
			kenvs, err := kubeStatuses(cmd.Context(), kreqs)
			if err != nil {
				return err
			}
			envs = append(envs, kenvs...)
			return printAs(cmd.OutOrStdout(), out.Format, envs, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "NAME\tURL\tREVISION\tDIGEST\tREADY")
				for _, e := range envs {
					rev, digest := "-", "-"
					if e.Current != nil {
						rev, digest = strconv.Itoa(e.Current.Number), shortDigest(e.Current.Digest)
					}
					ready := 0
					for _, in := range e.Instances {
						if in.State == "ready" {
							ready++
						}
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\n", terminalSafe(e.Name), terminalSafe(e.URL), rev, terminalSafe(digest), ready, len(e.Instances))
				}
			})
		},
	}
	out.AddFlags(cmd.Flags())
	src.AddFlags(cmd.Flags())
	return cmd
}

func newEnvHistoryCmd(g *options.Global) *cobra.Command {
	return newHistoryCmd(g, "List an environment's revisions, oldest first")
}

// newHistoryCmd is `gantry env history` and `gantry rollout history`: the
// environment's revisions, the numbers rollback and undo take.
func newHistoryCmd(g *options.Global, short string) *cobra.Command {
	out := &options.Output{}
	src := &options.EnvSource{}
	cmd := &cobra.Command{
		Use:   "history ENV",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.Validate(); err != nil {
				return usageErr(err)
			}
			env, err := envArg(args[0])
			if err != nil {
				return err
			}
			kd, err := kubeEnvironment(cmd, g, src, env)
			if err != nil {
				return err
			}
			var revs []runtime.Revision
			if kd != nil {
				if revs, err = kd.History(cmd.Context()); err != nil {
					return kubeErr(err)
				}
			} else if revs, err = callServe(cmd, g, func(ctx context.Context, c *serve.Client) ([]runtime.Revision, error) {
				return c.History(ctx, env)
			}); err != nil {
				return err
			}
			return printRevisions(cmd.OutOrStdout(), out.Format, revs)
		},
	}
	out.AddFlags(cmd.Flags())
	src.AddFlags(cmd.Flags())
	return cmd
}

// printRevisions prints an environment's history (gantry env history,
// gantry rollout history).
func printRevisions(w io.Writer, format string, revs []runtime.Revision) error {
	return printAs(w, format, revs, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "REVISION\tSTATUS\tDIGEST\tRUN\tWHO\tCREATED\tREASON")
		for _, r := range revs {
			run := "-"
			if r.Run != 0 {
				run = "#" + strconv.FormatInt(r.Run, 10)
			}
			reason := r.Reason
			if r.Message != "" {
				reason = strings.TrimSpace(reason + " (" + r.Message + ")")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Number, terminalSafe(r.Status), terminalSafe(shortDigest(r.Digest)), run, terminalSafe(r.Who), r.Created.Local().Format(time.DateTime), terminalSafe(reason))
		}
	})
}

func newEnvLogsCmd(g *options.Global) *cobra.Command {
	o := &options.EnvLogs{}
	src := &options.EnvSource{}
	cmd := &cobra.Command{
		Use:   "logs ENV",
		Short: "Print the logs of an environment's instances, each line prefixed with the instance",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := envArg(args[0])
			if err != nil {
				return err
			}
			kd, err := kubeEnvironment(cmd, g, src, env)
			if err != nil {
				return err
			}
			if kd != nil {
				// Interrupted, --follow ends without an error (main's
				// context ends on SIGINT and SIGTERM).
				if err := kd.Logs(cmd.Context(), o.Follow, cmd.OutOrStdout()); err != nil {
					return kubeErr(err)
				}
				return nil
			}
			_, err = callServe(cmd, g, func(ctx context.Context, c *serve.Client) (struct{}, error) {
				return struct{}{}, c.Logs(ctx, env, o.Follow, cmd.OutOrStdout())
			})
			return err
		},
	}
	o.AddFlags(cmd.Flags())
	src.AddFlags(cmd.Flags())
	return cmd
}

func newEnvRollbackCmd(g *options.Global) *cobra.Command {
	o := &options.EnvRollback{}
	src := &options.EnvSource{}
	cmd := &cobra.Command{
		Use:   "rollback ENV",
		Short: "Redeploy an environment's previous serving revision, or --to-revision N, through admission",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return usageErr(err)
			}
			env, err := envArg(args[0])
			if err != nil {
				return err
			}
			reason := o.Reason
			if reason == "" {
				reason = "rollback"
				if o.ToRevision > 0 {
					reason = "rollback to " + strconv.Itoa(o.ToRevision)
				}
			}
			kd, err := kubeEnvironment(cmd, g, src, env)
			if err != nil {
				return err
			}
			var rev runtime.Revision
			if kd != nil {
				if rev, err = kd.Rollback(cmd.Context(), o.ToRevision, whoAmI(), reason); err != nil {
					return kubeErr(err)
				}
			} else if rev, err = callServe(cmd, g, func(ctx context.Context, c *serve.Client) (runtime.Revision, error) {
				return c.Rollback(ctx, env, o.ToRevision, whoAmI(), reason)
			}); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: revision %d serves %s\n", terminalSafe(env), rev.Number, terminalSafe(rev.Digest))
			return err
		},
	}
	o.AddFlags(cmd.Flags())
	src.AddFlags(cmd.Flags())
	return cmd
}

func newEnvStatusCmd(g *options.Global) *cobra.Command {
	out := &options.Output{}
	src := &options.EnvSource{}
	cmd := &cobra.Command{
		Use:   "status ENV",
		Short: "Show an environment's current revision and its instances (pods on Kubernetes)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.Validate(); err != nil {
				return usageErr(err)
			}
			env, err := envArg(args[0])
			if err != nil {
				return err
			}
			kd, err := kubeEnvironment(cmd, g, src, env)
			if err != nil {
				return err
			}
			var st runtime.EnvironmentStatus
			if kd != nil {
				if st, err = kd.Status(cmd.Context()); err != nil {
					return kubeErr(err)
				}
			} else if st, err = callServe(cmd, g, func(ctx context.Context, c *serve.Client) (runtime.EnvironmentStatus, error) {
				return c.Status(ctx, env)
			}); err != nil {
				return err
			}
			return printAs(cmd.OutOrStdout(), out.Format, st, func(tw *tabwriter.Writer) {
				if st.Current != nil {
					fmt.Fprintf(tw, "%s\trevision %d\t%s\t%s\t%s\n", terminalSafe(st.Name), st.Current.Number, terminalSafe(st.Current.Status), terminalSafe(st.Current.Digest), terminalSafe(st.Current.Message))
				}
				fmt.Fprintln(tw, "INSTANCE\tSTATE\tADDR\tRESTARTS\tSINCE")
				for _, in := range st.Instances {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", terminalSafe(in.ID), terminalSafe(in.State), terminalSafe(in.Addr), in.Restarts, in.Since.Local().Format(time.DateTime))
				}
			})
		},
	}
	out.AddFlags(cmd.Flags())
	src.AddFlags(cmd.Flags())
	return cmd
}

// kubeErr maps a kubernetes environment's error to the exit status:
// nothing to roll back to or no release is a failure like any other.
func kubeErr(err error) error { return failed(err) }

// whoAmI names the user for an environment's history.
func whoAmI() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid " + strconv.Itoa(os.Getuid())
}
