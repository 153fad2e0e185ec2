package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/cli/options"
	"github.com/gantry-ci/gantry/internal/engine"
	"github.com/gantry-ci/gantry/internal/mask"
	"github.com/gantry-ci/gantry/internal/notify"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/store"
	"github.com/gantry-ci/gantry/internal/workspace"
	"github.com/gantry-ci/gantry/internal/yamlx"
)

// runEngine is the engine every command that runs steps uses (gantry run,
// --resume, approve and the one-off commands): the built-in kinds, the
// script kind and services, failure notifications, obs for progress and
// jobs (0: the default).
func runEngine(a *app, obs engine.Observer, jobs int, extra ...engine.Option) (*engine.Engine, error) {
	opts := []engine.Option{engine.WithObserver(obs), engine.WithNotifier(notify.NewWebhook())}
	if jobs > 0 {
		opts = append(opts, engine.WithJobs(jobs))
	}
	return registryEngine(a, append(opts, extra...)...)
}

// oneOff is the pipeline a one-off command (gantry check, test, build,
// scan, sbom, sast, licenses, load) builds from its flags: one stage named
// for the command, with the steps of the kinds it runs. It is validated as
// a pipeline file is and run by the same engine as gantry run, so it is
// masked, cached and recorded in the run history like any run.
type oneOff struct {
	// command is the command line's name for it, recorded with the run
	// ("check golangci-lint", "scan").
	command string
	// stage names the stage (the command's name).
	stage string
	// dir is the workspace: the repository the steps run in.
	dir   string
	steps []oneOffStep
	// secrets are environment variables (--secret) whose values every
	// step gets and every output masks.
	secrets []string
	noCache bool
	// out receives the steps' own output (default: the command's
	// standard output); gantry's own lines go to standard error with -v.
	out io.Writer
}

// oneOffStep is one step of a one-off pipeline.
type oneOffStep struct {
	name, uses string
	// with is the kind's with: block, from the command's flags. Text is
	// taken literally: a ${ in a flag value is not an expression.
	with     map[string]any
	needs    []string
	services []string
}

// oneOffFlags are the flags every one-off command has.
type oneOffFlags struct {
	secrets []string
}

func (f *oneOffFlags) addFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.secrets, "secret", nil, "treat the environment variable NAME as a secret: the step gets it and its value is masked in all output (repeatable)")
}

var secretEnvRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// oneOffResult is what a one-off run recorded.
type oneOffResult struct {
	res   *engine.Result
	steps map[string]store.Step
	// order names the steps as the pipeline lists them.
	order []string
	arts  []store.Artifact
	a     *app
	// masker hides the --secret values in the artifacts the command
	// prints or writes, as the engine hides them in logs and outputs.
	masker *mask.Masker
}

// step returns the recorded step name.
func (r *oneOffResult) step(name string) store.Step { return r.steps[name] }

// failure is the error for a failed run: nil when it passed, exit 130
// when cancelled, else the first failed step's message with code (or
// the run's message).
func (r *oneOffResult) failure(code int) error {
	switch r.res.Status {
	case store.StatusPassed:
		return nil
	case store.StatusCancelled:
		return &ExitError{Code: ExitCancelled, Err: errors.New("cancelled")}
	}
	for _, name := range r.order {
		if s := r.steps[name]; s.Status == store.StatusFailed {
			return &ExitError{Code: code, Err: errors.New(s.Message)}
		}
	}
	return &ExitError{Code: code, Err: errors.New(r.res.Message)}
}

// saveArtifact writes the artifact name of the run to path, with the
// secrets masked.
func (r *oneOffResult) saveArtifact(name, path string) error {
	data, err := r.artifactBytes(name)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// saveArtifacts writes every artifact of the run into dir.
func (r *oneOffResult) saveArtifacts(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	for _, art := range r.arts {
		if err := r.saveArtifact(art.Name, filepath.Join(dir, filepath.Base(art.Name))); err != nil {
			return err
		}
	}
	return nil
}

// artifactBytes returns the content of the run's artifact name, with
// the secrets masked.
func (r *oneOffResult) artifactBytes(name string) ([]byte, error) {
	for _, art := range r.arts {
		if art.Name == name {
			src, err := r.a.artifacts.Path(art.Digest)
			if err != nil {
				return nil, fmt.Errorf("artifact %s: %w", name, err)
			}
			data, err := os.ReadFile(src)
			if err != nil {
				return nil, fmt.Errorf("read artifact %s: %w", name, err)
			}
			if r.masker.Empty() {
				return data, nil
			}
			return []byte(r.masker.Mask(string(data))), nil
		}
	}
	return nil, fmt.Errorf("run %d stored no artifact %s", r.res.RunID, name)
}

// pipelineFile is the text of the one-off pipeline.
func (o *oneOff) pipelineFile() ([]byte, error) {
	type stepDoc struct {
		Name     string         `yaml:"name"`
		Uses     string         `yaml:"uses"`
		With     map[string]any `yaml:"with,omitempty"`
		Needs    []string       `yaml:"needs,omitempty"`
		Services []string       `yaml:"services,omitempty"`
		Secrets  []string       `yaml:"secrets,omitempty"`
	}
	type stageDoc struct {
		Name  string    `yaml:"name"`
		Steps []stepDoc `yaml:"steps"`
	}
	type secretDoc struct {
		Env string `yaml:"env"`
	}
	doc := struct {
		Name    string               `yaml:"name"`
		Secrets map[string]secretDoc `yaml:"secrets,omitempty"`
		Stages  []stageDoc           `yaml:"stages"`
	}{Name: "gantry " + o.command}
	for _, name := range o.secrets {
		if doc.Secrets == nil {
			doc.Secrets = map[string]secretDoc{}
		}
		doc.Secrets[name] = secretDoc{Env: name}
	}
	st := stageDoc{Name: o.stage}
	for _, s := range o.steps {
		with, _ := literal(s.with).(map[string]any)
		st.Steps = append(st.Steps, stepDoc{Name: s.name, Uses: s.uses, With: with, Needs: s.needs,
			Services: s.services, Secrets: o.secrets})
	}
	doc.Stages = []stageDoc{st}
	return yaml.Marshal(doc)
}

// literal escapes every ${ in the text of v as $${, so that values from
// flags reach the kind as written instead of being evaluated.
func literal(v any) any {
	switch x := v.(type) {
	case string:
		return strings.ReplaceAll(x, "${", "$${")
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = literal(s)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = literal(e)
		}
		return out
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = literal(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = literal(e)
		}
		return out
	}
	return v
}

// usageMessages turns the validation errors of a one-off pipeline into
// one line per problem without the positions in the generated file,
// which the user never saw.
func usageMessages(prefix string, err error) error {
	var parts []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		parts = j.Unwrap()
	} else {
		parts = []error{err}
	}
	var lines []string
	for _, e := range parts {
		var ye *yamlx.Error
		if errors.As(e, &ye) {
			lines = append(lines, prefix+": "+ye.Msg)
		} else {
			lines = append(lines, prefix+": "+e.Error())
		}
	}
	return usageErr(errors.New(strings.Join(lines, "\n")))
}

// run validates and runs o through the engine and returns what the run
// recorded. Errors are usage errors (exit 2) for a one-off pipeline that
// does not validate; a failed step is a result, not an error.
func (o *oneOff) run(cmd *cobra.Command, g *options.Global) (*oneOffResult, error) {
	ctx := cmd.Context()
	for _, name := range o.secrets {
		if !secretEnvRE.MatchString(name) {
			return nil, usageErr(fmt.Errorf("--secret %q: want the name of an environment variable", name))
		}
		if _, ok := os.LookupEnv(name); !ok {
			return nil, usageErr(fmt.Errorf("--secret %s: the environment variable is not set", name))
		}
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return nil, usageErr(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, usageErr(fmt.Errorf("%s is not a directory", o.dir))
	}
	data, err := o.pipelineFile()
	if err != nil {
		return nil, fmt.Errorf("write the %s pipeline: %w", o.command, err)
	}
	file := "gantry " + o.command
	p, err := spec.Parse(file, data, builtinRegistry(), spec.WithRepository(dir))
	if err != nil {
		return nil, usageMessages(file, err)
	}
	git, err := workspace.Describe(ctx, dir)
	if err != nil {
		return nil, err
	}
	a, err := openApp(ctx, g, cmd.ErrOrStderr())
	if err != nil {
		return nil, err
	}
	out := o.out
	if out == nil {
		out = cmd.OutOrStdout()
	}
	view := &oneOffView{out: out, errw: cmd.ErrOrStderr(), verbose: g.Verbose}
	eng, err := runEngine(a, view, 0)
	if err != nil {
		a.Close()
		return nil, err
	}
	res, err := eng.Run(ctx, p, engine.Request{Dir: dir, Git: git, NoCache: o.noCache, Trigger: "cli", Command: o.command})
	if err != nil {
		a.Close()
		return nil, err
	}
	r := &oneOffResult{res: res, steps: map[string]store.Step{}, a: a, masker: mask.New()}
	for _, name := range o.secrets {
		r.masker.Add(os.Getenv(name))
	}
	steps, err := a.store.Steps(ctx, res.RunID)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("read run %d: %w", res.RunID, err)
	}
	for _, s := range steps {
		r.steps[s.Name] = s
	}
	for _, s := range p.Stages[0].Steps {
		r.order = append(r.order, s.Name)
	}
	if r.arts, err = a.store.Artifacts(ctx, res.RunID); err != nil {
		a.Close()
		return nil, fmt.Errorf("read artifacts of run %d: %w", res.RunID, err)
	}
	// A cached step did not run: show the output it printed when it did.
	for _, st := range p.Stages[0].Steps {
		s, ok := r.steps[st.Name]
		if !ok || s.Status != store.StatusCached {
			continue
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "gantry: %s: cached, the result of run %d\n", s.Name, s.CachedFrom)
		if err := printStoredOutput(ctx, a.store, out, s.CachedFrom, s.Stage, s.Name); err != nil {
			a.Close()
			return nil, err
		}
	}
	return r, nil
}

// close closes the run history.
func (r *oneOffResult) close() { r.a.Close() }

// printStoredOutput writes what step stage/name of run id printed.
func printStoredOutput(ctx context.Context, st *store.Store, w io.Writer, id int64, stage, name string) error {
	lines, err := st.Logs(ctx, id, stage, name, 0)
	if err != nil {
		return fmt.Errorf("read the log of run %d: %w", id, err)
	}
	for _, l := range lines {
		if l.Stream == "out" {
			if _, err := fmt.Fprintln(w, l.Text); err != nil {
				return err
			}
		}
	}
	return nil
}

// oneOffView shows a one-off run: the steps' output as they print it,
// gantry's own lines on standard error with -v.
type oneOffView struct {
	mu      sync.Mutex
	out     io.Writer
	errw    io.Writer
	verbose bool
}

func (v *oneOffView) Observe(e engine.Event) {
	if e.Type != engine.StepLog {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if e.Stream == "out" {
		fmt.Fprintln(v.out, e.Line)
	} else if v.verbose {
		fmt.Fprintf(v.errw, "gantry: %s: %s\n", e.Step, e.Line)
	}
}
