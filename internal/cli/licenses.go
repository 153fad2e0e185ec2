package cli

import (
	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/steps/licensecheck"
)

func newLicensesCmd(g *options.Global) *cobra.Command {
	var sarif, policy, artifacts string
	sf := &oneOffFlags{}
	cmd := &cobra.Command{
		Use:   "licenses [DIR]",
		Short: "Check the licences of a Go module's dependencies against the repository's policy",
		Long: `Run the license-check step on its own: list the modules the Go module in DIR
(default ".") builds with, classify the licence files in the module cache,
and evaluate the CEL policy in DIR/.gantry/licenses.yaml (or --policy).
It runs as a one-step pipeline through the engine, as gantry run would run
the step: recorded in gantry runs, cached when unchanged, --secret NAME masked.
Exit status: 0 no violations, 1 violations, 2 bad usage or a bad policy file.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			with := map[string]any{}
			if policy != "" {
				with["policy"] = policy
			}
			job := &oneOff{command: "licenses", stage: "security", dir: dir, secrets: sf.secrets,
				steps: []oneOffStep{{name: "licenses", uses: licensecheck.Kind.Name, with: with}}}
			r, err := job.run(cmd, g)
			if err != nil {
				return err
			}
			defer r.close()
			if sarif != "" {
				if err := r.saveArtifact(licensecheck.Kind.Name+".sarif", sarif); err != nil && r.step("licenses").Outputs != nil {
					return err
				}
			}
			if artifacts != "" {
				if err := r.saveArtifacts(artifacts); err != nil {
					return err
				}
			}
			// A step that failed with a verdict recorded its counts; one
			// that failed without (a bad policy file) is bad usage.
			if r.step("licenses").Outputs == nil {
				return r.failure(ExitUsage)
			}
			return r.failure(ExitFailed)
		},
	}
	cmd.Flags().StringVar(&sarif, "sarif", "", "write the violations as SARIF 2.1.0 to this file")
	cmd.Flags().StringVar(&policy, "policy", "", "policy file relative to DIR (default .gantry/licenses.yaml)")
	cmd.Flags().StringVar(&artifacts, "artifacts", "", "write licenses.json to this directory")
	sf.addFlags(cmd.Flags())
	return cmd
}
