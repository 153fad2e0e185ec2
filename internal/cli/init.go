package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/scaffold"
)

func newInitCmd() *cobra.Command {
	o := &options.Init{}
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Write a pipeline for what a repository holds",
		Long: `Look at the repository in DIR (default: the current directory) and write
.gantry/pipeline.yaml for what it finds: Go modules (lint, race tests with a
coverage gate, an image of each main package), tests behind build tags and
the services their go.mod requirements point at (PostgreSQL, Redis, SQS),
Terraform directories, Helm charts, kustomize overlays, Kubernetes
manifests. Each step carries a comment naming the file it was made for.
A .golangci.yml is added only when tagged tests need it and none exists.

It prints what it found and what it wrote. Existing files are left alone
unless --force is given; --dry-run prints the pipeline and writes nothing.
Exit status 0 on success, 2 when DIR is not a directory or a file exists.`,
		Example: `  gantry init
  gantry init --dry-run ../my-service
  gantry init --force && gantry validate && gantry run`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return runInit(cmd, o, dir)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runInit(cmd *cobra.Command, o *options.Init, dir string) error {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return usageErr(fmt.Errorf("%s is not a directory", dir))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return usageErr(err)
	}
	repo, err := scaffold.Detect(cmd.Context(), abs)
	if err != nil {
		return err
	}
	plan := scaffold.Generate(repo, scaffold.Options{Name: filepath.Base(abs), DefaultBranch: defaultBranch(abs)})
	out := cmd.OutOrStdout()
	if o.DryRun {
		for _, f := range plan.Files() {
			fmt.Fprintf(out, "# --- %s\n", f.Path)
			if _, err := out.Write(f.Content); err != nil {
				return err
			}
		}
		return printPlan(cmd.ErrOrStderr(), plan, nil)
	}
	written, err := scaffold.Write(abs, plan, o.Force)
	if errors.Is(err, scaffold.ErrExists) {
		return usageErr(err)
	}
	if err != nil {
		return err
	}
	if err := printPlan(out, plan, written); err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, "next: gantry validate && gantry run")
	return err
}

func printPlan(w io.Writer, plan *scaffold.Plan, written []string) error {
	var b strings.Builder
	b.WriteString("found:\n")
	if len(plan.Found) == 0 {
		b.WriteString("  nothing gantry builds yet\n")
	}
	for _, f := range plan.Found {
		fmt.Fprintf(&b, "  %s\n", f)
	}
	if len(plan.Notes) > 0 {
		b.WriteString("not generated:\n")
		for _, n := range plan.Notes {
			fmt.Fprintf(&b, "  %s\n", n)
		}
	}
	for _, p := range written {
		fmt.Fprintf(&b, "wrote %s\n", p)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// defaultBranch is the branch HEAD names when it is main or master (the
// pull-request target), else "".
func defaultBranch(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, ".git", "HEAD"))
	if err != nil {
		return ""
	}
	ref := strings.TrimSpace(strings.TrimPrefix(string(b), "ref: refs/heads/"))
	if ref == "main" || ref == "master" {
		return ref
	}
	return ""
}
