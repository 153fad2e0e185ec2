package cli

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/spec"
)

func newValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate [FILE]",
		Short: "Check a pipeline file without running it",
		Long: `Check a pipeline file (default .gantry/pipeline.yaml): its fields and types,
step kinds and their inputs, needs (missing steps, cycles), expressions and
the steps, outputs and secrets they refer to. Every problem is reported as
file:line:col. The files and directories steps name in with: must exist in
the repository (the directory holding .gantry/, else the current one) and
stay inside it; a close existing path is suggested. Exit status 0 when
valid, 2 otherwise.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := spec.DefaultPath
			if len(args) == 1 {
				file = args[0]
			}
			file = filepath.Clean(file)
			p, err := spec.Load(file, builtinRegistry(), spec.WithRepository(repoRoot(file)))
			if err != nil {
				return usageErr(err)
			}
			steps := 0
			for _, st := range p.Stages {
				steps += len(st.Steps)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: pipeline %s is valid: %d stages, %d steps\n", file, p.Name, len(p.Stages), steps)
			return err
		},
	}
}

// repoRoot is the repository a pipeline file belongs to: the parent of
// the .gantry directory holding it, else the current directory.
func repoRoot(file string) string {
	if dir := filepath.Dir(file); filepath.Base(dir) == ".gantry" {
		return filepath.Dir(dir)
	}
	return "."
}
