package cli

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/checkstep"
	"github.com/gantry-ci/gantry/internal/steps/licensecheck"
)

func newLicensesCmd(g *options.Global) *cobra.Command {
	var sarif, policy, artifacts string
	cmd := &cobra.Command{
		Use:   "licenses [DIR]",
		Short: "Check the licences of a Go module's dependencies against the repository's policy",
		Long: `Run the license-check step on its own: list the modules the Go module in DIR
(default ".") builds with, classify the licence files in the module cache,
and evaluate the CEL policy in DIR/.gantry/licenses.yaml (or --policy).
Exit status: 0 no violations, 1 violations, 2 bad usage or a bad policy file.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return usageErr(err)
			}
			with := mapInputs{}
			if policy != "" {
				with["policy"] = policy
			}
			st, err := licensecheck.Kind.New(with)
			if err != nil {
				return usageErr(err)
			}
			stateDir, err := g.ResolveStateDir()
			if err != nil {
				return usageErr(err)
			}
			env := &step.Env{RunID: "licenses", Stage: "security", Step: "licenses", Dir: abs, TempDir: os.TempDir(), StateDir: stateDir,
				Vars: os.Environ(), Stdout: cmd.OutOrStdout(),
				Artifacts: &fileSink{kind: licensecheck.Kind.Name, sarif: sarif, dir: artifacts}}
			_, err = st.Run(cmd.Context(), env)
			var fe *checkstep.FailedError
			switch {
			case errors.As(err, &fe):
				return failed(err)
			case err != nil:
				return usageErr(err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&sarif, "sarif", "", "write the violations as SARIF 2.1.0 to this file")
	cmd.Flags().StringVar(&policy, "policy", "", "policy file relative to DIR (default .gantry/licenses.yaml)")
	cmd.Flags().StringVar(&artifacts, "artifacts", "", "write licenses.json to this directory")
	return cmd
}
