package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/scaffold"
	"github.com/gantry-ci/gantry/internal/steps/vulnscan"
)

func newInitCmd(g *options.Global) *cobra.Command {
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

init measures the repository once so the first run passes on the code as
it is: it runs the tests with coverage (the gate is set at the measured
coverage, rounded down, when below 80), gosec, the vulnerability scan of
the dependencies and the licence policy. Existing lint issues and commit
messages before HEAD are not judged; gosec rules with findings are
excluded; vulnerabilities and licences found are recorded as exceptions
that expire in 30 days. Each relaxation is a comment in the file and a
line of the report, saying how to tighten it. --no-measure runs nothing.

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
			return runInit(cmd, g, o, dir)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runInit(cmd *cobra.Command, g *options.Global, o *options.Init, dir string) error {
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
	out := cmd.OutOrStdout()
	gopts := scaffold.Options{Name: filepath.Base(abs), DefaultBranch: defaultBranch(abs), Head: scaffold.Head(cmd.Context(), abs), Owner: gitOwner(cmd.Context(), abs)}
	if !o.NoMeasure && repo.Module != nil {
		// The report goes to stderr on --dry-run, whose stdout is the file.
		progress := out
		if o.DryRun {
			progress = cmd.ErrOrStderr()
		}
		fmt.Fprintln(progress, "measuring: go test -race with coverage, gosec, vulnerabilities, licences (--no-measure skips this)")
		m, err := scaffold.Measure(cmd.Context(), abs, repo, scaffold.MeasureOptions{
			Race: true, VulnDB: initVulnDB(g), Log: indent(progress),
		})
		if err != nil {
			return err
		}
		gopts.Measured = m
	}
	plan := scaffold.Generate(repo, gopts)
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
		b.WriteString("notes (what was not generated or measured, and what fails today):\n")
		for _, n := range plan.Notes {
			fmt.Fprintf(&b, "  %s\n", n)
		}
	}
	if len(plan.Relaxed) > 0 {
		b.WriteString("relaxed (the repository does not pass these today; each is a comment in the file):\n")
		for _, r := range plan.Relaxed {
			fmt.Fprintf(&b, "  %s\n", r)
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

// initVulnDB is the vulnerability database init reads without fetching:
// GANTRY_VULN_DB, else the state dir's; "" when there is none yet.
func initVulnDB(g *options.Global) string {
	dir, err := g.ResolveStateDir()
	if err != nil {
		dir = ""
	}
	p, err := vulnscan.DBPath("", os.Environ(), dir)
	if err != nil {
		return ""
	}
	return p
}

// gitOwner is the owner of the exceptions init records: git's user.email
// in dir, else "".
func gitOwner(ctx context.Context, dir string) string {
	cmd := exec.CommandContext(ctx, "git", "config", "user.email")
	cmd.Dir = dir
	b, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// indent prefixes each line written to w with two spaces.
func indent(w io.Writer) io.Writer { return &indentWriter{w: w, start: true} }

type indentWriter struct {
	w     io.Writer
	start bool
}

func (iw *indentWriter) Write(p []byte) (int, error) {
	var b []byte
	for _, c := range p {
		if iw.start {
			b = append(b, ' ', ' ')
		}
		b = append(b, c)
		iw.start = c == '\n'
	}
	if _, err := iw.w.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}
