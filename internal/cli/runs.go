package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/artifact"
	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/runview"
	"github.com/gantry-ci/gantry/internal/serve"
	"github.com/gantry-ci/gantry/internal/store"
)

func parseRunID(s string) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(s, "#"), 10, 64)
	if err != nil || id <= 0 {
		return 0, usageErr(fmt.Errorf("run id must be a positive number, not %q", s))
	}
	return id, nil
}

// openRun parses a RUN argument, opens the state dir and loads the run;
// a malformed id or a run that does not exist is bad usage (exit 2). The
// caller closes the app.
func openRun(cmd *cobra.Command, g *options.Global, arg string) (*app, *store.Run, error) {
	id, err := parseRunID(arg)
	if err != nil {
		return nil, nil, err
	}
	a, err := openApp(cmd.Context(), g, cmd.ErrOrStderr())
	if err != nil {
		return nil, nil, err
	}
	r, err := a.store.GetRun(cmd.Context(), id)
	if err != nil {
		a.Close()
		return nil, nil, notFound(err)
	}
	return a, r, nil
}

func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return usageErr(err)
	}
	return err
}

func newRunsCmd(g *options.Global) *cobra.Command {
	out := &options.Output{}
	remote := &options.Remote{}
	var pipeline, status string
	var limit int
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List recorded runs, newest first",
		Long: `List recorded runs, newest first: those of the local state dir, or with
--server URL those of a gantry server (the output is the same).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Validate(); err != nil {
				return usageErr(err)
			}
			if err := remote.Validate(); err != nil {
				return usageErr(err)
			}
			if err := checkRunStatus(status); err != nil {
				return usageErr(err)
			}
			if limit < 0 {
				return usageErr(fmt.Errorf("--limit must be 0 (all) or more, not %d", limit))
			}
			views, err := listRuns(cmd, g, remote, store.ListOptions{Pipeline: pipeline, Status: store.Status(status), Limit: limit})
			if err != nil {
				return err
			}
			return printAs(cmd.OutOrStdout(), out.Format, views, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tPIPELINE\tSTATUS\tEVENT\tBRANCH\tCOMMIT\tSTARTED\tDURATION")
				for _, r := range views {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, terminalSafe(r.Pipeline), r.Status, terminalSafe(r.Event),
						dash(terminalSafe(r.Branch)), dash(shortSHA(terminalSafe(r.SHA))), r.Started.Local().Format("2006-01-02 15:04:05"), viewDuration(r))
				}
			})
		},
	}
	out.AddFlags(cmd.Flags())
	remote.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&pipeline, "pipeline", "", "only runs of this pipeline")
	cmd.Flags().StringVar(&status, "status", "", "only runs with this status")
	cmd.Flags().IntVar(&limit, "limit", 20, "show at most this many runs (0 = all)")
	return cmd
}

// listRuns reads the runs opt selects, from the server when remote is
// enabled, else from the state dir.
func listRuns(cmd *cobra.Command, g *options.Global, remote *options.Remote, opt store.ListOptions) ([]runView, error) {
	ctx := cmd.Context()
	if remote.Enabled() {
		c, err := dialRemote(remote)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		runs, err := c.ListRuns(ctx, serve.RunFilter{Pipeline: opt.Pipeline, Status: string(opt.Status), Limit: opt.Limit})
		return runs, remoteErr(err)
	}
	a, err := openApp(ctx, g, cmd.ErrOrStderr())
	if err != nil {
		return nil, err
	}
	defer a.Close()
	// Approvals past their deadline are rejected when looked at.
	if _, err := a.store.ExpireApprovals(ctx, time.Now()); err != nil {
		return nil, err
	}
	runs, err := a.store.ListRuns(ctx, opt)
	if err != nil {
		return nil, err
	}
	views := make([]runView, len(runs))
	for i, r := range runs {
		views[i] = newRunView(r)
	}
	return views, nil
}

// runStatuses are the statuses a run can have, for `runs --status`.
var runStatuses = []store.Status{
	store.StatusRunning, store.StatusWaiting, store.StatusPassed, store.StatusFailed,
	store.StatusRejected, store.StatusCancelled, store.StatusInterrupted,
}

func checkRunStatus(s string) error {
	if s == "" {
		return nil
	}
	names := make([]string, len(runStatuses))
	for i, st := range runStatuses {
		if string(st) == s {
			return nil
		}
		names[i] = string(st)
	}
	return fmt.Errorf("--status must be one of %s, not %q", strings.Join(names, ", "), s)
}

// The views of runs are shared with the server's API (internal/runview),
// so that the local commands and --server print the same thing.
type (
	runView      = runview.Run
	stageView    = runview.Stage
	stepJSON     = runview.Step
	artifactJSON = runview.Artifact
	showView     = runview.Show
	approvalView = runview.Approval
)

func newRunView(r store.Run) runView { return runview.NewRun(r) }

func newShowCmd(g *options.Global) *cobra.Command {
	out := &options.Output{}
	remote := &options.Remote{}
	cmd := &cobra.Command{
		Use:   "show RUN",
		Short: "Show a run: its stages, steps, gates, outputs and artifacts",
		Long: `Show a run: its stages, steps, gates, outputs and artifacts, and its
approvals with what the decider is asked to approve. With --server URL,
a run of a gantry server (the output is the same).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.Validate(); err != nil {
				return usageErr(err)
			}
			if err := remote.Validate(); err != nil {
				return usageErr(err)
			}
			v, err := showRun(cmd, g, remote, args[0])
			if err != nil {
				return err
			}
			return printAs(cmd.OutOrStdout(), out.Format, v, func(tw *tabwriter.Writer) {
				writeShowTable(tw, v)
			})
		},
	}
	out.AddFlags(cmd.Flags())
	remote.AddFlags(cmd.Flags())
	return cmd
}

// showRun reads run arg's view, from the server when remote is enabled.
func showRun(cmd *cobra.Command, g *options.Global, remote *options.Remote, arg string) (*showView, error) {
	if remote.Enabled() {
		id, err := parseRunID(arg)
		if err != nil {
			return nil, err
		}
		c, err := dialRemote(remote)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		v, err := c.Run(cmd.Context(), id)
		return v, remoteErr(err)
	}
	a, r, err := openRun(cmd, g, arg)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	return loadShow(cmd, a, r)
}

func loadShow(cmd *cobra.Command, a *app, r *store.Run) (*showView, error) {
	return runview.Load(cmd.Context(), a.store, r)
}

// writeApprovalBrief writes what an approver is asked to approve: the
// image digest, each stage's verdict with its gate, and the results
// (step summaries) of the last stage that passed — the staging stage in
// the seed's pipeline.
func writeApprovalBrief(tw *tabwriter.Writer, indent string, verdicts []engine.StageVerdict, digest string) {
	fmt.Fprintf(tw, "%simage\t%s\n", indent, dash(digest))
	var last *engine.StageVerdict
	for i, v := range verdicts {
		if v.Status == string(store.StatusWaiting) {
			continue
		}
		gate := ""
		if v.Gate != "" && v.GatePassed != nil {
			gate = fmt.Sprintf(" (gate %s: %s)", v.Gate, map[bool]string{true: "passed", false: "failed"}[*v.GatePassed])
		}
		fmt.Fprintf(tw, "%sevidence\t%s %s%s\n", indent, terminalSafe(v.Stage), v.Status, terminalSafe(gate))
		if v.Status == string(store.StatusPassed) {
			last = &verdicts[i]
		}
	}
	if last == nil {
		return
	}
	for _, s := range last.Steps {
		line := s.Status
		if s.Summary != "" {
			line += ": " + s.Summary
		}
		fmt.Fprintf(tw, "%sresults of %s\t%s %s\n", indent, terminalSafe(last.Stage), terminalSafe(s.Name), terminalSafe(firstLineOf(line)))
	}
}

func writeShowTable(tw *tabwriter.Writer, v *showView) {
	fmt.Fprintf(tw, "run %d\t%s\t%s\n", v.ID, v.Pipeline, v.Status)
	if v.Message != "" {
		fmt.Fprintf(tw, "message\t%s\n", v.Message)
	}
	fmt.Fprintf(tw, "commit\t%s (%s %s)\n", dash(v.SHA), v.Event, dash(v.Branch))
	fmt.Fprintf(tw, "dir\t%s\n", v.Dir)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "STAGE/STEP\tKIND\tSTATUS\tDURATION\tDETAIL")
	for _, st := range v.Stages {
		detail := st.Message
		if st.Gate != "" {
			detail = strings.TrimSpace("gate " + st.Gate + "; " + detail)
		}
		fmt.Fprintf(tw, "%s\t\t%s\t%s\t%s\n", st.Name, st.Status, secs(st.Duration), firstLineOf(detail))
		for _, s := range st.Steps {
			detail := s.Message
			if detail == "" {
				detail = s.Summary
			}
			if s.CachedFrom != 0 {
				detail = strings.TrimSpace(fmt.Sprintf("from run %d; %s", s.CachedFrom, detail))
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", s.Name, s.Kind, s.Status, secs(s.Duration), firstLineOf(detail))
			keys := make([]string, 0, len(s.Outputs))
			for k := range s.Outputs {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				val := fmt.Sprint(s.Outputs[k])
				if len(val) > 80 {
					val = val[:77] + "..."
				}
				fmt.Fprintf(tw, "    · %s\t\t\t\t%s\n", k, val)
			}
		}
	}
	for _, ap := range v.Approvals {
		fmt.Fprintln(tw)
		who := "anyone"
		if len(ap.Roles) > 0 {
			who = "role " + strings.Join(ap.Roles, " or ")
		}
		line := fmt.Sprintf("approval of %s\t%s, by %s", ap.Stage, ap.Status, who)
		if ap.Actor != "" {
			line += fmt.Sprintf(": %s %s", terminalSafe(ap.Actor), terminalSafe(ap.Comment))
		}
		if ap.Deadline != nil && ap.Status == store.ApprovalPending {
			line += " until " + ap.Deadline.Local().Format(time.RFC3339)
		}
		fmt.Fprintln(tw, strings.TrimSpace(line))
		writeApprovalBrief(tw, "  ", ap.Evidence, ap.Digest)
		if ap.Status == store.ApprovalPending {
			fmt.Fprintf(tw, "  approve\tgantry approve %d --stage %s\n", v.ID, ap.Stage)
		}
	}
}

func newLogsCmd(g *options.Global) *cobra.Command {
	var follow bool
	remote := &options.Remote{}
	cmd := &cobra.Command{
		Use:   "logs RUN [STEP]",
		Short: "Print a run's logs, or one step's (STEP as stage/step or a unique step name)",
		Long: `Print a run's logs, or one step's (STEP as stage/step or a unique step
name). With -f, keep printing new lines until the run ends or waits for
an approval. With --server URL, the logs of a run of a gantry server,
followed over Server-Sent Events (the output is the same).`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := remote.Validate(); err != nil {
				return usageErr(err)
			}
			if remote.Enabled() {
				return remoteLogs(cmd, remote, args, follow)
			}
			a, r, err := openRun(cmd, g, args[0])
			if err != nil {
				return err
			}
			defer a.Close()
			id := r.ID
			stage, stepName := "", ""
			if len(args) == 2 {
				stage, stepName, err = findStep(cmd, a, id, args[1])
				if err != nil {
					return err
				}
			}
			return printLogs(cmd.Context(), cmd.OutOrStdout(), a.store, id, stage, stepName, follow, followInterval)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines until the run ends")
	remote.AddFlags(cmd.Flags())
	return cmd
}

// remoteLogs prints the logs of a run of the server, as printLogs does.
func remoteLogs(cmd *cobra.Command, remote *options.Remote, args []string, follow bool) error {
	ctx := cmd.Context()
	id, err := parseRunID(args[0])
	if err != nil {
		return err
	}
	c, err := dialRemote(remote)
	if err != nil {
		return err
	}
	defer c.Close()
	stage, stepName := "", ""
	if len(args) == 2 {
		v, err := c.Run(ctx, id)
		if err != nil {
			return remoteErr(err)
		}
		if stage, stepName, err = remoteStep(v, args[1]); err != nil {
			return err
		}
	}
	w, prefix := cmd.OutOrStdout(), stage == ""
	if follow {
		_, err := c.FollowLogs(ctx, id, stage, stepName, func(l runview.LogLine) { writeLogLine(w, l.Line(), prefix) })
		return remoteErr(err)
	}
	lines, err := c.RunLogs(ctx, id, stage, stepName)
	if err != nil {
		return remoteErr(err)
	}
	for _, l := range lines {
		writeLogLine(w, l.Line(), prefix)
	}
	return nil
}

func findStep(cmd *cobra.Command, a *app, id int64, arg string) (string, string, error) {
	steps, err := a.store.Steps(cmd.Context(), id)
	if err != nil {
		return "", "", err
	}
	return matchStep(steps, id, arg)
}

// matchStep finds STEP (stage/step or a unique step name) among steps.
func matchStep(steps []store.Step, id int64, arg string) (string, string, error) {
	if stage, name, ok := strings.Cut(arg, "/"); ok {
		for _, s := range steps {
			if s.Stage == stage && s.Name == name {
				return stage, name, nil
			}
		}
		return "", "", usageErr(fmt.Errorf("run %d has no step %s", id, arg))
	}
	var matches []store.Step
	for _, s := range steps {
		if s.Name == arg {
			matches = append(matches, s)
		}
	}
	switch len(matches) {
	case 0:
		return "", "", usageErr(fmt.Errorf("run %d has no step %s", id, arg))
	case 1:
		return matches[0].Stage, matches[0].Name, nil
	}
	return "", "", usageErr(fmt.Errorf("step name %s is in several stages of run %d; write it as stage/step", arg, id))
}

// followInterval is how often `gantry logs -f` looks for new lines.
const followInterval = 300 * time.Millisecond

// logSource is what printing a run's log reads.
type logSource interface {
	Logs(ctx context.Context, runID int64, stage, step string, afterSeq int64) ([]store.LogLine, error)
	LogsAfter(ctx context.Context, runID int64, stage, step string, cursor int64) ([]store.LogLine, int64, error)
	GetRun(ctx context.Context, id int64) (*store.Run, error)
}

// printLogs prints the run's log (one step's when stage and step are set).
// Following, it polls every interval for the lines appended since the last
// read until the run ends or waits for approval.
func printLogs(ctx context.Context, w io.Writer, src logSource, id int64, stage, step string, follow bool, interval time.Duration) error {
	prefix := stage == ""
	if !follow {
		lines, err := src.Logs(ctx, id, stage, step, 0)
		if err != nil {
			return err
		}
		for _, l := range lines {
			writeLogLine(w, l, prefix)
		}
		return nil
	}
	var cursor int64
	drain := func() error {
		lines, next, err := src.LogsAfter(ctx, id, stage, step, cursor)
		if err != nil {
			return err
		}
		cursor = next
		for _, l := range lines {
			writeLogLine(w, l, prefix)
		}
		return nil
	}
	for {
		if err := drain(); err != nil {
			return err
		}
		r, err := src.GetRun(ctx, id)
		if err != nil {
			return err
		}
		if r.Status.Done() || r.Status == store.StatusWaiting {
			return drain() // lines flushed just before the end
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

func writeLogLine(w io.Writer, l store.LogLine, prefix bool) {
	text := l.Text
	if l.Stream == "sys" {
		text = "» " + text
	}
	if prefix {
		fmt.Fprintf(w, "[%s/%s] %s\n", l.Stage, l.Step, text)
		return
	}
	fmt.Fprintln(w, text)
}

func newArtifactsCmd(g *options.Global) *cobra.Command {
	out := &options.Output{}
	var get, to string
	var force bool
	cmd := &cobra.Command{
		Use:   "artifacts RUN [--get NAME --to PATH [--force]]",
		Short: "List a run's artifacts, or copy one out",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.Validate(); err != nil {
				return usageErr(err)
			}
			if (get == "") != (to == "") {
				return usageErr(errors.New("--get and --to go together"))
			}
			if force && get == "" {
				return usageErr(errors.New("--force goes with --get and --to"))
			}
			a, r, err := openRun(cmd, g, args[0])
			if err != nil {
				return err
			}
			defer a.Close()
			id := r.ID
			arts, err := a.store.Artifacts(cmd.Context(), id)
			if err != nil {
				return err
			}
			if get != "" {
				return copyArtifact(cmd, a, id, arts, get, to, force)
			}
			views := make([]artifactJSON, len(arts))
			for i, art := range arts {
				views[i] = artifactJSON{Stage: art.Stage, Step: art.Step, Name: art.Name, Digest: art.Digest, Size: art.Size, MediaType: art.MediaType}
			}
			return printAs(cmd.OutOrStdout(), out.Format, views, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "STEP\tNAME\tSIZE\tTYPE\tDIGEST")
				for _, v := range views {
					fmt.Fprintf(tw, "%s/%s\t%s\t%d\t%s\t%s\n", v.Stage, v.Step, v.Name, v.Size, v.MediaType, shortDigest(v.Digest))
				}
			})
		},
	}
	out.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&get, "get", "", "artifact to copy out: NAME, or stage/step/NAME when names repeat")
	cmd.Flags().StringVar(&to, "to", "", "where to write the artifact (a file path, a directory, or - for stdout)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing regular file at --to (keeping its mode)")
	return cmd
}

func copyArtifact(cmd *cobra.Command, a *app, id int64, arts []store.Artifact, name, to string, force bool) error {
	var matches []store.Artifact
	for _, art := range arts {
		if art.Name == name || art.Stage+"/"+art.Step+"/"+art.Name == name {
			matches = append(matches, art)
		}
	}
	switch len(matches) {
	case 0:
		return usageErr(fmt.Errorf("run %d has no artifact %q", id, name))
	case 1:
	default:
		return usageErr(fmt.Errorf("several steps of run %d have an artifact %q; name it as stage/step/%s", id, name, name))
	}
	if to == "-" {
		rc, err := a.artifacts.Open(matches[0].Digest)
		if err != nil {
			return fmt.Errorf("artifact %s: %w", name, err)
		}
		defer rc.Close()
		_, err = io.Copy(cmd.OutOrStdout(), rc)
		return err
	}
	path, err := a.artifacts.Export(cmd.Context(), matches[0].Digest, to, matches[0].Name, force)
	if errors.Is(err, artifact.ErrNotRegular) || errors.Is(err, artifact.ErrSymlink) || errors.Is(err, artifact.ErrExists) {
		return usageErr(err)
	}
	if err != nil {
		return fmt.Errorf("artifact %s: %w", name, err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d bytes, %s)\n", path, matches[0].Size, matches[0].Digest)
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shortSHA(s string) string {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

// viewDuration is the duration column of a run.
func viewDuration(r runView) string {
	if r.Finished == nil {
		if r.Status == store.StatusRunning {
			return fmtDur(time.Since(r.Started)) + "…"
		}
		return "-"
	}
	return fmtDur(r.Finished.Sub(r.Started))
}

func secs(s float64) string {
	if s <= 0 {
		return "-"
	}
	return fmtDur(time.Duration(s * float64(time.Second)))
}
