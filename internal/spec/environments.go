package spec

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gantry-ci/gantry/internal/expression"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/yamlx"
)

// DefaultChart is the chart an environment renders when it names none and
// the directory exists.
const DefaultChart = "deploy/chart"

// Runtimes an environment may name.
const (
	RuntimeLocal      = "local"
	RuntimeKubernetes = "kubernetes"
)

// Environment is one entry of the pipeline's `environments:` block: what
// a deploy to it renders and runs, and what it demands of the image.
type Environment struct {
	// Name is the map key.
	Name string `yaml:"-"`
	// Chart is the Helm chart directory, relative to the repository
	// (default deploy/chart when it exists).
	Chart string `yaml:"chart"`
	// Values are values files, relative to the repository, applied in
	// order after the chart's values.yaml.
	Values []yamlx.String `yaml:"values"`
	// Set overrides single values by dotted path (image.pullPolicy,
	// config.LOG_LEVEL), after the values files.
	Set map[string]yaml.Node `yaml:"set"`
	// Services the environment keeps for its life: postgres, redis, sqs.
	Services []yamlx.String `yaml:"services"`
	// PortEnv names the variable an instance learns its port from
	// (default PORT).
	PortEnv string `yaml:"port_env"`
	// Env is added to every instance's environment; ${...} may read git,
	// run, pipeline and the pipeline's env.
	Env map[string]string `yaml:"env"`
	// Policy are Kyverno ClusterPolicy files enforced before anything
	// starts.
	Policy []yamlx.String `yaml:"policy"`
	// Require lists the evidence gates the digest must carry, passing
	// and signed (as `gantry verify --require`).
	Require []yamlx.String `yaml:"require"`
	// Key verifies the evidence: a public key file of the repository or a
	// KMS URI (default: the key the run signs with).
	Key        string      `yaml:"key"`
	Prometheus *Prometheus `yaml:"prometheus"`
	// Runtime is where instances run: local (default) or kubernetes.
	Runtime string `yaml:"runtime"`
	// Kubernetes says which cluster, namespace and Helm release a
	// kubernetes environment deploys to (runtime: kubernetes only).
	Kubernetes *Kubernetes `yaml:"kubernetes"`

	Pos yamlx.Pos       `yaml:"-"`
	At  yamlx.Positions `yaml:"-"`
	// EnvAt holds the position of each env value.
	EnvAt map[string]yamlx.Pos `yaml:"-"`
}

// Prometheus says where the environment's alerts come from: rule files
// loaded into a Prometheus gantry runs, or an existing server.
type Prometheus struct {
	Rules []yamlx.String  `yaml:"rules"`
	URL   string          `yaml:"url"`
	Pos   yamlx.Pos       `yaml:"-"`
	At    yamlx.Positions `yaml:"-"`
}

// Kubernetes is the `kubernetes:` block of a kubernetes environment.
type Kubernetes struct {
	// Kubeconfig is the kubeconfig file ("~/" is the home directory);
	// empty: $KUBECONFIG, else ~/.kube/config, else the in-cluster
	// configuration of a pod's service account.
	Kubeconfig string `yaml:"kubeconfig"`
	// Context is the kubeconfig context (default: its current context).
	Context string `yaml:"context"`
	// Namespace of the release (default: the context's namespace, else
	// "default").
	Namespace string `yaml:"namespace"`
	// Release is the Helm release name (default: the environment's name).
	Release string `yaml:"release"`
	// Timeout bounds a deploy or a rollback until the workloads are ready
	// (default 5m; a deploy step's with.timeout bounds the whole step).
	Timeout time.Duration `yaml:"timeout"`
	// ImageValues are the values paths the pinned image is set through
	// (default image.repository and image.digest, as the example chart
	// takes them).
	ImageValues *ImageValues `yaml:"image_values"`

	Pos yamlx.Pos       `yaml:"-"`
	At  yamlx.Positions `yaml:"-"`
}

// ImageValues names the values a chart takes the image from: Repository
// receives host/repo, Digest receives sha256:...
type ImageValues struct {
	Repository string          `yaml:"repository"`
	Digest     string          `yaml:"digest"`
	Pos        yamlx.Pos       `yaml:"-"`
	At         yamlx.Positions `yaml:"-"`
}

// Default image values paths.
const (
	DefaultImageRepositoryValue = "image.repository"
	DefaultImageDigestValue     = "image.digest"
)

// releaseNameRE is a Helm release name: a DNS-1123 subdomain of at most
// 53 characters.
var releaseNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// namespaceRE is a namespace name: a DNS-1123 label.
var namespaceRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Files returns the values of a list of positioned strings.
func Files(l []yamlx.String) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = s.Value
	}
	return out
}

// SetValues returns the environment's set: block as plain values (strings,
// numbers, booleans, lists, maps), keyed by dotted path.
func (e *Environment) SetValues() (map[string]any, error) {
	out := make(map[string]any, len(e.Set))
	for k, n := range e.Set {
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("environment %s: set.%s: %w", e.Name, k, err)
		}
		out[k] = v
	}
	return out, nil
}

var environmentNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// setPathRE is one dotted values path: non-empty keys separated by dots,
// a backslash escaping a dot or a backslash inside a key
// (podAnnotations.prometheus\.io/scrape), as internal/chart parses it.
var setPathRE = regexp.MustCompile(`^(?:[^.\\]|\\[.\\])+(?:\.(?:[^.\\]|\\[.\\])+)*$`)

// ErrEnvironmentNotFound is returned (wrapped) by FindEnvironment.
var ErrEnvironmentNotFound = errors.New("environment not declared")

// FindEnvironment returns the named environment of p.
func (p *Pipeline) FindEnvironment(name string) (*Environment, error) {
	e, ok := p.Environments[name]
	if !ok {
		names := slices.Sorted(mapKeys(p.Environments))
		have := "it declares none"
		if len(names) > 0 {
			have = "it declares " + strings.Join(names, ", ")
		}
		return nil, fmt.Errorf("%w: %s has no environment %q (%s)", ErrEnvironmentNotFound, p.File, name, have)
	}
	return e, nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// environmentRoots are what ${...} in an environment's env may read: the
// values are resolved when the deploy runs, outside any stage, and are
// recorded with the revision, so secrets are refused.
var environmentRoots = []string{"git", "sha", "branch", "event", "base", "run", "pipeline", "env"}

// validateEnvironments checks the environments: block.
func (v *validator) validateEnvironments(root *yaml.Node) {
	names := slices.Sorted(mapKeys(v.p.Environments))
	envs := mapValue(root, "environments")
	for _, name := range names {
		e := v.p.Environments[name]
		if e == nil {
			e = &Environment{}
			v.p.Environments[name] = e
		}
		e.Name = name
		en := mapValue(envs, name)
		if en != nil {
			e.EnvAt = envPositions(en)
			if e.Pos.Line == 0 {
				e.Pos = yamlx.PosOf(en)
			}
		}
		v.checkEnvironment(e)
	}
}

func (v *validator) checkEnvironment(e *Environment) {
	at := func(field string) yamlx.Pos {
		if p, ok := e.At[field]; ok {
			return p
		}
		return e.Pos
	}
	if !environmentNameRE.MatchString(e.Name) {
		v.errAt(e.Pos, "environment name %q must start with a lower-case letter and hold only a-z, 0-9 and -", e.Name)
	}
	switch e.Runtime {
	case "", RuntimeLocal:
		e.Runtime = RuntimeLocal
	case RuntimeKubernetes:
		v.checkKubernetes(e, at)
	default:
		v.errAt(at("runtime"), "environment %s: unknown runtime %q (known: local, kubernetes)", e.Name, e.Runtime)
	}
	if e.Kubernetes != nil && e.Runtime != RuntimeKubernetes {
		v.errAt(at("kubernetes"), "environment %s: kubernetes: is read only by runtime: kubernetes (this environment runs on the %s runtime); remove it or set runtime: kubernetes", e.Name, e.Runtime)
	}
	if e.Chart == "" {
		if v.opts.repo == "" || isDir(filepath.Join(v.opts.repo, DefaultChart)) {
			e.Chart = DefaultChart
		} else {
			v.errAt(e.Pos, "environment %s names no chart and %s does not exist in the repository; set chart: to the Helm chart directory", e.Name, DefaultChart)
		}
	}
	if e.Chart != "" {
		v.checkEnvPath(e, step.PathRef{Field: "chart", Value: e.Chart, Type: step.PathChart}, at("chart"))
	}
	for _, f := range e.Values {
		v.checkEnvPath(e, step.PathRef{Field: "values", Value: f.Value, Type: step.PathFile}, f.Pos)
	}
	for _, f := range e.Policy {
		v.checkEnvPath(e, step.PathRef{Field: "policy", Value: f.Value, Type: step.PathFile}, f.Pos)
	}
	for _, k := range slices.Sorted(mapKeys(e.Set)) {
		n := e.Set[k]
		if !setPathRE.MatchString(k) {
			v.errAt(yamlx.PosOf(&n), "environment %s: set key %q must be a dotted values path (image.pullPolicy, config.LOG_LEVEL)", e.Name, k)
		}
	}
	seen := map[string]bool{}
	for _, s := range e.Services {
		if v.reg.Services != nil && !slices.Contains(v.reg.Services, s.Value) {
			known := slices.Clone(v.reg.Services)
			sort.Strings(known)
			v.errAt(s.Pos, "environment %s: unknown service %q (known: %s)", e.Name, s.Value, strings.Join(known, ", "))
		}
		if seen[s.Value] {
			v.errAt(s.Pos, "environment %s: service %q is listed twice", e.Name, s.Value)
		}
		seen[s.Value] = true
	}
	if e.PortEnv == "" && e.Runtime == RuntimeLocal {
		e.PortEnv = "PORT"
	} else if e.PortEnv != "" && !envNameRE.MatchString(e.PortEnv) {
		v.errAt(at("port_env"), "environment %s: port_env %q is not a valid variable name", e.Name, e.PortEnv)
	}
	for _, k := range slices.Sorted(mapKeys(e.Env)) {
		pos, ok := e.EnvAt[k]
		if !ok {
			pos = at("env")
		}
		if !envNameRE.MatchString(k) {
			v.errAt(pos, "environment %s: env name %q is not a valid variable name", e.Name, k)
		}
		v.checkEnvironmentTemplate(e, e.Env[k], pos)
	}
	for _, r := range e.Require {
		if len(v.reg.Gates) > 0 && !slices.Contains(v.reg.Gates, r.Value) {
			v.errAt(r.Pos, "environment %s: require names unknown gate %q (gates: %s)", e.Name, r.Value, strings.Join(v.reg.Gates, ", "))
		} else if !nameRE.MatchString(r.Value) {
			v.errAt(r.Pos, "environment %s: require %q is not a gate name", e.Name, r.Value)
		}
	}
	if e.Key != "" && !strings.Contains(e.Key, "://") {
		v.checkEnvPath(e, step.PathRef{Field: "key", Value: e.Key, Type: step.PathFile}, at("key"))
	}
	if pr := e.Prometheus; pr != nil {
		pat := at("prometheus")
		switch {
		case len(pr.Rules) > 0 && pr.URL != "":
			v.errAt(pat, "environment %s: prometheus takes rules (files for a Prometheus gantry runs) or url (an existing server), not both", e.Name)
		case len(pr.Rules) == 0 && pr.URL == "":
			v.errAt(pat, "environment %s: prometheus needs rules or url", e.Name)
		}
		for _, f := range pr.Rules {
			v.checkEnvPath(e, step.PathRef{Field: "prometheus.rules", Value: f.Value, Type: step.PathFile}, f.Pos)
		}
		if pr.URL != "" {
			u, err := url.Parse(pr.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				v.errAt(pr.At["url"], "environment %s: prometheus.url must be an http(s) URL", e.Name)
			}
		}
	}
}

// checkKubernetes checks a kubernetes environment: its kubernetes: block
// (defaults filled in) and the fields only the local runtime reads, which
// would do nothing here.
func (v *validator) checkKubernetes(e *Environment, at func(string) yamlx.Pos) {
	localOnly := []struct {
		field, why string
		set        bool
	}{
		{"services", "the local runtime starts services as processes; on a cluster the chart or the platform provides them", len(e.Services) > 0},
		{"port_env", "pods listen on their declared container ports", e.PortEnv != ""},
		{"env", "set the chart's values (set:) to give pods environment variables", len(e.Env) > 0},
	}
	for _, f := range localOnly {
		if f.set {
			v.errAt(at(f.field), "environment %s: %s: is read only by the local runtime and would do nothing on runtime: kubernetes (%s)", e.Name, f.field, f.why)
		}
	}
	if pr := e.Prometheus; pr != nil && len(pr.Rules) > 0 {
		v.errAt(pr.At["rules"], "environment %s: prometheus.rules: are loaded into a Prometheus the local runtime runs and would do nothing on runtime: kubernetes; name the cluster's Prometheus with prometheus.url", e.Name)
	}
	if e.Kubernetes == nil {
		e.Kubernetes = &Kubernetes{Pos: e.Pos}
	}
	k := e.Kubernetes
	kat := func(field string) yamlx.Pos {
		if p, ok := k.At[field]; ok {
			return p
		}
		return at("kubernetes")
	}
	if strings.Contains(k.Kubeconfig, "${") {
		v.errAt(kat("kubeconfig"), "environment %s: kubernetes.kubeconfig may not hold ${...}; name the file", e.Name)
	}
	if k.Namespace != "" && (len(k.Namespace) > 63 || !namespaceRE.MatchString(k.Namespace)) {
		v.errAt(kat("namespace"), "environment %s: kubernetes.namespace %q is not a namespace name (lower-case letters, digits and -, at most 63)", e.Name, k.Namespace)
	}
	if k.Release == "" {
		k.Release = e.Name
	}
	if len(k.Release) > 53 || !releaseNameRE.MatchString(k.Release) {
		v.errAt(kat("release"), "environment %s: kubernetes.release %q is not a Helm release name (lower-case letters, digits, - and ., at most 53)", e.Name, k.Release)
	}
	switch {
	case k.Timeout < 0:
		v.errAt(kat("timeout"), "environment %s: kubernetes.timeout must be positive, got %s", e.Name, k.Timeout)
	case k.Timeout == 0:
		k.Timeout = DefaultKubernetesTimeout
	}
	if k.ImageValues == nil {
		k.ImageValues = &ImageValues{}
	}
	iv := k.ImageValues
	if iv.Repository == "" {
		iv.Repository = DefaultImageRepositoryValue
	}
	if iv.Digest == "" {
		iv.Digest = DefaultImageDigestValue
	}
	for _, f := range [][2]string{{"repository", iv.Repository}, {"digest", iv.Digest}} {
		field, p := f[0], f[1]
		if !setPathRE.MatchString(p) {
			pos := kat("image_values")
			if q, ok := iv.At[field]; ok {
				pos = q
			}
			v.errAt(pos, "environment %s: kubernetes.image_values.%s %q must be a dotted values path (image.digest)", e.Name, field, p)
		}
	}
	if iv.Repository == iv.Digest {
		v.errAt(kat("image_values"), "environment %s: kubernetes.image_values: repository and digest name the same value %q", e.Name, iv.Repository)
	}
}

// DefaultKubernetesTimeout bounds a kubernetes deploy until its workloads
// are ready when kubernetes.timeout is not set.
const DefaultKubernetesTimeout = 5 * time.Minute

// checkEnvPath checks one repository path of an environment as
// CheckPaths checks a step's: inside the repository, existing, of the
// right type.
func (v *validator) checkEnvPath(e *Environment, ref step.PathRef, pos yamlx.Pos) {
	if strings.Contains(ref.Value, "${") {
		v.errAt(pos, "environment %s: %s may not hold ${...}; name the file", e.Name, ref.Field)
		return
	}
	msg, kind, suggestion := checkPath(v.opts.repo, ref)
	if kind == nil {
		return
	}
	if suggestion != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", suggestion)
	}
	v.errs = append(v.errs, &PathError{Ref: ref, Suggestion: suggestion, At: pos.Errorf(v.p.File, "environment %s: %s: %s", e.Name, ref.Field, msg), Err: kind})
}

// checkEnvironmentTemplate checks a ${...} template of an environment's
// env: it may read only environmentRoots, and env.NAME of the pipeline's
// env.
func (v *validator) checkEnvironmentTemplate(e *Environment, s string, pos yamlx.Pos) {
	if !strings.Contains(s, "${") {
		return
	}
	t, err := expression.ParseTemplate(s)
	if err != nil {
		v.errAt(pos, "%v", err)
		return
	}
	for _, prog := range t.Programs() {
		refs, err := expression.Refs(prog.String())
		if err != nil {
			v.errAt(pos, "%v", err)
			continue
		}
		for _, r := range refs {
			switch {
			case r[0] == "secrets":
				v.errAt(pos, "environment %s: env may not read secrets (instance settings are recorded with the revision); the environment's services provide connection settings", e.Name)
			case !slices.Contains(environmentRoots, r[0]):
				v.errAt(pos, "environment %s: env may read only %s, not %s (it is resolved at deploy time, outside any stage)", e.Name, strings.Join(environmentRoots, ", "), r)
			case r[0] == "env" && len(r) >= 2:
				if _, ok := v.p.Env[r[1]]; !ok {
					v.errAt(pos, "env.%s is not set (the pipeline's env has no %s)", r[1], r[1])
				}
			}
		}
	}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// EnvironmentExprEnv is what an environment's env templates see, built
// from a run's facts: git, run.id, pipeline.name and env (the pipeline's
// env as the deploying step sees it).
func EnvironmentExprEnv(g step.Git, runID, pipeline string, env map[string]string) map[string]any {
	short := g.SHA
	if len(short) > 12 {
		short = short[:12]
	}
	e := make(map[string]any, len(env))
	for k, val := range env {
		e[k] = val
	}
	return map[string]any{
		"event": g.Event, "branch": g.Branch, "base": g.BaseRef, "sha": g.SHA,
		"git": map[string]any{
			"sha": g.SHA, "short_sha": short, "branch": g.Branch, "event": g.Event, "base": g.BaseRef, "time": g.Time,
		},
		"run":      map[string]any{"id": runID},
		"pipeline": map[string]any{"name": pipeline},
		"env":      e,
	}
}

// ResolveEnv evaluates the environment's env with expression environment
// x (see EnvironmentExprEnv) and returns KEY=VALUE, sorted by key.
func (e *Environment) ResolveEnv(x map[string]any) ([]string, error) {
	var out []string
	for _, k := range slices.Sorted(mapKeys(e.Env)) {
		val := e.Env[k]
		if strings.Contains(val, "${") {
			t, err := expression.ParseTemplate(val)
			if err != nil {
				return nil, fmt.Errorf("environment %s: env.%s: %w", e.Name, k, err)
			}
			if val, err = t.EvalString(x); err != nil {
				return nil, fmt.Errorf("environment %s: env.%s: %w", e.Name, k, err)
			}
		}
		out = append(out, k+"="+val)
	}
	return out, nil
}

// ParseEnvironments decodes only the name, env:, environments: and
// monitors: blocks of a pipeline file's contents and checks the
// environments against the repository at repo ("" checks only that paths
// stay inside), for the deploy kind and `gantry deploy`, which read the
// environment of a pipeline validated elsewhere (and the blue-green kind,
// its monitors). services lists the known services (nil: not checked).
// The returned Pipeline holds only File, Source, Name, Env, Environments
// and Monitors.
func ParseEnvironments(file string, data []byte, services []string, repo string) (*Pipeline, error) {
	root, err := yamlx.Parse(file, data)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{File: file, Source: data}
	d := &yamlx.Decoder{File: file}
	for key, dst := range map[string]any{"name": &p.Name, "env": &p.Env, "environments": &p.Environments, "monitors": &p.Monitors} {
		if n := mapValue(root, key); n != nil {
			if err := d.Decode(n, dst); err != nil {
				return nil, err
			}
		}
	}
	v := &validator{p: p, reg: Registry{Services: services}, src: data, opts: options{repo: repo}}
	v.validateEnvironments(root)
	v.validateMonitors(root)
	if len(v.errs) > 0 {
		slices.SortStableFunc(v.errs, byPosition)
		return nil, errors.Join(v.errs...)
	}
	return p, nil
}
