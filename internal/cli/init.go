package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/scaffold"
)

func newInitCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Write the seed pipeline and its config files into a repository",
		Long: `Write .gantry/pipeline.yaml (the five-stage seed pipeline), .golangci.yml
and .commitlintrc.json into DIR (default: the current directory). Existing
files are left alone unless --force is given.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				return usageErr(fmt.Errorf("%s is not a directory", dir))
			}
			written, err := scaffold.Write(dir, force)
			if errors.Is(err, scaffold.ErrExists) {
				return usageErr(err)
			}
			if err != nil {
				return err
			}
			for _, p := range written {
				fmt.Fprintln(cmd.OutOrStdout(), "wrote", p)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "next: gantry validate && gantry run")
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	return cmd
}
