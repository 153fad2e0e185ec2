package analysis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/internal/mask"
	"github.com/gantry-ci/gantry/internal/yamlx"
)

// Phase is the state of a measurement, a metric or a run, as Argo names it,
// plus Stopped for a run cut short before its measurements were taken.
type Phase string

// Phases.
const (
	PhasePending      Phase = "Pending"
	PhaseRunning      Phase = "Running"
	PhaseSuccessful   Phase = "Successful"
	PhaseInconclusive Phase = "Inconclusive"
	PhaseStopped      Phase = "Stopped"
	PhaseError        Phase = "Error"
	PhaseFailed       Phase = "Failed"
)

var phaseRank = map[Phase]int{
	PhasePending: 0, PhaseRunning: 1, PhaseSuccessful: 2, PhaseInconclusive: 3,
	PhaseStopped: 4, PhaseError: 5, PhaseFailed: 6,
}

// Worse reports whether p is worse than q.
func (p Phase) Worse(q Phase) bool { return phaseRank[p] > phaseRank[q] }

// Measurement is one value taken from a provider and judged.
type Measurement struct {
	Phase      Phase     `json:"phase"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	Value      string    `json:"value,omitempty"`
	Message    string    `json:"message,omitempty"`
}

// MetricResult is one metric's measurements and counters.
type MetricResult struct {
	Name             string        `json:"name"`
	Phase            Phase         `json:"phase"`
	DryRun           bool          `json:"dryRun,omitempty"`
	Message          string        `json:"message,omitempty"`
	Count            int           `json:"count"`
	Successful       int           `json:"successful"`
	Failed           int           `json:"failed"`
	Inconclusive     int           `json:"inconclusive"`
	Error            int           `json:"error"`
	ConsecutiveError int           `json:"consecutiveError"`
	Measurements     []Measurement `json:"measurements"`
	// SuccessCondition and FailureCondition are the metric's conditions
	// as the template states them, so that a reader can set each
	// measurement against its threshold.
	SuccessCondition string `json:"successCondition,omitempty"`
	FailureCondition string `json:"failureCondition,omitempty"`
}

// Run is the outcome of an analysis run (Argo's AnalysisRun status).
type Run struct {
	Template   string         `json:"template"`
	Phase      Phase          `json:"phase"`
	Message    string         `json:"message,omitempty"`
	StartedAt  time.Time      `json:"startedAt"`
	FinishedAt time.Time      `json:"finishedAt"`
	Metrics    []MetricResult `json:"metricResults"`
}

// Options are what a run needs beyond the template.
type Options struct {
	// Args supplies or overrides argument values. Every argument the
	// template declares must end with a value (given here, by the
	// template, or from a secret), as Argo requires, whether or not a
	// metric uses it; an argument the template does not declare is an
	// error unless SharedArgs.
	Args map[string]string
	// SharedArgs says Args are shared by several templates (a Rollout's
	// analysis passes its args to every template it names): an argument
	// this template does not declare is ignored, as Argo does.
	SharedArgs bool
	// PrometheusURL, when set, replaces the address of every prometheus
	// metric (after argument substitution): the chart's in-cluster
	// Prometheus means nothing on one machine, so the environment's own
	// answers instead. The metric's headers, caCert and insecure still
	// apply.
	PrometheusURL string
	// Secret resolves valueFrom.secretKeyRef (and job env secretKeyRef);
	// ok false means the secret or key does not exist.
	Secret func(name, key string) (value string, ok bool)
	// Gantry is the live load test the gantry provider reads.
	Gantry MetricSource
	// JobEnv is the environment of job commands (KEY=VALUE).
	JobEnv []string
	// Dir is the working directory of job commands.
	Dir string
	Log *slog.Logger
	// OnMeasurement, if set, is called after each measurement.
	OnMeasurement func(metric string, m Measurement)
}

// MetricSource is a live load test's metrics (see load.Test.MetricValue).
type MetricSource interface {
	MetricValue(metric, stat string) (float64, error)
}

// compiled is a metric ready to measure.
type compiled struct {
	m                   Metric
	interval, delay     time.Duration
	count               int // 0: unbounded when interval is set, else 1
	failureLimit        int
	inconclusiveLimit   int
	consecutiveErrLimit int
	success, failure    *Condition
	dryRun              bool
	provider            provider
}

// Errors of arguments, wrapped with the argument's name.
var (
	// ErrArgNoValue: a declared argument has no value, from the template,
	// Options.Args or a secret.
	ErrArgNoValue = errors.New("has no value")
	// ErrArgUndeclared: Options.Args holds an argument the template does
	// not declare.
	ErrArgUndeclared = errors.New("is not declared by the template")
)

var argRef = regexp.MustCompile(`\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}`)

// prepared is a template with arguments resolved and metrics compiled;
// masker hides the secret values it resolved.
type prepared struct {
	t       *Template
	metrics []*compiled
	masker  *mask.Masker
}

func prepare(t *Template, opts Options) (*prepared, error) {
	p := &prepared{t: t, masker: mask.New()}
	if secret := opts.Secret; secret != nil {
		// Every secret resolved, for arguments or a job's env, is masked.
		opts.Secret = func(name, key string) (string, bool) {
			v, ok := secret(name, key)
			if ok {
				p.masker.Add(v)
			}
			return v, ok
		}
	}
	args := map[string]string{}
	for _, a := range t.Spec.Args {
		if v, ok := opts.Args[a.Name]; ok {
			args[a.Name] = v
			continue
		}
		switch {
		case a.Value != nil:
			args[a.Name] = *a.Value
		case a.ValueFrom != nil && a.ValueFrom.SecretKeyRef != nil:
			ref := a.ValueFrom.SecretKeyRef
			if opts.Secret == nil {
				return nil, fmt.Errorf("argument %s: secret %s/%s: no secrets available", a.Name, ref.Name, ref.Key)
			}
			v, ok := opts.Secret(ref.Name, ref.Key)
			if !ok {
				return nil, fmt.Errorf("argument %s: secret %s key %s not found (set %s)", a.Name, ref.Name, ref.Key, SecretEnvName(ref.Name, ref.Key))
			}
			args[a.Name] = v
		case a.ValueFrom != nil && a.ValueFrom.FieldRef != nil:
			return nil, fmt.Errorf("argument %s: valueFrom.fieldRef %q needs a Rollout; pass --arg %s=VALUE", a.Name, a.ValueFrom.FieldRef.FieldPath, a.Name)
		default:
			return nil, fmt.Errorf("argument %s %w (template %s gives none; pass --arg %s=VALUE)", a.Name, ErrArgNoValue, t.Metadata.Name, a.Name)
		}
	}
	if !opts.SharedArgs {
		for _, k := range slices.Sorted(maps.Keys(opts.Args)) {
			if _, ok := args[k]; !ok {
				return nil, fmt.Errorf("argument %s %w %s", k, ErrArgUndeclared, t.Metadata.Name)
			}
		}
	}
	var missing []string
	subst := func(s string) string {
		return argRef.ReplaceAllStringFunc(s, func(ref string) string {
			name := argRef.FindStringSubmatch(ref)[1]
			v, ok := args[name]
			if !ok {
				missing = append(missing, name)
				return ref
			}
			return v
		})
	}
	var dryRes []*regexp.Regexp
	for _, d := range t.Spec.DryRun {
		re, err := regexp.Compile("^(?:" + d.MetricName + ")$")
		if err != nil {
			return nil, fmt.Errorf("dryRun metricName %q: %w", d.MetricName, err)
		}
		dryRes = append(dryRes, re)
	}
	for _, m := range t.Spec.Metrics {
		substStrings(&m, subst)
		if len(missing) > 0 {
			return nil, fmt.Errorf("metric %s: argument %s has no value (pass --arg %s=VALUE)", m.Name, missing[0], missing[0])
		}
		c, err := compileMetric(m, opts)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", m.Name, err)
		}
		for _, re := range dryRes {
			if re.MatchString(m.Name) {
				c.dryRun = true
			}
		}
		p.metrics = append(p.metrics, c)
	}
	return p, nil
}

// SecretEnvName is the environment variable gantry reads a secret key
// from: SECRET_<NAME>_<KEY>, upper-cased, other characters as '_'.
func SecretEnvName(name, key string) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z':
				return r - 'a' + 'A'
			case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
				return r
			}
			return '_'
		}, s)
	}
	return "SECRET_" + clean(name) + "_" + clean(key)
}

// SecretsFromEnv resolves secrets from SECRET_<NAME>_<KEY> in env.
func SecretsFromEnv(env []string) func(name, key string) (string, bool) {
	return func(name, key string) (string, bool) {
		want := SecretEnvName(name, key) + "="
		for i := len(env) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(env[i], want); ok {
				return v, true
			}
		}
		return "", false
	}
}

func parseDur(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := yamlx.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", field, err)
	}
	return d, nil
}

func parseInt(field, s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not an integer", field, s)
	}
	return n, nil
}

func compileMetric(m Metric, opts Options) (*compiled, error) {
	c := &compiled{m: m}
	var err error
	if c.interval, err = parseDur("interval", m.Interval); err != nil {
		return nil, err
	}
	if c.delay, err = parseDur("initialDelay", m.InitialDelay); err != nil {
		return nil, err
	}
	if c.count, err = parseInt("count", m.Count, 0); err != nil {
		return nil, err
	}
	if c.count == 0 && c.interval == 0 {
		c.count = 1
	}
	if c.count > 1 && c.interval == 0 {
		return nil, errors.New("count > 1 needs an interval")
	}
	limit := m.FailureLimit
	if limit == "" {
		limit = m.MaxFailures
	}
	if c.failureLimit, err = parseInt("failureLimit", limit, 0); err != nil {
		return nil, err
	}
	if c.inconclusiveLimit, err = parseInt("inconclusiveLimit", m.InconclusiveLimit, 0); err != nil {
		return nil, err
	}
	if c.consecutiveErrLimit, err = parseInt("consecutiveErrorLimit", m.ConsecutiveErrorLimit, 4); err != nil {
		return nil, err
	}
	if m.SuccessCondition != "" {
		if c.success, err = CompileCondition(m.SuccessCondition); err != nil {
			return nil, err
		}
	}
	if m.FailureCondition != "" {
		if c.failure, err = CompileCondition(m.FailureCondition); err != nil {
			return nil, err
		}
	}
	if c.provider, err = newProvider(m.Provider, opts); err != nil {
		return nil, err
	}
	return c, nil
}

// Check resolves arguments and compiles every metric without measuring, so
// that a pipeline is rejected before it runs.
func Check(t *Template, opts Options) error {
	_, err := prepare(t, opts)
	return err
}

// Execute runs the analysis: every metric takes its measurements at its
// interval until it reaches count or a limit; a metric that fails, errors
// or turns inconclusive ends the run early. Cancelling ctx stops the run;
// metrics that had not taken their count are then Stopped, never
// Successful. The run's phase is the worst of its non-dryRun metrics.
func Execute(ctx context.Context, t *Template, opts Options) (*Run, error) {
	p, err := prepare(t, opts)
	if err != nil {
		return nil, err
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	opts.Log = mask.Logger(p.masker, opts.Log)
	run := &Run{Template: t.Metadata.Name, StartedAt: time.Now(), Metrics: make([]MetricResult, len(p.metrics))}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, c := range p.metrics {
		res := &run.Metrics[i]
		res.Name, res.DryRun, res.Phase = c.m.Name, c.dryRun, PhaseRunning
		res.SuccessCondition, res.FailureCondition = c.m.SuccessCondition, c.m.FailureCondition
		wg.Go(func() {
			phase := measureLoop(ctx, c, res, &mu, p.masker, opts)
			mu.Lock()
			res.Phase = phase
			mu.Unlock()
			if phase != PhaseSuccessful && phase != PhaseStopped && !c.dryRun {
				cancel() // fail fast: the run's outcome is decided
			}
		})
	}
	wg.Wait()
	run.FinishedAt = time.Now()
	run.Phase = PhaseSuccessful
	var msgs []string
	for _, r := range run.Metrics {
		if r.DryRun {
			continue
		}
		if r.Phase.Worse(run.Phase) {
			run.Phase = r.Phase
		}
		if r.Phase != PhaseSuccessful && r.Message != "" {
			msgs = append(msgs, r.Name+": "+r.Message)
		}
	}
	run.Message = strings.Join(msgs, "; ")
	return run, nil
}

// measureLoop takes one metric's measurements and returns its final phase.
func measureLoop(ctx context.Context, c *compiled, res *MetricResult, mu *sync.Mutex, masker *mask.Masker, opts Options) Phase {
	wait := func(d time.Duration) bool {
		if d <= 0 {
			return ctx.Err() == nil
		}
		tm := time.NewTimer(d)
		defer tm.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-tm.C:
			return true
		}
	}
	stop := func() Phase {
		mu.Lock()
		defer mu.Unlock()
		if c.count == 0 { // runs until stopped, as Argo's background analysis
			res.Message = fmt.Sprintf("stopped after %d measurements", res.Count)
			return PhaseSuccessful
		}
		res.Message = fmt.Sprintf("stopped after %d of %d measurements", res.Count, c.count)
		return PhaseStopped
	}
	if !wait(c.delay) {
		return stop()
	}
	for {
		m := Measurement{StartedAt: time.Now()}
		val, shown, err := c.provider.measure(ctx, c.m)
		m.FinishedAt = time.Now()
		if ctx.Err() != nil && err != nil {
			return stop()
		}
		m.Value = masker.Mask(shown)
		if d, ok := val.(decided); ok && err == nil {
			m.Phase = Phase(d)
		} else if err != nil {
			m.Phase, m.Message = PhaseError, masker.Mask(err.Error())
		} else if m.Phase, err = assess(val, c.success, c.failure); err != nil {
			m.Message = masker.Mask(err.Error())
		}
		mu.Lock()
		res.Measurements = append(res.Measurements, m)
		switch m.Phase {
		case PhaseSuccessful:
			res.Successful++
		case PhaseFailed:
			res.Failed++
		case PhaseInconclusive:
			res.Inconclusive++
		case PhaseError:
			res.Error++
			res.ConsecutiveError++
		}
		if m.Phase != PhaseError {
			res.Count++
			res.ConsecutiveError = 0
		}
		phase := c.judge(res)
		mu.Unlock()
		opts.Log.Debug("measurement", "metric", c.m.Name, "phase", m.Phase, "value", m.Value, "message", m.Message)
		if opts.OnMeasurement != nil {
			opts.OnMeasurement(c.m.Name, m)
		}
		if phase != PhaseRunning {
			return phase
		}
		if !wait(c.interval) {
			return stop()
		}
	}
}

// judge applies Argo's metric rules to the counters so far.
func (c *compiled) judge(r *MetricResult) Phase {
	switch {
	case c.failureLimit >= 0 && r.Failed > c.failureLimit:
		r.Message = fmt.Sprintf("%d failed measurements exceed failureLimit %d", r.Failed, c.failureLimit)
		return PhaseFailed
	case c.inconclusiveLimit >= 0 && r.Inconclusive > c.inconclusiveLimit:
		r.Message = fmt.Sprintf("%d inconclusive measurements exceed inconclusiveLimit %d", r.Inconclusive, c.inconclusiveLimit)
		return PhaseInconclusive
	case c.consecutiveErrLimit >= 0 && r.ConsecutiveError > c.consecutiveErrLimit:
		r.Message = fmt.Sprintf("%d consecutive errors exceed consecutiveErrorLimit %d", r.ConsecutiveError, c.consecutiveErrLimit)
		if n := len(r.Measurements); n > 0 {
			r.Message += ": " + r.Measurements[n-1].Message
		}
		return PhaseError
	case c.count > 0 && r.Count >= c.count:
		return PhaseSuccessful
	}
	return PhaseRunning
}
