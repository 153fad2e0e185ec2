package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/checkstep"
	saststep "github.com/gantry-ci/gantry/internal/steps/sast"
)

func newSASTCmd(g *options.Global) *cobra.Command {
	o := &options.SAST{}
	cmd := &cobra.Command{
		Use:   "sast [DIR]",
		Short: "Scan Go code for security issues and the tree and git history for secrets",
		Long: `Run the sast step on its own: gosec's rules over the Go packages under DIR
(default "."), the secrets detector over its files and over the commits
--from..--to of its git repository, and snyk code test when SNYK_TOKEN is set
and snyk is on PATH. Suppress a finding with a comment on its line or the
line above: // gantry:ignore RULE -- reason (the reason is required).
Exit status: 0 clean, 1 findings at or above --fail-on, 2 bad usage.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return runSAST(cmd.Context(), cmd, g, o, dir)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runSAST(ctx context.Context, cmd *cobra.Command, g *options.Global, o *options.SAST, dir string) error {
	with := mapInputs{"fail_on": o.FailOn, "history": o.History, "snyk": o.Snyk, "tests": o.Tests, "secrets": !o.NoSecrets}
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
	st, err := saststep.Kind.New(with)
	if err != nil {
		return usageErr(err)
	}
	stateDir, err := g.ResolveStateDir()
	if err != nil {
		return usageErr(err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return usageErr(err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return usageErr(fmt.Errorf("%s is not a directory", dir))
	}
	tmp, err := os.MkdirTemp("", "gantry-sast-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }() // scratch space; leftovers are harmless
	env := &step.Env{RunID: "sast", Stage: "security", Step: "sast", Dir: abs, TempDir: tmp, StateDir: stateDir,
		Vars: os.Environ(), Stdout: cmd.OutOrStdout(), Git: step.Git{SHA: "HEAD"},
		Artifacts: &fileSink{kind: saststep.Kind.Name, sarif: o.SARIF}}
	_, err = st.Run(ctx, env)
	var fe *checkstep.FailedError
	if errors.As(err, &fe) {
		return failed(err)
	}
	if err != nil {
		return failed(err)
	}
	return nil
}
