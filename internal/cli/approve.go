package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/serve"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/store"
)

func newApproveCmd(g *options.Global) *cobra.Command {
	o := &options.Approve{}
	remote := &options.Remote{}
	cmd := &cobra.Command{
		Use:   "approve RUN",
		Short: "Approve a waiting run's stage and resume the run",
		Long: `Approve the stage run RUN waits for, then resume the run in this process
to its end (or to its next approval). With --no-resume, only record the
decision; gantry run --resume RUN continues it later.

Who may approve: the people .gantry/approvers.yaml names for one of the
roles the stage's approval: lists, read from the repository's default
branch (origin/HEAD, else main, else master) with git, never from the
working tree or the commit under review; STATE_DIR/approvers.yaml, when
it exists, replaces it. The caller is the local user's login name. A
refusal is recorded in the audit log.

With --server URL, the decision is taken by the gantry server as the
token's user (who must also hold a role of the stage in the approvers
file the server reads from the run's repository) and the server resumes
the run on its queue: the command returns once the decision is recorded
(exit 0) and gantry logs -f RUN --server URL follows the run.

Exit status: 0 approved and the resumed run passed (or only recorded, with
--no-resume), 1 the resumed run failed, 2 bad usage (no such run, nothing
to approve, a bad approvers file), 75 the resumed run waits for another
approval, 77 the caller holds none of the roles, 130 cancelled.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return usageErr(err)
			}
			d := decision{approve: true, stage: o.Stage, comment: o.Comment, dir: o.Dir, noResume: o.NoResume}
			if err := remote.Validate(); err != nil {
				return usageErr(err)
			}
			if remote.Enabled() {
				return remoteDecide(cmd, remote, args[0], d)
			}
			return decide(cmd, g, args[0], d,
				func(a *app, id int64, dir string) error {
					if o.NoResume {
						fmt.Fprintf(cmd.OutOrStdout(), "resume with: gantry run --resume %d\n", id)
						return nil
					}
					return resumeRun(cmd, a, id, dir, o.Progress, 0)
				})
		},
	}
	o.AddFlags(cmd.Flags())
	remote.AddFlags(cmd.Flags())
	return cmd
}

func newRejectCmd(g *options.Global) *cobra.Command {
	o := &options.Reject{}
	remote := &options.Remote{}
	cmd := &cobra.Command{
		Use:   "reject RUN --reason TEXT",
		Short: "Reject a waiting run's stage: the run ends rejected",
		Long: `Reject the stage run RUN waits for. The run ends with status rejected (a
failure: gantry run --resume reports it, exit status 1). Who may reject:
as for gantry approve; with --server URL, the server decides as the
token's user.

Exit status: 0 rejected, 2 bad usage (no such run, nothing to reject, no
--reason, a bad approvers file), 77 the caller holds none of the roles.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return usageErr(err)
			}
			d := decision{stage: o.Stage, comment: o.Reason, dir: o.Dir}
			if err := remote.Validate(); err != nil {
				return usageErr(err)
			}
			if remote.Enabled() {
				return remoteDecide(cmd, remote, args[0], d)
			}
			return decide(cmd, g, args[0], d, nil)
		},
	}
	o.AddFlags(cmd.Flags())
	remote.AddFlags(cmd.Flags())
	return cmd
}

type decision struct {
	approve        bool
	stage, comment string
	dir            string
	noResume       bool
}

// remoteDecide takes the decision on the server, which checks the
// caller's roles and resumes an approved run on its queue.
func remoteDecide(cmd *cobra.Command, remote *options.Remote, arg string, d decision) error {
	ctx := cmd.Context()
	if d.dir != "" {
		return usageErr(errors.New("--dir does not go with --server: the server reads the approvers file of the run's repository"))
	}
	id, err := parseRunID(arg)
	if err != nil {
		return err
	}
	c, err := dialRemote(remote)
	if err != nil {
		return err
	}
	defer c.Close()
	v, err := c.Run(ctx, id)
	if err != nil {
		return remoteErr(err)
	}
	stage, err := pendingStage(v, d.stage)
	if err != nil {
		return err
	}
	req := serve.DecisionRequest{Decision: "reject", Comment: d.comment, NoResume: d.noResume}
	if d.approve {
		req.Decision = "approve"
	}
	resp, err := c.Decide(ctx, id, stage, req)
	if err != nil {
		return remoteErr(err)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "%s stage %s of run %d as %s\n", resp.Approval.Status, terminalSafe(resp.Approval.Stage), id, terminalSafe(resp.Approval.Actor))
	switch {
	case resp.Resumed:
		fmt.Fprintf(out, "the server resumed run %d; follow it with: gantry logs -f %d --server %s\n", id, id, c.Server())
	case d.approve:
		fmt.Fprintf(out, "resume with: gantry run --resume %d\n", id)
	}
	return nil
}

// decide records a decision on run arg's approval as the local user, then
// calls next (approve) with the open app.
func decide(cmd *cobra.Command, g *options.Global, arg string, d decision, next func(a *app, id int64, dir string) error) error {
	ctx := cmd.Context()
	a, run, err := openRun(cmd, g, arg)
	if err != nil {
		return err
	}
	defer a.Close()
	repo := run.Dir
	if d.dir != "" {
		if repo, err = filepath.Abs(d.dir); err != nil {
			return usageErr(err)
		}
	}
	who, err := engine.LocalUser{}.Identify(ctx)
	if err != nil {
		return err
	}
	approvers, source, err := loadApprovers(ctx, repo, a.stateDir)
	if err != nil {
		return usageErr(err)
	}
	eng, err := registryEngine(a)
	if err != nil {
		return err
	}
	ap, err := eng.Decide(ctx, engine.DecideRequest{RunID: run.ID, Stage: d.stage, Approve: d.approve, Comment: d.comment,
		Who: who, Approvers: approvers, Source: source})
	switch {
	case errors.Is(err, engine.ErrForbidden):
		return &ExitError{Code: ExitForbidden, Err: err}
	case errors.Is(err, engine.ErrNoPendingApproval):
		return usageErr(err)
	case err != nil:
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s stage %s of run %d as %s\n", ap.Status, ap.Stage, run.ID, who.Name)
	if ap.Status == store.ApprovalRejected || next == nil {
		return nil
	}
	dir := ""
	if d.dir != "" {
		dir = repo
	}
	return next(a, run.ID, dir)
}

// loadApprovers reads who may approve; a repository without a default
// branch has no approvers (approvals without roles still work).
func loadApprovers(ctx context.Context, repo, stateDir string) (spec.Approvers, string, error) {
	approvers, source, err := engine.LoadApprovers(ctx, repo, stateDir)
	if errors.Is(err, engine.ErrNoDefaultBranch) {
		return nil, err.Error(), nil
	}
	return approvers, source, err
}
