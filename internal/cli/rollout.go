package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/steps/bluegreen"
	"github.com/gantry-ci/gantry/internal/store"
)

func newRolloutCmd(g *options.Global) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Blue/green rollouts of the environments: promote, abort, retry, undo, history, status",
		Long: `The verbs of kubectl argo rollouts on the environments of the state dir,
through the gantry serve process that runs their rollouts (docs/cli/rollout.md).

promote, abort, retry and undo check the caller's role first: the roles
are those of the approval: of the pipeline's stages that have a
blue-green step on ENV (.gantry/pipeline.yaml of --dir), else --role;
who holds them is read as gantry approve reads it (.gantry/approvers.yaml
of the repository's default branch, or STATE_DIR/approvers.yaml). A
refusal is recorded in the audit log and exits 77.`,
	}
	cmd.AddCommand(newRolloutPromoteCmd(g), newRolloutAbortCmd(g), newRolloutRetryCmd(g), newRolloutUndoCmd(g),
		newRolloutHistoryCmd(g), newRolloutStatusCmd(g))
	return cmd
}

func newRolloutPromoteCmd(g *options.Global) *cobra.Command {
	o := &options.RolloutPromote{}
	cmd := &cobra.Command{
		Use:   "promote ENV",
		Short: "End a rollout's pause (--full: also skip the remaining analysis) and switch the active URL to green",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return rolloutVerb(cmd, g, args[0], "promote", &o.RolloutAuth, func(ctx context.Context, c runtime.Roller, env, who string) (runtime.RolloutStatus, error) {
				return c.Promote(ctx, env, o.Full, who)
			})
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func newRolloutAbortCmd(g *options.Global) *cobra.Command {
	o := &options.RolloutAbort{}
	cmd := &cobra.Command{
		Use:   "abort ENV",
		Short: "Send active traffic back to blue at once; the rollout becomes Degraded",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reason := o.Reason
			if reason == "" {
				reason = "aborted by hand"
			}
			return rolloutVerb(cmd, g, args[0], "abort", &o.RolloutAuth, func(ctx context.Context, c runtime.Roller, env, who string) (runtime.RolloutStatus, error) {
				return c.Abort(ctx, env, who, reason)
			})
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func newRolloutRetryCmd(g *options.Global) *cobra.Command {
	o := &options.RolloutAuth{}
	cmd := &cobra.Command{
		Use:   "retry ENV",
		Short: "Start an aborted rollout's cycle again, with a fresh analysis",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return rolloutVerb(cmd, g, args[0], "retry", o, func(ctx context.Context, c runtime.Roller, env, who string) (runtime.RolloutStatus, error) {
				return c.Retry(ctx, env, who)
			})
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func newRolloutUndoCmd(g *options.Global) *cobra.Command {
	o := &options.RolloutUndo{}
	cmd := &cobra.Command{
		Use:   "undo ENV",
		Short: "Roll the previous revision (or --to-revision N) out again, through admission, as a new blue/green cycle",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return usageErr(err)
			}
			return rolloutVerb(cmd, g, args[0], "undo", &o.RolloutAuth, func(ctx context.Context, c runtime.Roller, env, who string) (runtime.RolloutStatus, error) {
				return c.Undo(ctx, env, o.ToRevision, who)
			})
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func newRolloutHistoryCmd(g *options.Global) *cobra.Command {
	return newHistoryCmd(g, "List the environment's revisions, oldest first (the numbers undo --to-revision takes)")
}

func newRolloutStatusCmd(g *options.Global) *cobra.Command {
	o := &options.RolloutStatus{}
	remote := &options.Remote{}
	src := &options.EnvSource{}
	cmd := &cobra.Command{
		Use:   "status ENV",
		Short: "Show the rollout: phase, step, revisions, URLs, conditions, analyses, monitors (--watch: follow it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return usageErr(err)
			}
			env, err := envArg(args[0])
			if err != nil {
				return err
			}
			if err := remote.Validate(); err != nil {
				return usageErr(err)
			}
			if o.Watch {
				return watchRollout(cmd, g, remote, src, env)
			}
			st, err := callRoller(cmd, g, remote, src, env, func(ctx context.Context, c runtime.Roller) (runtime.RolloutStatus, error) {
				return c.RolloutStatus(ctx, env)
			})
			if err != nil {
				return rolloutErr(err)
			}
			if err := printAs(cmd.OutOrStdout(), o.Format, st, func(tw *tabwriter.Writer) { printRollout(tw, st) }); err != nil {
				return err
			}
			if st.Phase == runtime.RolloutDegraded {
				return &ExitError{Code: ExitFailed}
			}
			return nil
		},
	}
	o.AddFlags(cmd.Flags())
	remote.AddFlags(cmd.Flags())
	src.AddFlags(cmd.Flags())
	return cmd
}

// watchRollout prints the rollout's changes until it is Healthy (exit 0)
// or Degraded (exit 1, with the failure).
func watchRollout(cmd *cobra.Command, g *options.Global, remote *options.Remote, src *options.EnvSource, env string) error {
	out := cmd.OutOrStdout()
	pr := bluegreen.NewProgress(out)
	pr.Clean = terminalSafe
	var last runtime.RolloutStatus
	paused := -1
	_, err := callRoller(cmd, g, remote, src, env, func(ctx context.Context, c runtime.Roller) (struct{}, error) {
		return struct{}{}, c.Watch(ctx, env, func(st runtime.RolloutStatus) bool {
			last = st
			pr.Report(st)
			switch st.Phase {
			case runtime.RolloutHealthy, runtime.RolloutDegraded:
				return false
			case runtime.RolloutPaused:
				if paused != st.Desired {
					paused = st.Desired
					fmt.Fprintf(out, "%s: paused, waiting for manual promotion; to promote: %s\n", terminalSafe(env), bluegreen.PromoteCommand(env))
				}
			default:
				paused = -1
			}
			return true
		})
	})
	if err != nil {
		return rolloutErr(err)
	}
	switch {
	case cmd.Context().Err() != nil:
		return &ExitError{Code: ExitCancelled, Err: errors.New("cancelled")}
	case last.Phase == runtime.RolloutDegraded:
		return failed(fmt.Errorf("%s: rollout Degraded: %s", terminalSafe(env), terminalSafe(bluegreen.Failure(last))))
	case last.Phase != runtime.RolloutHealthy:
		return failed(fmt.Errorf("%s: the watch ended at %s (gantry serve stopped?)", terminalSafe(env), last.Phase))
	}
	return nil
}

// printRollout is the table form of a rollout's status.
func printRollout(tw *tabwriter.Writer, st runtime.RolloutStatus) {
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, terminalSafe(v))
		}
	}
	row("Environment", st.Environment)
	row("Phase", string(st.Phase))
	row("Step", string(st.Step))
	row("Message", st.Message)
	row("Revision", fmt.Sprintf("stable %d, desired %d", st.Stable, st.Desired))
	row("Digest", st.Digest)
	row("Active URL", st.ActiveURL)
	row("Preview URL", st.PreviewURL)
	row("Promoted by", st.PromotedBy)
	row("Aborted by", st.AbortedBy)
	if !st.PauseUntil.IsZero() {
		row("Promotes itself at", st.PauseUntil.Local().Format(time.DateTime))
	}
	if !st.ScaleDownAt.IsZero() {
		row("Old revision stops at", st.ScaleDownAt.Local().Format(time.DateTime))
	}
	if !st.Updated.IsZero() {
		row("Updated", st.Updated.Local().Format(time.DateTime))
	}
	for _, c := range st.Conditions {
		v := c.Status
		if c.Reason != "" {
			v += " " + c.Reason
		}
		if c.Message != "" {
			v += ": " + c.Message
		}
		row("Condition "+c.Type, v)
	}
	for _, a := range st.Analyses {
		row(fmt.Sprintf("Analysis %s (revision %d)", a.Kind, a.Revision), string(a.Phase))
		for _, r := range a.Runs {
			if r == nil {
				continue
			}
			for _, m := range r.Metrics {
				var values []string
				for _, ms := range m.Measurements {
					v := ms.Value
					if v == "" {
						v = string(ms.Phase)
					}
					values = append(values, v)
				}
				row("  "+r.Template+"/"+m.Name, fmt.Sprintf("%s, %d measured, %d failed: %s", m.Phase, m.Count, m.Failed, strings.Join(values, " ")))
			}
		}
	}
	for _, m := range st.Monitors {
		v := "ok"
		if !m.OK {
			v = "FAILED: " + m.Message
		}
		row("Monitor "+m.Monitor+" from "+m.Location, fmt.Sprintf("%s (status %d, %s, %s)", v, m.Status, m.Latency.Round(time.Millisecond), m.At.Local().Format(time.DateTime)))
	}
}

// rolloutVerb checks the caller's role for verb on env, records the
// decision in the audit log, then calls the serve process.
func rolloutVerb(cmd *cobra.Command, g *options.Global, arg, verb string, auth *options.RolloutAuth,
	call func(ctx context.Context, c runtime.Roller, env, who string) (runtime.RolloutStatus, error)) error {
	if err := auth.Validate(); err != nil {
		return usageErr(err)
	}
	env, err := envArg(arg)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	var who string
	if !auth.Remote.Enabled() {
		// The server checks remote callers itself (as the token's user).
		if who, err = authorizeRollout(ctx, cmd, g, env, verb, auth); err != nil {
			return err
		}
	}
	st, err := callRoller(cmd, g, &auth.Remote, &options.EnvSource{Dir: auth.Dir}, env, func(ctx context.Context, c runtime.Roller) (runtime.RolloutStatus, error) {
		return call(ctx, c, env, who)
	})
	if err != nil {
		return rolloutErr(err)
	}
	if who == "" {
		who = cmp.Or(st.PromotedBy, st.AbortedBy, "the token's user")
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "%s: %s by %s: %s, step %s (revision %d → %d)\n", terminalSafe(env), verb, terminalSafe(who), st.Phase, st.Step, st.Stable, st.Desired)
	if st.Phase == runtime.RolloutPaused {
		fmt.Fprintf(out, "waiting for manual promotion; to promote: %s\n", bluegreen.PromoteCommand(env))
	}
	return nil
}

// authorizeRollout checks that the local user holds one of the roles
// guarding env and records the outcome in the audit log; a refusal is
// exit 77, as gantry approve's.
func authorizeRollout(ctx context.Context, cmd *cobra.Command, g *options.Global, env, verb string, auth *options.RolloutAuth) (string, error) {
	repo, err := filepath.Abs(auth.Dir)
	if err != nil {
		return "", usageErr(err)
	}
	roles, from, err := rolloutRoles(filepath.Join(repo, filepath.FromSlash(spec.DefaultPath)), env)
	if err != nil {
		return "", usageErr(err)
	}
	if len(roles) > 0 && len(auth.Roles) > 0 {
		return "", usageErr(fmt.Errorf("%s names the roles %s for %s; --role is only for environments no stage guards", from, strings.Join(roles, ", "), env))
	}
	if len(roles) == 0 && len(auth.Roles) > 0 {
		roles, from = auth.Roles, "--role"
	}
	who, err := engine.LocalUser{}.Identify(ctx)
	if err != nil {
		return "", err
	}
	a, err := openApp(ctx, g, cmd.ErrOrStderr())
	if err != nil {
		return "", err
	}
	defer a.Close()
	subject := "environment " + env + ": rollout " + verb
	if len(roles) == 0 {
		if err := a.store.Audit(ctx, &store.AuditEntry{Actor: who.Name, Action: "rollout." + verb, Subject: subject,
			Detail: fmt.Sprintf("by %s (%s); no role guards %s", who.Name, who.Via, env)}); err != nil {
			return "", fmt.Errorf("record the rollout %s in the audit log: %w", verb, err)
		}
		return who.Name, nil
	}
	approvers, source, err := loadApprovers(ctx, repo, a.stateDir)
	if err != nil {
		return "", usageErr(err)
	}
	if !approvers.Holds(who.Name, roles) {
		why := fmt.Sprintf("%s (%s) holds none of the roles %s (from %s) in %s", who.Name, who.Via, strings.Join(roles, ", "), from, source)
		if approvers == nil {
			why = fmt.Sprintf("%s (%s) holds none of the roles %s (from %s): no approvers file at %s", who.Name, who.Via, strings.Join(roles, ", "), from, source)
		}
		if err := a.store.Audit(ctx, &store.AuditEntry{Actor: who.Name, Action: "rollout.refused", Subject: subject, Detail: why}); err != nil {
			return "", fmt.Errorf("record the refused rollout %s: %w", verb, err)
		}
		return "", &ExitError{Code: ExitForbidden, Err: fmt.Errorf("rollout %s of %s: %w: %s", verb, env, engine.ErrForbidden, why)}
	}
	detail := fmt.Sprintf("by %s (%s), roles %s, from %s in %s", who.Name, who.Via, strings.Join(approvers.RolesOf(who.Name), ","), from, source)
	if err := a.store.Audit(ctx, &store.AuditEntry{Actor: who.Name, Action: "rollout." + verb, Subject: subject, Detail: detail}); err != nil {
		return "", fmt.Errorf("record the rollout %s in the audit log: %w", verb, err)
	}
	return who.Name, nil
}

// rolloutRoles returns the approval roles of the stages of the pipeline
// at file that have a blue-green step on env, and where they were read.
// A missing file names no roles.
func rolloutRoles(file, env string) ([]string, string, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read the pipeline: %w", err)
	}
	return engine.RolloutRoles(data, file, env)
}

// rolloutErr maps the rollout errors to exit codes: no rollout, or a
// verb the rollout's state does not allow, is bad usage (2).
func rolloutErr(err error) error {
	if errors.Is(err, runtime.ErrNoRollout) || errors.Is(err, runtime.ErrRolloutState) {
		var ee *ExitError
		if errors.As(err, &ee) {
			ee.Code = ExitUsage
			return ee
		}
		return usageErr(err)
	}
	return err
}
