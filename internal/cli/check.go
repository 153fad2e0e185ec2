package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/cli/options"
	cl "github.com/gantry-ci/gantry/internal/commitlint"
	"github.com/gantry-ci/gantry/internal/findings"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/builtin"
	"github.com/gantry-ci/gantry/internal/steps/checkstep"
	clstep "github.com/gantry-ci/gantry/internal/steps/commitlint"
	"github.com/gantry-ci/gantry/internal/yamlx"
)

// checkKinds are the kinds `gantry check` runs.
var checkKinds = []string{"golangci-lint", "terraform-fmt", "tflint", "kubeconform", "helm-lint", "helm-template", "commitlint", "next-version"}

func newCheckCmd(g *options.Global) *cobra.Command {
	o := &options.Check{}
	cmd := &cobra.Command{
		Use:   "check KIND [PATH...]",
		Short: "Run one commit-stage check on its own",
		Long: `Run one commit-stage check outside a pipeline: ` + strings.Join(checkKinds, ", ") + `.

PATH is the module (golangci-lint), Terraform directory (terraform-fmt,
tflint), manifest files or directories (kubeconform), chart (helm-lint,
helm-template) or repository (commitlint, next-version); default ".".
commitlint lints --from..--to, the --edit file, or one message on standard
input. Exit status: 0 clean, 1 findings at or above --fail-on, 2 bad usage.`,
		Args:      cobra.MinimumNArgs(1),
		ValidArgs: checkKinds,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.Context(), cmd, g, o, args[0], args[1:])
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// mapInputs is a `with:` block built from flags.
type mapInputs map[string]any

func (m mapInputs) Decode(v any) error {
	data, err := yaml.Marshal(map[string]any(m))
	if err != nil {
		return err
	}
	return yamlx.Decode("flags", data, v)
}

func (m mapInputs) Errorf(path, format string, args ...any) error {
	return fmt.Errorf("--%s: %s", strings.ReplaceAll(path, "_", "-"), fmt.Sprintf(format, args...))
}

func (mapInputs) Resolved() bool { return true }

// fileSink writes SARIF to one file and other artifacts to a directory.
type fileSink struct {
	kind, sarif, dir string
}

func (s *fileSink) Put(ctx context.Context, name, path, mt string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return s.PutBytes(ctx, name, data, mt)
}

func (s *fileSink) PutBytes(_ context.Context, name string, data []byte, _ string) error {
	if name == s.kind+".sarif" && s.sarif != "" {
		return os.WriteFile(s.sarif, data, 0o644)
	}
	if s.dir == "" {
		return nil
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.dir, name), data, 0o644)
}

func runCheck(ctx context.Context, cmd *cobra.Command, g *options.Global, o *options.Check, kind string, paths []string) error {
	if !slices.Contains(checkKinds, kind) {
		return usageErr(fmt.Errorf("unknown check %q (want one of %s)", kind, strings.Join(checkKinds, ", ")))
	}
	if _, err := findings.ParseSeverity(o.FailOn); err != nil {
		return usageErr(fmt.Errorf("--fail-on: %w", err))
	}
	out := cmd.OutOrStdout()
	if kind == "commitlint" && o.From == "" && o.To == "" {
		return lintMessage(cmd, o, paths)
	}
	dir, with, err := checkInputs(kind, o, paths)
	if err != nil {
		return usageErr(err)
	}
	var k step.Kind
	for _, bk := range builtin.Kinds() {
		if bk.Name == kind {
			k = bk
		}
	}
	if k.New == nil {
		return usageErr(fmt.Errorf("check %q is not built in", kind))
	}
	st, err := k.New(with)
	if err != nil {
		return usageErr(err)
	}
	stateDir, err := g.ResolveStateDir()
	if err != nil {
		return usageErr(err)
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return usageErr(err)
	}
	tmp, err := os.MkdirTemp("", "gantry-check-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }() // scratch space; leftovers are harmless
	env := &step.Env{RunID: "check", Stage: "check", Step: kind, Dir: absDir, TempDir: tmp, StateDir: stateDir,
		Vars: os.Environ(), Stdout: out, Git: step.Git{SHA: "HEAD"},
		Artifacts: &fileSink{kind: kind, sarif: o.SARIF, dir: o.Artifacts}}
	res, err := st.Run(ctx, env)
	if kind == "next-version" && err == nil {
		b, _ := json.Marshal(res.Outputs)
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	}
	var fe *checkstep.FailedError
	if errors.As(err, &fe) {
		return failed(err)
	}
	if err != nil {
		return failed(err)
	}
	return nil
}

// checkInputs maps PATH and flags to the kind's `with:` block and the
// directory the step runs in.
func checkInputs(kind string, o *options.Check, paths []string) (string, mapInputs, error) {
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
	with := mapInputs{}
	if kind != "next-version" {
		with["fail_on"] = o.FailOn
	}
	switch kind {
	case "golangci-lint":
		if o.Config != "" {
			with["config"] = o.Config
		}
		return first, with, one()
	case "terraform-fmt":
		return first, with, one()
	case "tflint":
		if o.Config != "" {
			with["config"] = o.Config
		}
		return first, with, one()
	case "kubeconform":
		if len(paths) > 0 {
			with["paths"] = paths
		}
		if len(o.Kustomize) > 0 {
			with["kustomize"] = o.Kustomize
		}
		var charts []map[string]any
		for _, h := range o.Helm {
			charts = append(charts, map[string]any{"chart": h, "values": o.Values, "set": o.Set})
		}
		if charts != nil {
			with["helm"] = charts
		}
		if len(o.CRDs) > 0 {
			with["crds"] = o.CRDs
		}
		with["unknown_kinds"] = o.UnknownKinds
		if len(o.SkipKinds) > 0 {
			with["skip_kinds"] = o.SkipKinds
		}
		return ".", with, nil
	case "helm-lint", "helm-template":
		with["chart"] = first
		if len(o.Values) > 0 {
			with["values"] = o.Values
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
		return ".", with, one()
	case "commitlint":
		if o.From != "" {
			with["from"] = o.From
		}
		if o.To != "" {
			with["to"] = o.To
		}
		return first, with, one()
	case "next-version":
		return first, with, one()
	}
	return "", nil, fmt.Errorf("unknown check %q", kind)
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
