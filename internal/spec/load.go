package spec

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/expression"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/yamlx"
)

// Registry is what a pipeline file may refer to.
type Registry struct {
	Kinds    map[string]step.Kind
	Services []string
	// Rollbacks names the environments a rollback handler is registered
	// for (`on_failure: [{rollback: ENV}]`).
	Rollbacks []string
	// Gates are the evidence gates an environment may require; empty
	// leaves require: unchecked beyond its syntax.
	Gates []string
}

// NewRegistry indexes kinds by name.
func NewRegistry(kinds []step.Kind, services []string) Registry {
	r := Registry{Kinds: make(map[string]step.Kind, len(kinds)), Services: services}
	for _, k := range kinds {
		r.Kinds[k.Name] = k
	}
	return r
}

// Load reads, decodes and validates the pipeline file at path.
func Load(path string, reg Registry, opts ...Option) (*Pipeline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pipeline: %w", err)
	}
	return Parse(path, data, reg, opts...)
}

// Parse decodes and validates a pipeline file's contents. Every problem
// found is reported, each as a *yamlx.Error (joined with errors.Join).
func Parse(file string, data []byte, reg Registry, opts ...Option) (*Pipeline, error) {
	p := &Pipeline{}
	root, err := yamlx.Parse(file, data)
	if err != nil {
		return nil, err
	}
	d := &yamlx.Decoder{File: file}
	if err := d.Decode(root, p); err != nil {
		return nil, err
	}
	p.File, p.Source = file, data
	fillEnvPositions(p, root)
	p.VarsAt = varPositions(root)
	v := &validator{p: p, reg: reg, src: data}
	for _, o := range opts {
		o(&v.opts)
	}
	v.validate()
	v.validateEnvironments(root)
	v.validateMonitors(root)
	if len(v.errs) > 0 {
		slices.SortStableFunc(v.errs, byPosition)
		return nil, errors.Join(v.errs...)
	}
	return p, nil
}

// byPosition orders errors by their place in the file.
func byPosition(a, b error) int {
	var ea, eb *yamlx.Error
	if !errors.As(a, &ea) || !errors.As(b, &eb) {
		return 0
	}
	if ea.Line != eb.Line {
		return ea.Line - eb.Line
	}
	return ea.Column - eb.Column
}

// Inputs returns the step.Inputs of a step's with: block. A resolved
// node (expressions evaluated) is passed at run time.
func Inputs(file string, with *yaml.Node, resolved bool) step.Inputs {
	return &inputs{file: file, node: with, resolved: resolved}
}

type inputs struct {
	file     string
	node     *yaml.Node
	resolved bool
}

func (in *inputs) Decode(v any) error {
	if in.node == nil || in.node.Kind == 0 {
		return nil
	}
	d := &yamlx.Decoder{File: in.file, SkipTemplates: !in.resolved}
	return d.Decode(in.node, v)
}

func (in *inputs) Resolved() bool { return in.resolved }

func (in *inputs) Errorf(path string, format string, args ...any) error {
	n := in.node
	if n == nil || n.Kind == 0 {
		return &yamlx.Error{File: in.file, Msg: fmt.Sprintf(format, args...)}
	}
	for _, seg := range strings.Split(path, ".") {
		if seg == "" {
			continue
		}
		next := childNode(n, seg)
		if next == nil {
			break
		}
		n = next
	}
	return yamlx.Errorf(in.file, n, format, args...)
}

func childNode(n *yaml.Node, key string) *yaml.Node {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1]
			}
		}
	case yaml.SequenceNode:
		var idx int
		if _, err := fmt.Sscanf(key, "%d", &idx); err == nil && idx >= 0 && idx < len(n.Content) {
			return n.Content[idx]
		}
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_-]*$`)

// Roots are the names expressions may start with.
var Roots = []string{"event", "branch", "base", "sha", "git", "stages", "steps", "env", "secrets", "run", "pipeline", "vars"}

type validator struct {
	p    *Pipeline
	reg  Registry
	src  []byte // the file's text, to point into multi-line values
	opts options
	errs []error
}

// addErr records err, each problem of a joined error on its own.
func (v *validator) addErr(err error) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			v.addErr(e)
		}
		return
	}
	v.errs = append(v.errs, err)
}

func (v *validator) errAt(pos yamlx.Pos, format string, args ...any) {
	v.errs = append(v.errs, pos.Errorf(v.p.File, format, args...))
}

func (v *validator) validate() {
	p := v.p
	if p.Name == "" {
		v.errAt(p.Pos, "pipeline needs a name")
	}
	if _, given := p.At["jobs"]; given && p.Jobs < 1 {
		v.errAt(p.At["jobs"], "jobs must be at least 1")
	}
	for name, s := range p.Secrets {
		if (s.Env == "") == (s.File == "") {
			v.errAt(s.Pos, "secret %q needs exactly one of env or file", name)
		}
	}
	for name, t := range p.Notify {
		if t.Webhook == "" {
			v.errAt(t.Pos, "notify target %q needs a webhook", name)
		}
		v.checkTemplate(t.Webhook, t.Pos, scope{stage: -1, field: fieldNotify})
	}
	v.checkEnvBlock(p.Env, p.EnvAt, p.At["env"], scope{stage: -1, field: fieldPipelineEnv})
	if pr := p.On.PullRequest; pr != nil && pr.CancelPrevious != nil {
		v.errAt(pr.At["cancel_previous"], "on.pull_request.cancel_previous: only push runs cancel older ones (set it under on.push)")
	}
	if _, given := p.On.At["concurrency"]; given && p.On.Concurrency < 1 {
		v.errAt(p.On.At["concurrency"], "on.concurrency must be at least 1, not %d (leave it out for no limit)", p.On.Concurrency)
	}
	v.checkVars()
	if cs := p.CommitStatus; cs != nil {
		if !repoRE.MatchString(cs.Repository) {
			v.errAt(cs.At["repository"], "commit_status.repository must be owner/name, not %q", cs.Repository)
		}
		if _, ok := p.Secrets[cs.Token]; !ok {
			v.errAt(cs.At["token"], "commit_status.token must name a secret of the secrets block, not %q", cs.Token)
		}
		if cs.APIURL != "" && !strings.HasPrefix(cs.APIURL, "https://") && !strings.HasPrefix(cs.APIURL, "http://") {
			v.errAt(cs.At["api_url"], "commit_status.api_url must be an http(s) URL")
		}
		v.checkTemplate(cs.TargetURL, cs.At["target_url"], scope{stage: -1, field: fieldTargetURL})
	}
	if len(p.Stages) == 0 {
		v.errAt(p.Pos, "pipeline needs at least one stage")
	}
	seen := map[string]bool{}
	for i := range p.Stages {
		st := &p.Stages[i]
		if !nameRE.MatchString(st.Name) {
			v.errAt(st.Pos, "stage name %q must start with a letter and hold only letters, digits, - and _", st.Name)
		}
		if seen[st.Name] {
			v.errAt(st.At["name"], "stage %q is defined twice", st.Name)
		}
		seen[st.Name] = true
		v.validateStage(i)
	}
}

func (v *validator) validateStage(si int) {
	st := &v.p.Stages[si]
	if len(st.Steps) == 0 {
		v.errAt(st.Pos, "stage %q has no steps", st.Name)
	}
	if st.When != "" {
		v.checkExpr(st.When, st.At["when"], scope{stage: si, gate: true, when: true, field: fieldWhen})
	}
	v.checkApproval(st)
	byName := map[string]*Step{}
	for i := range st.Steps {
		s := &st.Steps[i]
		if !nameRE.MatchString(s.Name) {
			v.errAt(s.Pos, "step name %q must start with a letter and hold only letters, digits, - and _", s.Name)
		}
		if byName[s.Name] != nil {
			v.errAt(s.At["name"], "step %q is defined twice in stage %q", s.Name, st.Name)
		}
		byName[s.Name] = s
	}
	for i := range st.Steps {
		v.validateStep(si, &st.Steps[i], byName)
	}
	v.checkCycles(st, byName)
	if !st.Gate.IsAllPassed() {
		for _, g := range st.Gate.Exprs {
			if g.Value == AllPassed {
				continue
			}
			v.checkExpr(g.Value, g.Pos, scope{stage: si, gate: true, field: fieldGate})
		}
	}
	for _, a := range st.OnFailure {
		n := 0
		if a.Notify != "" {
			n++
			if _, ok := v.p.Notify[a.Notify]; !ok {
				v.errAt(a.Pos, "notify target %q is not defined in the pipeline's notify block", a.Notify)
			}
		}
		if a.Rollback != "" {
			n++
			v.checkRollback(a)
		}
		if a.Stop {
			n++
		}
		if a.Uses != "" || a.With.Kind != 0 {
			n++
			v.checkActionStep(a)
		}
		if n != 1 {
			v.errAt(a.Pos, "a failure action needs exactly one of notify, rollback, stop or uses (with its with:)")
		}
	}
}

func (v *validator) validateStep(si int, s *Step, byName map[string]*Step) {
	st := &v.p.Stages[si]
	sc := scope{stage: si, step: s}
	switch {
	case s.Uses != "" && s.Run != "":
		v.errAt(s.At["run"], "step %q has both uses and run; give one", s.Name)
	case s.Uses == "" && s.Run == "":
		v.errAt(s.Pos, "step %q needs uses (a step kind) or run (a shell command)", s.Name)
	case s.Uses != "":
		kind, ok := v.reg.Kinds[s.Uses]
		if !ok {
			v.errAt(s.At["uses"], "unknown step kind %q (known: %s)", s.Uses, strings.Join(v.kindNames(), ", "))
			break
		}
		if s.Shell != "" {
			v.errAt(s.At["shell"], "shell applies only to run steps")
		}
		if len(s.Outputs) > 0 {
			v.errAt(s.At["outputs"], "outputs are declared only for run steps; %s sets its own", s.Uses)
		}
		in := Inputs(v.p.File, &s.With, false)
		if built, err := kind.New(in); err != nil {
			v.addErr(locate(err, v.p.File, s.At["with"], s.Pos))
		} else {
			// A PathError unwraps to several errors; keep it whole.
			v.errs = append(v.errs, CheckPaths(v.opts.repo, built, in)...)
		}
		v.checkWithTemplates(&s.With, sc.in(fieldWith))
	case s.Run != "":
		if s.HasWith() {
			v.errAt(s.At["with"], "with applies only to uses steps")
		}
		v.checkScript(s)
		for _, o := range s.Outputs {
			if !nameRE.MatchString(o) {
				v.errAt(s.At["outputs"], "output name %q must start with a letter and hold only letters, digits, - and _", o)
			}
		}
	}
	if s.If != "" {
		v.checkExpr(s.If, s.At["if"], sc.in(fieldIf))
	}
	if s.Timeout < 0 {
		v.errAt(s.At["timeout"], "timeout must not be negative")
	}
	if s.Retries < 0 || s.Retries > 10 {
		v.errAt(s.At["retries"], "retries must be between 0 and 10")
	}
	v.checkEnvBlock(s.Env, s.EnvAt, s.At["env"], sc.in(fieldStepEnv))
	for _, n := range s.Needs {
		switch {
		case n.Value == s.Name:
			v.errAt(n.Pos, "step %q needs itself", s.Name)
		case byName[n.Value] == nil:
			v.errAt(n.Pos, "step %q needs %q, which is not a step of stage %q", s.Name, n.Value, st.Name)
		}
	}
	for _, a := range s.After {
		switch {
		case a.Value == s.Name:
			v.errAt(a.Pos, "step %q runs after itself", s.Name)
		case byName[a.Value] == nil:
			v.errAt(a.Pos, "step %q runs after %q, which is not a step of stage %q", s.Name, a.Value, st.Name)
		case slices.Contains(s.NeedNames(), a.Value):
			v.errAt(a.Pos, "step %q lists %q in both needs and after; keep one (needs: it must pass, after: it must only have ended)", s.Name, a.Value)
		}
	}
	for _, sec := range s.Secrets {
		if _, ok := v.p.Secrets[sec.Value]; !ok {
			v.errAt(sec.Pos, "secret %q is not declared in the pipeline's secrets block", sec.Value)
		}
	}
	for _, svc := range s.Services {
		if !slices.Contains(v.reg.Services, svc.Value) {
			known := slices.Clone(v.reg.Services)
			sort.Strings(known)
			v.errAt(svc.Pos, "unknown service %q (known: %s)", svc.Value, strings.Join(known, ", "))
		}
	}
	for _, a := range s.Artifacts {
		if strings.HasPrefix(a, "/") || slices.Contains(strings.Split(a, "/"), "..") {
			v.errAt(s.At["artifacts"], "artifact path %q must stay inside the workspace (no absolute paths or ..)", a)
		}
	}
}

var repoRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (v *validator) kindNames() []string {
	names := make([]string, 0, len(v.reg.Kinds))
	for n := range v.reg.Kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// locate makes sure err carries a position.
func locate(err error, file string, at, fallback yamlx.Pos) error {
	var ye *yamlx.Error
	if errors.As(err, &ye) && ye.Line > 0 {
		return err
	}
	if at.Line == 0 {
		at = fallback
	}
	return at.Errorf(file, "%v", err)
}

func (v *validator) checkCycles(st *Stage, byName map[string]*Step) {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var visit func(s *Step) bool
	visit = func(s *Step) bool {
		color[s.Name] = grey
		stack = append(stack, s.Name)
		for _, n := range s.deps() {
			dep := byName[n.Value]
			if dep == nil || dep == s {
				continue
			}
			switch color[dep.Name] {
			case grey:
				start := slices.Index(stack, dep.Name)
				cycle := append(slices.Clone(stack[start:]), dep.Name)
				v.errAt(n.Pos, "needs and after form a cycle in stage %q: %s", st.Name, strings.Join(cycle, " -> "))
				return false
			case white:
				if !visit(dep) {
					return false
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[s.Name] = black
		return true
	}
	for i := range st.Steps {
		s := &st.Steps[i]
		if color[s.Name] == white {
			stack = stack[:0]
			if !visit(s) {
				return
			}
		}
	}
}

// scope is where an expression appears, which decides what it may read.
type scope struct {
	stage int   // index of the stage, -1 for pipeline level
	step  *Step // the step whose fields hold the expression, if any
	gate  bool  // a stage gate or when: may read every step of the stage
	when  bool  // a stage's when: runs before its steps
	key   string
	field field // which field holds the expression
}

// field names the place an expression is written, which decides whether
// it may read secrets.
type field int

const (
	fieldOther field = iota
	fieldNotify
	fieldPipelineEnv
	fieldTargetURL
	fieldWhen
	fieldGate
	fieldIf
	fieldWith
	fieldStepEnv
)

func (sc scope) in(f field) scope {
	sc.field = f
	return sc
}

func (v *validator) checkWithTemplates(n *yaml.Node, sc scope) {
	switch n.Kind {
	case yaml.ScalarNode:
		if strings.Contains(n.Value, "${") {
			v.checkTemplate(n.Value, yamlx.PosOf(n), sc)
		}
	case yaml.MappingNode, yaml.SequenceNode, yaml.DocumentNode:
		for _, c := range n.Content {
			v.checkWithTemplates(c, sc)
		}
	}
}

func (v *validator) checkTemplate(s string, pos yamlx.Pos, sc scope) {
	if !strings.Contains(s, "${") {
		return
	}
	t, err := expression.ParseTemplate(s)
	if err != nil {
		v.errAt(pos, "%v", err)
		return
	}
	for _, prog := range t.Programs() {
		v.checkRefs(prog.String(), pos, sc)
	}
}

func (v *validator) checkExpr(src string, pos yamlx.Pos, sc scope) {
	if _, err := expression.Compile(src); err != nil {
		v.errAt(pos, "%v", err)
		return
	}
	v.checkRefs(src, pos, sc)
}

func (v *validator) checkRefs(src string, pos yamlx.Pos, sc scope) {
	refs, err := expression.Refs(src)
	if err != nil {
		v.errAt(pos, "%v", err)
		return
	}
	// env?.NAME gives nil when NAME is not set (docs/pipeline.md), so
	// it is not refused as unset.
	optional, _ := expression.OptionalRefs(src)
	for _, r := range refs {
		if r[0] == "env" && slices.ContainsFunc(optional, func(o expression.Ref) bool { return slices.Equal(o, r) }) {
			continue
		}
		if msg := v.checkRef(r, sc); msg != "" {
			v.errAt(pos, "%s (in %q)", msg, src)
		}
	}
	if len(refs) == 0 {
		// It reads nothing, so it fails now if it ever fails: 10 / 0.
		prog, err := expression.Compile(src)
		if err == nil {
			_, err = prog.Eval(map[string]any{})
		}
		if err != nil {
			v.errAt(pos, "%v", err)
		}
	}
}

// checkRef returns a message when r refers to something that cannot exist
// at the point where the expression is evaluated.
func (v *validator) checkRef(r expression.Ref, sc scope) string {
	if !slices.Contains(Roots, r[0]) {
		return fmt.Sprintf("unknown name %q (expressions start with one of %s)", r[0], strings.Join(Roots, ", "))
	}
	switch r[0] {
	case "steps":
		if len(r) < 2 {
			return ""
		}
		if sc.stage < 0 {
			return "steps.* can only be read inside a stage"
		}
		if sc.when {
			return "a stage's when: is decided before its steps run; read earlier stages with stages.NAME"
		}
		st := &v.p.Stages[sc.stage]
		target := findStep(st, r[1])
		if target == nil {
			return fmt.Sprintf("stage %q has no step %q", st.Name, r[1])
		}
		if sc.step != nil && !sc.gate && !dependsOn(st, sc.step, target.Name) {
			return fmt.Sprintf("step %q reads step %q but does not need it (add it to needs or after)", sc.step.Name, target.Name)
		}
		return v.checkOutputRef(target, r[2:])
	case "stages":
		if len(r) < 2 {
			return ""
		}
		idx := -1
		for i := range v.p.Stages {
			if v.p.Stages[i].Name == r[1] {
				idx = i
			}
		}
		if idx < 0 {
			return fmt.Sprintf("there is no stage %q", r[1])
		}
		if sc.stage >= 0 && idx >= sc.stage {
			return fmt.Sprintf("stage %q does not run before %q", r[1], v.p.Stages[sc.stage].Name)
		}
		if sc.stage < 0 {
			return "stages.* can only be read inside a stage"
		}
		if len(r) >= 4 && r[2] == "steps" {
			target := findStep(&v.p.Stages[idx], r[3])
			if target == nil {
				return fmt.Sprintf("stage %q has no step %q", r[1], r[3])
			}
			return v.checkOutputRef(target, r[4:])
		}
		if len(r) >= 3 && !slices.Contains([]string{"status", "passed", "steps"}, r[2]) {
			return fmt.Sprintf("stages.%s has no field %q (status, passed, steps)", r[1], r[2])
		}
	case "secrets":
		if len(r) >= 2 {
			if _, ok := v.p.Secrets[r[1]]; !ok {
				return fmt.Sprintf("secret %q is not declared in the pipeline's secrets block", r[1])
			}
		}
		return checkSecretRef(r, sc)
	case "env":
		if msg := v.checkEnvRef(r, sc); msg != "" {
			return msg
		}
	case "vars":
		if msg := v.checkVarRef(r); msg != "" {
			return msg
		}
	}
	if sc.field == fieldTargetURL && r[0] != "run" {
		return fmt.Sprintf("commit_status.target_url can read only run.id, not %s", r)
	}
	return ""
}

// checkOutputRef checks the part of a reference after steps.NAME.
func (v *validator) checkOutputRef(s *Step, rest []string) string {
	if len(rest) == 0 {
		return ""
	}
	switch rest[0] {
	case "status", "summary":
		return ""
	case "outputs":
	default:
		return fmt.Sprintf("step %q has no field %q (status, summary, outputs)", s.Name, rest[0])
	}
	if len(rest) < 2 {
		return ""
	}
	out := rest[1]
	if s.Run != "" {
		if !slices.Contains(s.Outputs, out) {
			return fmt.Sprintf("step %q declares no output %q (declared: %s)", s.Name, out, strings.Join(s.Outputs, ", "))
		}
		return ""
	}
	kind, ok := v.reg.Kinds[s.Uses]
	if !ok || kind.AnyOutputs || slices.Contains(kind.Outputs, out) {
		return ""
	}
	return fmt.Sprintf("step %q (%s) has no output %q (it sets: %s)", s.Name, s.Uses, out, strings.Join(kind.Outputs, ", "))
}

func findStep(st *Stage, name string) *Step {
	for i := range st.Steps {
		if st.Steps[i].Name == name {
			return &st.Steps[i]
		}
	}
	return nil
}

// dependsOn reports whether s runs only once target ended: it needs or
// runs after target, directly or through others.
func dependsOn(st *Stage, s *Step, target string) bool {
	seen := map[string]bool{}
	var walk func(s *Step) bool
	walk = func(s *Step) bool {
		for _, n := range s.deps() {
			if n.Value == target {
				return true
			}
			if seen[n.Value] {
				continue
			}
			seen[n.Value] = true
			if dep := findStep(st, n.Value); dep != nil && walk(dep) {
				return true
			}
		}
		return false
	}
	return walk(s)
}
