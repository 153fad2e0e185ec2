// Package spec reads and checks the pipeline file (.gantry/pipeline.yaml).
//
// Load decodes the file strictly (unknown fields and wrong types are errors
// at file:line:col), applies defaults and validates everything that can be
// checked before running: step kinds and their inputs, the needs graph,
// expressions and the steps and outputs they refer to.
package spec

import (
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/yamlx"
)

// DefaultPath is where gantry looks for the pipeline in a repository.
const DefaultPath = ".gantry/pipeline.yaml"

// Pipeline is a whole pipeline file.
type Pipeline struct {
	Name string   `yaml:"name"`
	On   Triggers `yaml:"on"`
	// Registry is where images go: "embedded" (default) or a repository
	// prefix such as 123456789012.dkr.ecr.us-east-1.amazonaws.com/examplepay.
	Registry string            `yaml:"registry"`
	Env      map[string]string `yaml:"env"`
	// Vars are the pipeline's variables, name → default value, read as
	// ${vars.NAME} and set per run (gantry run --var NAME=VALUE).
	Vars map[string]string `yaml:"vars"`
	// Secrets declares where secret values come from. Steps list the ones
	// they get; values are masked in every log and message.
	Secrets map[string]Secret `yaml:"secrets"`
	// Notify configures the targets of `on_failure: [{notify: NAME}]`.
	Notify map[string]NotifyTarget `yaml:"notify"`
	// CommitStatus posts one commit status per stage (GitHub's statuses
	// API, also GitHub Enterprise and Gitea).
	CommitStatus *CommitStatus `yaml:"commit_status"`
	// Environments are where deploy steps deploy to, by name.
	Environments map[string]*Environment `yaml:"environments"`
	// Monitors are synthetic HTTP checks run against an environment's
	// active URL after a blue/green promotion, by name (monitors.go).
	Monitors map[string]*Monitor `yaml:"monitors"`
	// Jobs bounds how many steps of a stage run at once (default: CPUs).
	Jobs   int     `yaml:"jobs"`
	Stages []Stage `yaml:"stages"`

	// File is the path the pipeline was read from; Source its exact bytes.
	File   string          `yaml:"-"`
	Source []byte          `yaml:"-"`
	Pos    yamlx.Pos       `yaml:"-"`
	At     yamlx.Positions `yaml:"-"`
	// EnvAt holds the position of each env value.
	EnvAt map[string]yamlx.Pos `yaml:"-"`
	// VarsAt holds the position of each variable's name.
	VarsAt map[string]yamlx.Pos `yaml:"-"`
}

// Triggers says which events run the pipeline. An empty block means every
// push and pull request.
type Triggers struct {
	Push        *BranchFilter `yaml:"push"`
	PullRequest *BranchFilter `yaml:"pull_request"`
	// Concurrency (at least 1; absent: no limit): on a gantry server, the
	// most runs of this repository's pipeline that run at once, across
	// every server replica sharing the store; more wait queued. Only the
	// default branch's pipeline file decides.
	Concurrency int `yaml:"concurrency"`
	// At holds the position of each key's value.
	At yamlx.Positions `yaml:"-"`
}

// BranchFilter matches branch names with globs ("main", "release/*", "**").
// For pull requests the branches are the target (base) branches.
type BranchFilter struct {
	Branches       []string `yaml:"branches"`
	BranchesIgnore []string `yaml:"branches_ignore"`
	// CancelPrevious (push only; default true): on a gantry server, a
	// newer push to a branch cancels the queued or running run of an
	// older push to it. Only the default branch's pipeline file decides.
	CancelPrevious *bool `yaml:"cancel_previous"`
	// At holds the position of each key's value.
	At yamlx.Positions `yaml:"-"`
}

// Secret is one secret's source: an environment variable or a file.
type Secret struct {
	Env  string    `yaml:"env"`
	File string    `yaml:"file"`
	Pos  yamlx.Pos `yaml:"-"`
}

// NotifyTarget is a webhook that failure notifications are posted to.
type NotifyTarget struct {
	// Webhook is the URL, usually "${secrets.SLACK_WEBHOOK_URL}".
	Webhook string    `yaml:"webhook"`
	Pos     yamlx.Pos `yaml:"-"`
}

// CommitStatus says where stage verdicts are posted as commit statuses.
type CommitStatus struct {
	// Repository is "owner/name".
	Repository string `yaml:"repository"`
	// Token names a secret (from the secrets block) holding the API token.
	Token string `yaml:"token"`
	// APIURL is the API base: https://api.github.com (default), a GitHub
	// Enterprise https://HOST/api/v3, or a Gitea https://HOST/api/v1.
	APIURL string `yaml:"api_url"`
	// TargetURL links each status to the run; ${run.id} may be used.
	TargetURL string          `yaml:"target_url"`
	Pos       yamlx.Pos       `yaml:"-"`
	At        yamlx.Positions `yaml:"-"`
}

// Stage is an ordered group of steps with a gate.
type Stage struct {
	Name string `yaml:"name"`
	// When is an expression over the event and earlier stages; the stage is
	// skipped when it is false. Default: every earlier stage that ran passed.
	When     string    `yaml:"when"`
	Approval *Approval `yaml:"approval"`
	Steps    []Step    `yaml:"steps"`
	// Gate decides whether the stage passed once its steps finished.
	Gate      Gate     `yaml:"gate"`
	OnFailure []Action `yaml:"on_failure"`

	Pos yamlx.Pos       `yaml:"-"`
	At  yamlx.Positions `yaml:"-"`
}

// Approval makes a stage wait for a person before it runs.
type Approval struct {
	Required bool     `yaml:"required"`
	Roles    []string `yaml:"roles"`
	// Timeout rejects the approval when nobody decided in time (0: never).
	Timeout time.Duration `yaml:"timeout"`
}

// Gate is "all_passed" (the default) or a list of expressions that must all
// be true. Written as a single string or a list.
type Gate struct {
	Exprs []yamlx.String
}

// AllPassed is the default gate: every step passed (or was skipped by its
// own condition).
const AllPassed = "all_passed"

// UnmarshalYAMLNode accepts a string or a list of strings.
func (g *Gate) UnmarshalYAMLNode(d *yamlx.Decoder, n *yaml.Node) error {
	if n.Kind == yaml.SequenceNode {
		return d.Decode(n, &g.Exprs)
	}
	var s yamlx.String
	if err := d.Decode(n, &s); err != nil {
		return err
	}
	g.Exprs = []yamlx.String{s}
	return nil
}

// IsAllPassed reports whether the gate is just the default.
func (g Gate) IsAllPassed() bool {
	return len(g.Exprs) == 0 || (len(g.Exprs) == 1 && g.Exprs[0].Value == AllPassed)
}

// Action is one failure action; exactly one field is set.
type Action struct {
	// Notify names a target in the pipeline's notify block.
	Notify string `yaml:"notify"`
	// Rollback names an environment to roll back.
	Rollback string `yaml:"rollback"`
	// Stop ends the pipeline (the default after any failed stage).
	Stop bool `yaml:"stop"`
	// Uses runs a step kind, with With as its inputs (no ${...}).
	Uses string    `yaml:"uses"`
	With yaml.Node `yaml:"with"`
	Pos  yamlx.Pos `yaml:"-"`
}

// Step is one unit of work: a built-in kind (uses) or a shell command (run).
type Step struct {
	Name string `yaml:"name"`
	Uses string `yaml:"uses"`
	// With holds the kind's inputs, decoded by the kind.
	With yaml.Node `yaml:"with"`
	// Run is a shell script run with sh -e in the workspace.
	Run   string `yaml:"run"`
	Shell string `yaml:"shell"`
	// If skips the step when false.
	If string `yaml:"if"`
	// Needs are steps of the stage that must pass before this one runs.
	Needs []yamlx.String `yaml:"needs"`
	// After are steps of the stage that must have ended, whatever their
	// outcome, before this one runs: ordering without a pass requirement.
	After []yamlx.String `yaml:"after"`
	// Timeout bounds one attempt; Retries re-runs a failed attempt.
	Timeout time.Duration     `yaml:"timeout"`
	Retries int               `yaml:"retries"`
	Env     map[string]string `yaml:"env"`
	// Secrets lists pipeline secrets exposed to the step as env vars.
	Secrets  []yamlx.String `yaml:"secrets"`
	Services []yamlx.String `yaml:"services"`
	// Artifacts are paths or globs, relative to the workspace, kept after
	// the step.
	Artifacts []string `yaml:"artifacts"`
	// Outputs declares what a run step writes to $GANTRY_OUTPUT.
	Outputs []string `yaml:"outputs"`
	// Inputs are globs whose content makes up a run step's cache key; a
	// run step without inputs is never cached.
	Inputs []string `yaml:"inputs"`
	// Cache turns caching off for a step when false.
	Cache *bool `yaml:"cache"`
	// AllowFailure lets the stage pass when this step fails.
	AllowFailure bool `yaml:"allow_failure"`

	Pos yamlx.Pos       `yaml:"-"`
	At  yamlx.Positions `yaml:"-"`
	// EnvAt holds the position of each env value.
	EnvAt map[string]yamlx.Pos `yaml:"-"`
}

// ID returns "stage/step".
func ID(stage, step string) string { return stage + "/" + step }

// NeedNames returns the names in s.Needs.
func (s *Step) NeedNames() []string {
	out := make([]string, len(s.Needs))
	for i, n := range s.Needs {
		out[i] = n.Value
	}
	return out
}

// deps are the steps s waits for: its needs, then its after.
func (s *Step) deps() []yamlx.String {
	return slices.Concat(s.Needs, s.After)
}

// HasWith reports whether the step has a non-empty with: block.
func (s *Step) HasWith() bool { return s.With.Kind != 0 }
