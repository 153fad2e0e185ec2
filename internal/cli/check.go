package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/internal/cli/options"
	cl "github.com/gantry-ci/gantry/internal/commitlint"
	"github.com/gantry-ci/gantry/internal/findings"
	clstep "github.com/gantry-ci/gantry/internal/steps/commitlint"
)

// checkKinds are the kinds `gantry check` runs.
var checkKinds = []string{"golangci-lint", "terraform-fmt", "tflint", "kubeconform", "helm-lint", "helm-template", "commitlint", "next-version"}

func newCheckCmd(g *options.Global) *cobra.Command {
	o := &options.Check{}
	sf := &oneOffFlags{}
	cmd := &cobra.Command{
		Use:   "check KIND [PATH...]",
		Short: "Run one commit-stage check on its own",
		Long: `Run one commit-stage check outside a pipeline: ` + strings.Join(checkKinds, ", ") + `.

PATH is the module (golangci-lint), Terraform directory (terraform-fmt,
tflint), manifest files or directories (kubeconform), chart (helm-lint,
helm-template) or repository (commitlint, next-version); default ".".
commitlint lints --from..--to, the --edit file, or one message on standard
input.
It runs as a one-step pipeline through the engine, as gantry run would run
the step: recorded in gantry runs, cached when unchanged, --secret NAME masked.
Exit status: 0 clean, 1 findings at or above --fail-on, 2 bad usage.`,
		Args:      cobra.MinimumNArgs(1),
		ValidArgs: checkKinds,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd, g, o, sf, args[0], args[1:])
		},
	}
	o.AddFlags(cmd.Flags())
	sf.addFlags(cmd.Flags())
	return cmd
}

func runCheck(cmd *cobra.Command, g *options.Global, o *options.Check, sf *oneOffFlags, kind string, paths []string) error {
	if !slices.Contains(checkKinds, kind) {
		return usageErr(fmt.Errorf("unknown check %q (want one of %s)", kind, strings.Join(checkKinds, ", ")))
	}
	if _, err := findings.ParseSeverity(o.FailOn); err != nil {
		return usageErr(fmt.Errorf("--fail-on: %w", err))
	}
	if kind == "commitlint" && o.From == "" && o.To == "" {
		return lintMessage(cmd, o, paths)
	}
	dir, with, err := checkInputs(kind, o, paths)
	if err != nil {
		return usageErr(err)
	}
	job := &oneOff{command: "check " + kind, stage: "check", dir: dir, secrets: sf.secrets,
		steps: []oneOffStep{{name: kind, uses: kind, with: with}}}
	r, err := job.run(cmd, g)
	if err != nil {
		return err
	}
	defer r.close()
	for _, art := range r.arts {
		switch {
		case art.Name == kind+".sarif" && o.SARIF != "":
			err = r.saveArtifact(art.Name, o.SARIF)
		case o.Artifacts != "":
			if err = os.MkdirAll(o.Artifacts, 0o755); err == nil {
				err = r.saveArtifact(art.Name, filepath.Join(o.Artifacts, filepath.Base(art.Name)))
			}
		}
		if err != nil {
			return err
		}
	}
	if err := r.failure(ExitFailed); err != nil {
		return err
	}
	if kind == "next-version" {
		b, err := json.Marshal(r.step(kind).Outputs)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
		return err
	}
	return nil
}

// checkInputs maps PATH and flags to the kind's `with:` block and the
// workspace the step runs in: the PATH of a kind that checks one
// directory, else the directory holding every path named (the current
// one when they are all inside it), with the paths made relative to it.
func checkInputs(kind string, o *options.Check, paths []string) (string, map[string]any, error) {
	first := "."
	if len(paths) > 0 {
		first = paths[0]
	}
	one := func() error {
		if len(paths) > 1 {
			return fmt.Errorf("%s takes one PATH", kind)
		}
		return nil
	}
	with := map[string]any{}
	if kind != "next-version" {
		with["fail_on"] = o.FailOn
	}
	switch kind {
	case "golangci-lint", "tflint":
		if o.Config != "" {
			with["config"] = o.Config
		}
		return first, with, one()
	case "terraform-fmt", "commitlint", "next-version":
		if kind == "commitlint" {
			if o.From != "" {
				with["from"] = o.From
			}
			if o.To != "" {
				with["to"] = o.To
			}
		}
		return first, with, one()
	case "kubeconform":
		values := slices.Concat(paths, o.Kustomize, o.Helm, o.Values, o.CRDs)
		ws, rel := commonDir(values)
		if len(paths) > 0 {
			with["paths"] = mapStrings(paths, rel)
		}
		if len(o.Kustomize) > 0 {
			with["kustomize"] = mapStrings(o.Kustomize, rel)
		}
		var charts []map[string]any
		for _, h := range o.Helm {
			charts = append(charts, map[string]any{"chart": rel(h), "values": mapStrings(o.Values, rel), "set": o.Set})
		}
		if charts != nil {
			with["helm"] = charts
		}
		if len(o.CRDs) > 0 {
			with["crds"] = mapStrings(o.CRDs, rel)
		}
		with["unknown_kinds"] = o.UnknownKinds
		if len(o.SkipKinds) > 0 {
			with["skip_kinds"] = o.SkipKinds
		}
		return ws, with, nil
	case "helm-lint", "helm-template":
		ws, rel := commonDir(append([]string{first}, o.Values...))
		with["chart"] = rel(first)
		if len(o.Values) > 0 {
			with["values"] = mapStrings(o.Values, rel)
		}
		if len(o.Set) > 0 {
			with["set"] = o.Set
		}
		if kind == "helm-lint" && o.Strict {
			with["strict"] = true
		}
		if kind == "helm-template" {
			with["unknown_kinds"] = o.UnknownKinds
		}
		return ws, with, one()
	}
	return "", nil, fmt.Errorf("unknown check %q", kind)
}

func mapStrings(in []string, f func(string) string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = f(s)
	}
	return out
}

// commonDir returns the workspace for paths given on the command line
// and how to name each of them inside it: the current directory when
// every path is inside it, else the nearest existing directory holding
// them all (paths that leave a repository are refused in a pipeline, and
// a one-off step is one).
func commonDir(paths []string) (string, func(string) string) {
	cwd, err := os.Getwd()
	if err != nil {
		return ".", func(p string) string { return p }
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(cwd, p)
	}
	ws := cwd
	for _, p := range paths {
		for !within(ws, abs(p)) {
			ws = filepath.Dir(ws)
		}
	}
	for {
		if fi, err := os.Stat(ws); err == nil && fi.IsDir() {
			break
		}
		ws = filepath.Dir(ws)
	}
	return ws, func(p string) string {
		rel, err := filepath.Rel(ws, abs(p))
		if err != nil {
			return p
		}
		return filepath.ToSlash(rel)
	}
}

// within reports whether path is dir or inside it.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// lintMessage lints one message from --edit FILE or standard input, as
// `commitlint --edit` and `echo msg | commitlint` do.
func lintMessage(cmd *cobra.Command, o *options.Check, paths []string) error {
	dir := "."
	if len(paths) > 0 {
		dir = paths[0]
	}
	cfg, err := cl.LoadConfig(dir)
	if err != nil {
		return usageErr(err)
	}
	var msg []byte
	source := "stdin"
	if o.Edit != "" {
		msg, err = os.ReadFile(o.Edit)
		cfg.CommentChar = "#"
		source = o.Edit
	} else {
		in := cmd.InOrStdin()
		if f, ok := in.(*os.File); ok {
			if fi, statErr := f.Stat(); statErr == nil && fi.Mode()&os.ModeCharDevice != 0 {
				return usageErr(errors.New("commitlint: give --from/--to, --edit FILE, or a message on standard input"))
			}
		}
		msg, err = io.ReadAll(in)
	}
	if err != nil {
		return usageErr(fmt.Errorf("read commit message: %w", err))
	}
	if len(bytes.TrimSpace(msg)) == 0 && o.Edit == "" {
		return usageErr(errors.New("commitlint: no message on standard input (or use --from/--to or --edit)"))
	}
	r := clstep.NewReport()
	clstep.Add(r, source, cfg.Lint(strings.TrimRight(string(msg), "\n")))
	if err := r.WriteText(cmd.OutOrStdout()); err != nil {
		return err
	}
	if o.SARIF != "" {
		data, err := findings.SARIF(r)
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.SARIF, data, 0o644); err != nil {
			return err
		}
	}
	min, _ := findings.ParseSeverity(o.FailOn)
	if n := r.Count(min); n > 0 {
		return failed(fmt.Errorf("commitlint: %d finding(s) at or above %s", n, min))
	}
	return nil
}
