package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/evidence"
	"github.com/gantry-ci/gantry/internal/queue"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/steps/builtin"
	"github.com/gantry-ci/gantry/internal/store"
	"github.com/gantry-ci/gantry/internal/workspace"
)

// ExitCancelled is returned when a run was cancelled (Ctrl-C), as shells
// report SIGINT.
const ExitCancelled = 130

func builtinRegistry() spec.Registry {
	names := make([]string, 0)
	for n := range builtin.Services() {
		names = append(names, n)
	}
	sort.Strings(names)
	reg := spec.NewRegistry(kinds(), names)
	reg.Gates = evidence.Gates()
	return reg
}

func pipelinePath(dir, file string) string {
	if file != "" {
		return file
	}
	return filepath.Join(dir, spec.DefaultPath)
}

func newRunCmd(g *options.Global) *cobra.Command {
	o := &options.Run{}
	rs := &runServer{}
	var vars []string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the pipeline on a repository",
		Long: `Run the pipeline of a repository (.gantry/pipeline.yaml) on its current
checkout: stages in order, steps in dependency order, gates and failure
actions. The run is recorded in the state directory; see gantry runs,
gantry show, gantry logs and gantry artifacts.

With --resume N, continue run N in this process: a run that waited for
an approval (decided with gantry approve), or one interrupted (its gantry
process was killed) or cancelled. It runs the pipeline file and commit the
run recorded (in a detached git worktree when the checkout has moved on);
steps that ended keep their outcome, the others run again, with the
--var values the run recorded.

--var NAME=VALUE sets the pipeline variable NAME (declared in the
pipeline's vars: block) for this run; repeat it for several.

With --server URL (or $GANTRY_SERVER), submit the checkout's HEAD to a
gantry server instead (its origin remote's URL and the commit; for
unix://SOCKET, the server of this machine, the checkout's path): it
prints the queue item and, once a worker started it, the run's id and
link. --follow waits for the run to end and exits with its status. The
token comes from $GANTRY_TOKEN or --token-file (see docs/queue.md).

Exit status: 0 the run passed, 1 a step or gate failed (or the run was
rejected or interrupted), 2 bad usage or a bad pipeline file, 75 the run
waits for an approval (gantry approve/reject), 130 cancelled.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return usageErr(err)
			}
			if err := o.ValidateResume(cmd.Flags()); err != nil {
				return usageErr(err)
			}
			if o.Resume > 0 {
				if cmd.Flags().Changed("var") {
					return usageErr(errors.New("--var cannot be combined with --resume: a resumed run keeps the values it recorded"))
				}
				return resumePipeline(cmd, g, o)
			}
			values, err := parseVars(vars)
			if err != nil {
				return usageErr(err)
			}
			if rs.url() != "" {
				for _, f := range []string{"pipeline", "stage", "from", "until", "no-cache", "jobs"} {
					if cmd.Flags().Changed(f) {
						return usageErr(fmt.Errorf("--%s cannot be combined with --server: the server runs the commit's whole pipeline", f))
					}
				}
				dir, err := filepath.Abs(o.Dir)
				if err != nil {
					return usageErr(err)
				}
				return submitToServer(cmd, rs, dir, o.Event, o.Branch, o.Base, values)
			}
			if cmd.Flags().Changed("follow") || cmd.Flags().Changed("token-file") {
				return usageErr(errors.New("--follow and --token-file go with --server (or GANTRY_SERVER)"))
			}
			return runPipeline(cmd, g, o, values)
		},
	}
	o.AddFlags(cmd.Flags())
	rs.addFlags(cmd)
	cmd.Flags().StringArrayVar(&vars, "var", nil, "set the pipeline variable NAME (from the vars: block) to VALUE for this run: NAME=VALUE (repeatable)")
	return cmd
}

// parseVars reads --var NAME=VALUE flags; the last value of a name wins.
func parseVars(flags []string) (map[string]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, f := range flags {
		name, value, ok := strings.Cut(f, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--var %q: want NAME=VALUE", f)
		}
		out[name] = value
	}
	return out, nil
}

func runPipeline(cmd *cobra.Command, g *options.Global, o *options.Run, vars map[string]string) error {
	ctx := cmd.Context()
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return usageErr(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return usageErr(fmt.Errorf("--dir %s is not a directory", o.Dir))
	}
	p, err := spec.Load(pipelinePath(dir, o.Pipeline), builtinRegistry(), spec.WithRepository(dir))
	if err != nil {
		return usageErr(err)
	}
	if _, err := spec.ResolveVars(p, vars); err != nil {
		return usageErr(fmt.Errorf("--var: %w", err))
	}
	gitInfo, err := workspace.Describe(ctx, dir)
	if err != nil {
		return err
	}
	gitInfo.Event = o.Event
	if o.Branch != "" {
		gitInfo.Branch = o.Branch
	}
	gitInfo.BaseRef = o.Base
	if o.Event == "pull_request" && gitInfo.BaseRef == "" {
		gitInfo.BaseRef = "main"
	}
	// A server's worker runs what the server already decided to run (from
	// the default branch's on:, so a branch cannot widen its triggers).
	if o.QueueItem == "" && !triggered(p.On, gitInfo.Event, gitInfo.Branch, gitInfo.BaseRef) {
		fmt.Fprintf(cmd.OutOrStdout(), "pipeline %s is not triggered by %s on %s (see on: in %s)\n",
			p.Name, gitInfo.Event, describeBranch(gitInfo.Event, gitInfo.Branch, gitInfo.BaseRef), p.File)
		return nil
	}

	a, err := openApp(ctx, g, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer a.Close()

	view := newProgress(cmd.OutOrStdout(), o.Progress)
	var obs engine.Observer = view
	status, err := newStatusObserver(p, dir, gitInfo.SHA, a.log)
	if err != nil {
		return usageErr(err)
	}
	if status != nil {
		defer status.Close()
		obs = observers{view, status}
	}
	if o.QueueItem != "" {
		// A run whose server lost its claim (declared dead by a replica)
		// stops rather than going on beside its retry.
		wctx, stop, err := queue.WatchClaim(ctx, a.store, o.QueueItem, queue.ClaimCheckInterval, a.log)
		if err != nil {
			return err
		}
		defer stop()
		ctx = wctx
		obs = observers{obs, queueRecorder(ctx, a, o.QueueItem)}
	}
	eng, err := runEngine(a, obs, o.Jobs, rollbackOptions(p, dir, a.stateDir, cmd.OutOrStdout(), a.log)...)
	if err != nil {
		return err
	}
	view.Start()
	res, err := eng.Run(ctx, p, engine.Request{
		Dir: dir, Git: gitInfo, Stages: o.Stages, From: o.From, Until: o.Until,
		NoCache: o.NoCache, Trigger: "cli", Vars: vars,
	})
	view.Stop()
	if err != nil {
		if errors.Is(err, engine.ErrStageNotFound) {
			return usageErr(err)
		}
		return err
	}
	view.Summary(res)
	return runOutcome(cmd, a.store, res)
}

// queueRecorder records the run's id against the server's queue item
// as soon as the engine created the run.
func queueRecorder(ctx context.Context, a *app, item string) engine.Observer {
	return engine.ObserverFunc(func(e engine.Event) {
		if e.Type != engine.RunStarted {
			return
		}
		if err := a.store.SetQueueRun(ctx, item, e.RunID); err != nil {
			a.log.Error("record the run of the queue item", "item", item, "run", e.RunID, "err", err)
		}
	})
}

// runOutcome tells how to go on with a waiting run and maps a run's
// status to the exit status.
func runOutcome(cmd *cobra.Command, records engine.RunRecords, res *engine.Result) error {
	switch res.Status {
	case store.StatusPassed:
		return nil
	case store.StatusWaiting:
		printWaiting(cmd, records, res)
		return &ExitError{Code: ExitWaiting}
	case store.StatusCancelled:
		return &ExitError{Code: ExitCancelled}
	default:
		// The summary already said why.
		return &ExitError{Code: ExitFailed}
	}
}

func printWaiting(cmd *cobra.Command, records engine.RunRecords, res *engine.Result) {
	w := cmd.OutOrStdout()
	// What the approver is asked to approve: the image, the evidence,
	// the results of the stage before.
	if verdicts, digest, err := engine.DeciderView(cmd.Context(), records, res.RunID); err == nil {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		writeApprovalBrief(tw, "", verdicts, digest)
		tw.Flush()
	}
	if res.Waiting == nil {
		fmt.Fprintf(w, "run %d waits for an approval\n", res.RunID)
		return
	}
	who := "anyone"
	if len(res.Waiting.Roles) > 0 {
		who = "role " + strings.Join(res.Waiting.Roles, " or ")
	}
	fmt.Fprintf(w, "run %d waits for approval of stage %s by %s", res.RunID, res.Waiting.Stage, who)
	if !res.Waiting.Deadline.IsZero() {
		fmt.Fprintf(w, " until %s (then it is rejected)", res.Waiting.Deadline.Local().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "\napprove: gantry approve %d --stage %s [--comment TEXT]\nreject:  gantry reject %d --stage %s --reason TEXT\n",
		res.RunID, res.Waiting.Stage, res.RunID, res.Waiting.Stage)
}

// resumePipeline is gantry run --resume N.
func resumePipeline(cmd *cobra.Command, g *options.Global, o *options.Run) error {
	a, err := openApp(cmd.Context(), g, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer a.Close()
	dir := ""
	if cmd.Flags().Changed("dir") {
		if dir, err = filepath.Abs(o.Dir); err != nil {
			return usageErr(err)
		}
	}
	if o.QueueItem != "" {
		// As for a new run: stop if the server's claim is lost.
		wctx, stop, err := queue.WatchClaim(cmd.Context(), a.store, o.QueueItem, queue.ClaimCheckInterval, a.log)
		if err != nil {
			return err
		}
		defer stop()
		cmd.SetContext(wctx)
	}
	return resumeRun(cmd, a, o.Resume, dir, o.Progress, o.Jobs)
}

// resumeRun continues run id with a progress view and maps its outcome to
// the exit status.
func resumeRun(cmd *cobra.Command, a *app, id int64, dir, progressMode string, jobs int) error {
	ctx := cmd.Context()
	run, err := a.store.GetRun(ctx, id)
	if err != nil {
		return notFound(err)
	}
	view := newProgress(cmd.OutOrStdout(), progressMode)
	var obs engine.Observer = view
	var rollbacks []engine.Option
	if run.PipelineSource != nil {
		// Commit statuses for the resumed stages, from the recorded file.
		if p, perr := spec.Parse(run.PipelineFile, run.PipelineSource, builtinRegistry()); perr == nil {
			rollbacks = rollbackOptions(p, run.Dir, a.stateDir, cmd.OutOrStdout(), a.log)
			status, err := newStatusObserver(p, run.Dir, run.SHA, a.log)
			if err != nil {
				return usageErr(err)
			}
			if status != nil {
				defer status.Close()
				obs = observers{view, status}
			}
		}
	}
	eng, err := runEngine(a, obs, jobs, rollbacks...)
	if err != nil {
		return err
	}
	view.Start()
	res, err := eng.Resume(ctx, id, engine.ResumeRequest{Dir: dir})
	view.Stop()
	switch {
	case errors.Is(err, engine.ErrNotResumable), errors.Is(err, store.ErrRunHeld), errors.Is(err, store.ErrNotFound):
		return usageErr(err)
	case err != nil:
		return err
	}
	view.Summary(res)
	return runOutcome(cmd, a.store, res)
}

// triggered applies the pipeline's on: block.
func triggered(t spec.Triggers, event, branch, base string) bool {
	return t.Match(event, branch, base)
}

func describeBranch(event, branch, base string) string {
	if event == "pull_request" {
		return fmt.Sprintf("a pull request into %q", base)
	}
	if branch == "" {
		return "a detached HEAD"
	}
	return fmt.Sprintf("branch %q", branch)
}
