// Package cli holds gantry's cobra commands. It turns flags into option
// structs and calls the library packages; only this package prints for the
// user and decides exit codes.
package cli

import (
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
		newInitCmd(),
		newValidateCmd(),
		newRunsCmd(g),
		newShowCmd(g),
		newLogsCmd(g),
		newArtifactsCmd(g),
		newLoadCmd(),
		newAnalysisCmd(),
		newCheckCmd(g),
		newSASTCmd(g),
		newLicensesCmd(g),
		newScanCmd(g),
		newSBOMCmd(),
		newKeysCmd(),
		newSignCmd(g),
		newVerifyCmd(g),
		newVulnDBCmd(g),
	)
	return root
}
