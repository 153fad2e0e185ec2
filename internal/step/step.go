// Package step is the boundary between the engine and the step kinds.
//
// A step kind (`uses: golangci-lint`, `uses: go-test`, ...) is a Kind value:
// a name, the outputs it sets and a constructor that decodes its `with:`
// inputs. The engine only ever sees Kind and Step; it never names a kind.
// Abilities beyond Run are optional interfaces (Cacheable), checked at run
// time.
package step

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Kind describes one built-in step kind.
type Kind struct {
	// Name is the value of `uses:`.
	Name string
	// Summary is one line for `gantry kinds` and the docs.
	Summary string
	// Outputs lists the outputs a step of this kind sets, so that references
	// such as steps.unit.outputs.coverage are checked when the pipeline file
	// is validated. Outputs whose names are only known at run time make the
	// kind set AnyOutputs.
	Outputs    []string
	AnyOutputs bool
	// Gate is the evidence gate a step of this kind attests (one of
	// evidence.Gates(): "lint", "tests", "vuln-scan", ...), or "" for
	// none. The sign step reads it from StepView.Gate.
	Gate string
	// New decodes and checks the step's `with:` inputs and returns the step.
	// It is called when the pipeline is validated (inputs may then still hold
	// unresolved ${...} expressions in strings) and again at run time with
	// every expression resolved. It must not do I/O.
	New func(in Inputs) (Step, error)
}

// Script is the configuration of a `run:` step. The engine hands it to
// the script kind (the kind it was given for `run:` steps, see
// engine.WithScriptKind) as that kind's inputs: the script kind's New
// decodes it with Inputs.Decode into a Script, as any kind decodes its
// `with:` block. No pipeline file names the script kind in `uses:`.
type Script struct {
	// Run is the script text. Expressions were refused and $${ unescaped.
	Run string `yaml:"run"`
	// Shell is the step's `shell:` ("" for the kind's default).
	Shell string `yaml:"shell"`
	// Inputs are the step's `inputs:` globs, the files of its cache key.
	Inputs []string `yaml:"inputs"`
}

// Inputs gives a kind its `with:` block.
type Inputs interface {
	// Decode decodes the `with:` block strictly into v (a pointer to a
	// struct with yaml tags). Unknown fields and wrong types are errors that
	// name file:line:col. An absent block leaves v unchanged.
	Decode(v any) error
	// Errorf returns an error located at the `with:` field named by path
	// (e.g. "thresholds", "tags.1"); an unknown path points at the block.
	Errorf(path string, format string, args ...any) error
	// Resolved reports whether expressions have been resolved (run time).
	Resolved() bool
}

// Step is one configured step, ready to run.
type Step interface {
	// Run performs the step. A returned error fails the step; its text is
	// shown to the user, so it says what failed and where.
	Run(ctx context.Context, env *Env) (*Result, error)
}

// Result is what a successful or failed step reports.
type Result struct {
	// Outputs are readable by later steps, gates and `when:` expressions
	// as steps.NAME.outputs.KEY. Values are numbers, strings, bools, lists
	// or maps (anything encoding/json can marshal).
	Outputs map[string]any
	// Summary is one line shown next to the step's status.
	Summary string
}

// Env is what the engine hands a running step.
type Env struct {
	RunID string
	Stage string
	Step  string
	// Dir is the workspace: the repository being built.
	Dir string
	// TempDir is a private scratch directory, removed after the run.
	TempDir string
	// StateDir is gantry's data directory (tool cache, registry, ...).
	StateDir string
	// Vars is the environment for child processes (KEY=VALUE), including
	// the step's env and secrets and the services' connection settings.
	Vars []string
	// Stdout receives the step's log. Secrets are masked on the way out.
	Stdout io.Writer
	Log    *slog.Logger
	// Git describes the commit and event being built.
	Git Git
	// Artifacts stores files produced by the step.
	Artifacts ArtifactSink
	// Outputs of every step that already finished in this run, by
	// "stage/step", for kinds that need more than their inputs.
	Outputs func(stage, step string) (map[string]any, bool)
	// Run describes the run so far, stage by stage in pipeline order, for
	// kinds that report on it (evidence attestations). Nil outside a run.
	Run func() RunView
	// PipelineFile and PipelineSource are the path and exact bytes of the
	// pipeline file the run runs, for kinds that read a block of it beyond
	// their with: (deploy reads its environment from environments:).
	PipelineFile   string
	PipelineSource []byte
}

// OutputsOf returns the outputs of the step named by ref, "STAGE/STEP" or
// "STEP" of this stage, with that step's "stage/step" name for messages;
// ok is false when it has not run (see Outputs).
func (e *Env) OutputsOf(ref string) (outputs map[string]any, where string, ok bool) {
	stage, name := e.Stage, ref
	if st, n, found := strings.Cut(ref, "/"); found {
		stage, name = st, n
	}
	where = stage + "/" + name
	if e.Outputs == nil {
		return nil, where, false
	}
	outputs, ok = e.Outputs(stage, name)
	return outputs, where, ok
}

// RunView is the run as a step sees it: the stages that started, in
// pipeline order, with the steps that ended.
type RunView struct {
	Pipeline string
	Stages   []StageView
	// Approvals are the run's granted approvals, in the order granted.
	Approvals []ApprovalView
}

// ApprovalView is a granted approval of a stage.
type ApprovalView struct {
	Stage string
	// Actor decided, at Decided; Roles are the roles the stage asked for.
	Actor   string
	Roles   []string
	Comment string
	Decided time.Time
}

// StageView is one stage of a RunView.
type StageView struct {
	Name string
	// Status is running for the stage of the step asking, else how the
	// stage ended (passed, failed, skipped, cancelled).
	Status string
	// Gate is the stage's gate expression ("" for all_passed); GatePassed
	// is its verdict once the stage ended with every step passed.
	Gate       string
	GatePassed *bool
	// Steps that ended, in pipeline-file order.
	Steps []StepView
}

// StepView is a step that ended.
type StepView struct {
	Name string
	// Kind is the `uses:` value, or "run" for a script.
	Kind string
	// Gate is the evidence gate its kind attests (Kind.Gate), or "".
	Gate string
	// Status: passed, cached, failed, skipped or cancelled.
	Status  string
	Summary string
	// Message says why it failed or was skipped.
	Message      string
	AllowFailure bool
	Outputs      map[string]any
}

// Git describes the commit and event that triggered the run.
type Git struct {
	SHA     string
	Branch  string
	Event   string // "push" or "pull_request"
	BaseRef string // pull_request: the target branch; push: the previous head, if known
	// Time is the commit time in Unix seconds (reproducible builds).
	Time int64
}

// ArtifactSink stores files produced by a step.
type ArtifactSink interface {
	// Put stores the file at path (absolute, or relative to Env.Dir) as
	// the artifact name, with a media type ("" to guess from the name).
	Put(ctx context.Context, name, path, mediaType string) error
	// PutBytes stores data as the artifact name.
	PutBytes(ctx context.Context, name string, data []byte, mediaType string) error
}

// Cacheable is implemented by steps whose result depends only on their
// inputs; the engine skips them when an earlier successful run had the same
// cache key, and restores that run's outputs and artifacts.
type Cacheable interface {
	CacheKey(ctx context.Context, env *Env) (CacheKey, error)
}

// CacheKey lists what a step's result depends on beyond its configuration
// and env, which the engine always includes.
type CacheKey struct {
	// Files are glob patterns relative to Env.Dir ("**/*.go", "go.sum");
	// their paths and content digests enter the key. Files ignored by git
	// are skipped. Nil means every file tracked by git.
	Files []string
	// Extra holds further facts, such as tool versions.
	Extra map[string]string
}

// ErrNotCacheable, returned by CacheKey, says this step cannot be cached
// in its current configuration; the engine runs it normally.
var ErrNotCacheable = errors.New("step is not cacheable")
