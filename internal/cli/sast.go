package cli

import (
	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	saststep "github.com/gantry-ci/gantry/internal/steps/sast"
)

func newSASTCmd(g *options.Global) *cobra.Command {
	o := &options.SAST{}
	sf := &oneOffFlags{}
	cmd := &cobra.Command{
		Use:   "sast [DIR]",
		Short: "Scan Go code for security issues and the tree and git history for secrets",
		Long: `Run the sast step on its own: gosec's rules over the Go packages under DIR
(default "."), the secrets detector over its files and over the commits
--from..--to of its git repository, and snyk code test when SNYK_TOKEN is set
and snyk is on PATH. Suppress a finding with a comment on its line or the
line above: // gantry:ignore RULE -- reason (the reason is required).
It runs as a one-step pipeline through the engine, as gantry run would run
the step: recorded in gantry runs, cached when unchanged, --secret NAME masked.
Exit status: 0 clean, 1 findings at or above --fail-on, 2 bad usage.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return runSAST(cmd, g, o, sf, dir)
		},
	}
	o.AddFlags(cmd.Flags())
	sf.addFlags(cmd.Flags())
	return cmd
}

func runSAST(cmd *cobra.Command, g *options.Global, o *options.SAST, sf *oneOffFlags, dir string) error {
	with := map[string]any{"fail_on": o.FailOn, "history": o.History, "snyk": o.Snyk, "tests": o.Tests, "secrets": !o.NoSecrets}
	if len(o.Rules) > 0 {
		with["rules"] = o.Rules
	}
	if len(o.ExcludeRules) > 0 {
		with["exclude_rules"] = o.ExcludeRules
	}
	if o.From != "" {
		with["from"] = o.From
	}
	if o.To != "" {
		with["to"] = o.To
	}
	job := &oneOff{command: "sast", stage: "security", dir: dir, secrets: sf.secrets,
		steps: []oneOffStep{{name: "sast", uses: saststep.Kind.Name, with: with}}}
	r, err := job.run(cmd, g)
	if err != nil {
		return err
	}
	defer r.close()
	if o.SARIF != "" {
		if err := r.saveArtifact(saststep.Kind.Name+".sarif", o.SARIF); err != nil {
			return err
		}
	}
	return r.failure(ExitFailed)
}
