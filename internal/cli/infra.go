package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/infra/backend"
	"github.com/gantry-ci/gantry/internal/infra/s3state"
	"github.com/gantry-ci/gantry/internal/infra/tfstate"
	"github.com/gantry-ci/gantry/internal/store"
)

// ExitRefused: gantry infra refused a rollback (no versioning, missing
// version, corrupt state, lineage mismatch, held lock, refused
// credentials, concurrent change, or the user said no); nothing changed.
const ExitRefused = 4

// AuditInfraRollback is the audit log action of a state rollback.
const AuditInfraRollback = "infra.rollback"

func newInfraCmd(g *options.Global) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "infra",
		Short: "Inspect and roll back Terraform state kept in a versioned S3 bucket",
	}
	state := &cobra.Command{
		Use:   "state",
		Short: "Terraform state versions: list, diff, roll back",
		Long: `Reads the backend "s3" block of the Terraform configuration in --dir (with
-backend-config values and the override flags, as terraform init does) and
works on the state object's versions in the bucket, which must have
versioning enabled. Credentials come from the backend's profile or keys,
else the usual AWS chain (environment, shared config, web identity).`,
	}
	state.AddCommand(newInfraVersionsCmd(g), newInfraDiffCmd(g), newInfraRollbackCmd(g))
	cmd.AddCommand(state)
	return cmd
}

// infraClient loads the backend and returns a client for its state.
func infraClient(ctx context.Context, g *options.Global, o *options.InfraBackend, stderr io.Writer) (*s3state.Client, error) {
	cfg, err := backend.Load(o.Dir, o.Pairs())
	if err != nil {
		return nil, usageErr(err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, usageErr(err)
	}
	ws := o.Workspace
	if ws == "" {
		if ws, err = backend.Workspace(o.Dir, os.Getenv("TF_WORKSPACE")); err != nil {
			return nil, usageErr(err)
		}
	}
	c, err := s3state.New(ctx, cfg, ws, s3state.WithLogger(newLogger(g, stderr)))
	if err != nil {
		return nil, usageErr(err)
	}
	return c, nil
}

// infraErr maps a refusal to ExitRefused and says that nothing changed.
func infraErr(err error) error {
	var r *s3state.RefusedError
	if errors.As(err, &r) {
		return &ExitError{Code: ExitRefused, Err: fmt.Errorf("%w (nothing was changed)", err)}
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return err
	}
	return failed(err)
}

type versionJSON struct {
	VersionID        string    `json:"version_id"`
	Time             time.Time `json:"time"`
	Size             int64     `json:"size"`
	Current          bool      `json:"current"`
	DeleteMarker     bool      `json:"delete_marker,omitempty"`
	TerraformVersion string    `json:"terraform_version,omitempty"`
	Serial           *uint64   `json:"serial,omitempty"`
	Lineage          string    `json:"lineage,omitempty"`
	Error            string    `json:"error,omitempty"`
	Added            []string  `json:"added,omitempty"`
	Removed          []string  `json:"removed,omitempty"`
	Changed          []string  `json:"changed,omitempty"`
}

func newInfraVersionsCmd(g *options.Global) *cobra.Command {
	o := &options.InfraBackend{}
	out := &options.Output{}
	var limit int
	cmd := &cobra.Command{
		Use:   "versions [DIR]",
		Short: "List the state's versions with serial, lineage and resource changes",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if cmd.Flags().Changed("dir") {
					return usageErr(errors.New("give the directory as DIR or --dir, not both"))
				}
				o.Dir = args[0]
			}
			if err := out.Validate(); err != nil {
				return usageErr(err)
			}
			if limit < 0 {
				return usageErr(fmt.Errorf("--limit must be 0 (all) or more, not %d", limit))
			}
			ctx := cmd.Context()
			c, err := infraClient(ctx, g, o, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if err := c.CheckVersioning(ctx); err != nil {
				return infraErr(err)
			}
			vs, err := c.Versions(ctx, limit)
			if err != nil {
				return infraErr(err)
			}
			rows := make([]versionJSON, len(vs))
			for i, v := range vs {
				r := versionJSON{VersionID: v.ID, Time: v.Time.UTC(), Size: v.Size, Current: v.Current, DeleteMarker: v.DeleteMarker}
				if v.State != nil {
					serial := v.State.Serial
					r.TerraformVersion, r.Serial, r.Lineage = v.State.TerraformVersion, &serial, v.State.Lineage
					r.Added, r.Removed, r.Changed = v.Changes.Added, v.Changes.Removed, v.Changes.Changed
				} else if v.ParseErr != nil {
					r.Error = v.ParseErr.Error()
				}
				rows[i] = r
			}
			return printAs(cmd.OutOrStdout(), out.Format, rows, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "%s\n", printable(c.Location()))
				fmt.Fprintln(tw, "VERSION ID\tTIME\tSIZE\tTERRAFORM\tSERIAL\tLINEAGE\tCHANGES")
				for i, v := range vs {
					id := v.ID
					if v.Current {
						id += " (current)"
					}
					when := v.Time.UTC().Format(time.RFC3339)
					switch {
					case v.DeleteMarker:
						fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\tdeleted (delete marker)\n", printable(id), when)
					case v.State == nil:
						fmt.Fprintf(tw, "%s\t%s\t%d\t-\t-\t-\tnot a state: %s\n", printable(id), when, v.Size, printable(oneLine(rows[i].Error)))
					default:
						fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\n", printable(id), when, v.Size, printable(v.State.TerraformVersion), v.State.Serial, printable(v.State.Lineage), printable(v.Changes.String()))
					}
				}
			})
		},
	}
	o.AddFlags(cmd.Flags())
	out.AddFlags(cmd.Flags())
	cmd.Flags().IntVar(&limit, "limit", 50, "list at most this many versions, newest first (0: all)")
	return cmd
}

// printable replaces control characters: state files, version IDs and
// lock records are written by others, and must not drive the terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func newInfraDiffCmd(g *options.Global) *cobra.Command {
	o := &options.InfraBackend{}
	cmd := &cobra.Command{
		Use:   "diff V1 V2",
		Short: "Show the resource changes from state version V1 to V2 (either may be \"current\")",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := infraClient(ctx, g, o, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			get := func(id string) (*tfstate.State, string, error) {
				if id == "current" {
					cur, err := c.Current(ctx)
					if err != nil {
						return nil, "", err
					}
					return cur.State, cur.VersionID, nil
				}
				_, st, err := c.Get(ctx, id)
				return st, id, err
			}
			from, fromID, err := get(args[0])
			if err != nil {
				return infraErr(err)
			}
			to, toID, err := get(args[1])
			if err != nil {
				return infraErr(err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s\nfrom %s (serial %d, lineage %s)\n  to %s (serial %d, lineage %s)\n", printable(c.Location()), printable(fromID), from.Serial, printable(from.Lineage), printable(toID), to.Serial, printable(to.Lineage))
			if from.Lineage != to.Lineage {
				fmt.Fprintln(w, "note: the lineages differ: these are versions of different states")
			}
			printChanges(w, from, to, tfstate.Diff(from, to))
			return nil
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func printChanges(w io.Writer, from, to *tfstate.State, c tfstate.Changes) {
	if c.Empty() {
		fmt.Fprintln(w, "no resource changes")
		return
	}
	for _, a := range c.Added {
		fmt.Fprintf(w, "  + %s\n", printable(a))
	}
	for _, a := range c.Removed {
		fmt.Fprintf(w, "  - %s\n", printable(a))
	}
	for _, a := range c.Changed {
		fmt.Fprintf(w, "  ~ %s (%s)\n", printable(a), printable(strings.Join(tfstate.ChangedAttributes(from, to, a), ", ")))
	}
}

// printPlanHint says what terraform plan will make of the restored state:
// changes go from the current state to the restored one.
func printPlanHint(w io.Writer, p *s3state.Plan) {
	c := p.Changes
	if c.Empty() {
		fmt.Fprintln(w, "The restored state records the same resources as the current one: terraform plan should want no changes.")
		return
	}
	fmt.Fprintln(w, "What terraform plan will want once the state is restored:")
	if len(c.Removed) > 0 {
		fmt.Fprintln(w, "  only in the current state: plan will want to CREATE these again if the configuration has them")
		fmt.Fprintln(w, "  (they may still exist: import them or remove them by hand rather than creating duplicates):")
		for _, a := range c.Removed {
			fmt.Fprintf(w, "    + %s\n", printable(a))
		}
	}
	if len(c.Added) > 0 {
		fmt.Fprintln(w, "  only in the restored state: plan takes them as existing, and will want to DESTROY those the configuration no longer has:")
		for _, a := range c.Added {
			fmt.Fprintf(w, "    - %s\n", printable(a))
		}
	}
	if len(c.Changed) > 0 {
		fmt.Fprintln(w, "  recorded differently: plan will compare the configuration with the restored attributes and UPDATE or REPLACE where they differ:")
		for _, a := range c.Changed {
			fmt.Fprintf(w, "    ~ %s (%s)\n", printable(a), printable(strings.Join(tfstate.ChangedAttributes(p.Current.State, p.Target, a), ", ")))
		}
	}
}

func newInfraRollbackCmd(g *options.Global) *cobra.Command {
	o := &options.InfraBackend{}
	r := &options.InfraRollback{}
	cmd := &cobra.Command{
		Use:   "rollback --to-version ID --reason TEXT [--yes]",
		Short: "Restore a state version as the current state (a new version; history is kept)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runInfraRollback(cmd, g, o, r) },
	}
	o.AddFlags(cmd.Flags())
	r.AddFlags(cmd.Flags())
	return cmd
}

func runInfraRollback(cmd *cobra.Command, g *options.Global, o *options.InfraBackend, r *options.InfraRollback) error {
	if err := r.Validate(); err != nil {
		return usageErr(fmt.Errorf("infra state rollback: %w", err))
	}
	_, tty := terminalFd(cmd.InOrStdin())
	if !r.Yes && !tty {
		return usageErr(errors.New("infra state rollback: stdin is not a terminal: pass --yes to roll back without confirmation"))
	}
	ctx := cmd.Context()
	c, err := infraClient(ctx, g, o, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	// The audit log must be writable before anything changes.
	a, err := openApp(ctx, g, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer a.Close()
	p, err := c.Prepare(ctx, r.ToVersion)
	if err != nil {
		return infraErr(err)
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "%s\n  current: version %s, serial %d, lineage %s\n  restore: version %s (serial %d, terraform %s) as serial %d\n",
		printable(p.Location), printable(p.Current.VersionID), p.Current.State.Serial, printable(p.Current.State.Lineage),
		printable(p.TargetID), p.Target.Serial, printable(p.Target.TerraformVersion), p.NewSerial)
	printPlanHint(w, p)
	if !r.Yes {
		fmt.Fprint(w, "Restore this version? Type yes to continue: ")
		line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			return &ExitError{Code: ExitRefused, Err: errors.New("infra state rollback: not confirmed (nothing was changed)")}
		}
	}
	res, err := c.Apply(ctx, p)
	if err != nil && res == nil {
		return infraErr(err)
	}
	detail, _ := json.Marshal(map[string]any{
		"from_version": p.Current.VersionID, "from_serial": p.Current.State.Serial,
		"to_version": p.TargetID, "new_version": res.VersionID, "new_serial": p.NewSerial,
		"lineage": p.Target.Lineage, "reason": r.Reason, "conditional_write": res.Conditional,
	})
	aerr := a.store.Audit(ctx, &store.AuditEntry{Actor: actor(), Action: AuditInfraRollback, Subject: p.Location, Detail: string(detail)})
	if err != nil {
		return failed(err) // written, but the digest was not updated: the error says how to fix it
	}
	if aerr != nil {
		return failed(fmt.Errorf("the state was restored as version %s, but recording it in the audit log failed: %w", res.VersionID, aerr))
	}
	fmt.Fprintf(w, "restored: %s is now version %s (serial %d, content of version %s)\n", p.Location, res.VersionID, p.NewSerial, p.TargetID)
	if !res.Conditional {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning: the server does not support conditional writes; the current version was checked just before writing instead")
	}
	return nil
}

// actor is the login of the user running gantry.
func actor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if s := os.Getenv("USER"); s != "" {
		return s
	}
	return "unknown"
}
