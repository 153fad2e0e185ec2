// Package cli holds gantry's cobra commands. It turns flags into option
// structs and calls the library packages; only this package prints for the
// user and decides exit codes.
package cli

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
)

// New returns the root command.
func New() *cobra.Command {
	g := &options.Global{}
	root := &cobra.Command{
		Use:           "gantry",
		Short:         "Run a supply-chain-secure CI/CD pipeline from one file",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Every command inherits this check of the global flags (no
		// subcommand sets its own PersistentPreRunE).
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return checkCommonFlags(cmd, g) },
	}
	g.AddFlags(root.PersistentFlags())
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	root.AddCommand(
		newVersionCmd(),
		newRegistryCmd(g),
		newTestCmd(g),
		newBuildCmd(g),
		newRunCmd(g),
		newApproveCmd(g),
		newRejectCmd(g),
		newInitCmd(g),
		newValidateCmd(),
		newRunsCmd(g),
		newShowCmd(g),
		newLogsCmd(g),
		newArtifactsCmd(g),
		newLoadCmd(g),
		newAnalysisCmd(),
		newCheckCmd(g),
		newSASTCmd(g),
		newLicensesCmd(g),
		newScanCmd(g),
		newSBOMCmd(g),
		newKeysCmd(),
		newSignCmd(g),
		newVerifyCmd(g),
		newVulnDBCmd(g),
		newServeCmd(g),
		newUserCmd(g),
		newTokenCmd(g),
		newEnvCmd(g),
		newRolloutCmd(g),
		newInfraCmd(g),
		newDeployCmd(g),
		newAdmissionCmd(g),
		newMonitorCmd(g),
	)
	strictArgs(root)
	return root
}

// strictArgs makes argument mistakes bad usage (exit 2) in cmd and every
// command below it: a wrong number of arguments, and an unknown command
// given to a command that only groups others (which cobra would answer
// with its help and exit 0, or with exit 1 at the root).
func strictArgs(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		strictArgs(sub)
	}
	if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
		cmd.Args = cobra.ArbitraryArgs
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return usageErr(unknownCommand(cmd, args[0]))
		}
		return
	}
	if check := cmd.Args; check != nil {
		cmd.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageErr(err)
			}
			return nil
		}
	}
}

func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return errors.New(msg + " (see " + cmd.CommandPath() + " --help)")
}

// checkCommonFlags refuses flag values that would otherwise be silently
// replaced by a default.
func checkCommonFlags(cmd *cobra.Command, g *options.Global) error {
	if cmd.Flags().Changed("state-dir") && strings.TrimSpace(g.StateDir) == "" {
		return usageErr(errors.New("--state-dir is empty; give a directory, or leave the flag out for the default ($GANTRY_STATE_DIR or ~/.local/share/gantry)"))
	}
	if cmd.Flags().Changed("store") {
		if strings.TrimSpace(g.Store) == "" {
			return usageErr(errors.New("--store is empty; give a postgres:// URL, or leave the flag out for $" + options.StoreEnv + " or SQLite in the state dir"))
		}
		if _, err := resolveStore(g); err != nil {
			return err
		}
		// The processes gantry starts (the gantry serve that a deploy
		// starts in the background) record in the same database: they
		// read it from the environment, never from their command line,
		// where other users could read a password.
		if err := os.Setenv(options.StoreEnv, g.Store); err != nil {
			return fmt.Errorf("pass --store on to child processes: %w", err)
		}
	}
	// --jobs (gantry run) defaults to the number of CPUs when not given;
	// given, it must be a real bound.
	if f := cmd.Flags().Lookup("jobs"); f != nil && f.Changed {
		if n, err := strconv.Atoi(f.Value.String()); err != nil || n < 1 {
			return usageErr(fmt.Errorf("--jobs must be at least 1, not %s", f.Value.String()))
		}
	}
	return nil
}
