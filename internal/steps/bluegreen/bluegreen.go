// Package bluegreen is the blue-green step kind (the seed's Promote Prod):
// it renders the environment's chart as the deploy kind does, reads the
// chart's Argo Rollout (strategy.blueGreen and its AnalysisTemplates),
// asks the environment controller (runtime.Roller, in `gantry serve`) to
// roll the pushed digest out blue/green, and follows the rollout: each
// step change and each analysis measurement, a pause waiting for
// `gantry rollout promote`, until it is Healthy (the step passes) or
// Degraded (it fails with the failing metric and its values).
package bluegreen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/runtime"
	"github.com/gantry-ci/gantry/internal/serve"
	"github.com/gantry-ci/gantry/internal/spec"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/steps/deploy"
)

// Controller is what the step needs of the environment controller: its
// deploys (the environment's status) and its rollouts. The serve client
// is one.
type Controller interface {
	runtime.Deployer
	runtime.Roller
}

// Connect returns the environment controller for a state dir, starting
// the serve process when none runs.
type Connect func(ctx context.Context, stateDir string) (Controller, error)

// Outputs of a blue-green step.
var Outputs = []string{"url", "preview_url", "digest", "revision", "phase"}

// NewKind returns `uses: blue-green`, rolling out through connect.
func NewKind(connect Connect) step.Kind {
	return step.Kind{
		Name:    "blue-green",
		Summary: "roll the pushed digest out blue/green with the chart's Argo Rollout and AnalysisTemplates (gantry serve)",
		Outputs: Outputs,
		New: func(in step.Inputs) (step.Step, error) {
			return New(in, connect)
		},
	}
}

// Config is the `with:` block.
type Config struct {
	// Environment names an entry of the pipeline's environments: block.
	Environment string `yaml:"environment"`
	// Image is REPO@sha256:... to roll out (default: the image pushed
	// earlier in the run).
	Image string `yaml:"image"`
	// Traffic sends a subset of active requests to green before
	// promotion.
	Traffic *Traffic `yaml:"traffic"`
	// Monitors names the pipeline's monitors run after promotion
	// (absent: all of them; [] none).
	Monitors []string `yaml:"monitors"`
	// AnalysisInterval replaces the interval of every analysis metric
	// that has one ("3s"; a string, so that ${vars.NAME} works).
	AnalysisInterval string `yaml:"analysis_interval"`
	// Prometheus is the Prometheus the analysis queries instead of the
	// chart's in-cluster address (default: the environment's own).
	Prometheus string `yaml:"prometheus"`
}

// Traffic is with.traffic: a header match or a percentage.
type Traffic struct {
	Header  string `yaml:"header"`
	Value   string `yaml:"value"`
	Percent int    `yaml:"percent"`
}

type blueGreenStep struct {
	cfg      Config
	interval time.Duration
	connect  Connect
}

// New decodes and checks the inputs.
func New(in step.Inputs, connect Connect) (step.Step, error) {
	var c Config
	if err := in.Decode(&c); err != nil {
		return nil, err
	}
	if c.Environment == "" {
		return nil, in.Errorf("environment", "with.environment is required: the name of an entry of the pipeline's environments: block")
	}
	settled := func(v string) bool { return in.Resolved() || !strings.Contains(v, "${") }
	if c.Image != "" && settled(c.Image) {
		if _, err := name.NewDigest(c.Image); err != nil {
			return nil, in.Errorf("image", "with.image %q is not REPO@sha256:...: a rollout runs an image by digest, never a tag", c.Image)
		}
	}
	if t := c.Traffic; t != nil {
		switch {
		case t.Header != "" && t.Percent != 0:
			return nil, in.Errorf("traffic", "with.traffic: set header (and value) or percent, not both")
		case t.Header == "" && t.Value != "":
			return nil, in.Errorf("traffic.value", "with.traffic.value needs with.traffic.header")
		case t.Header != "" && !validHeader(t.Header):
			return nil, in.Errorf("traffic.header", "with.traffic.header %q is not an HTTP header name", t.Header)
		case t.Header == "" && (t.Percent < 1 || t.Percent > 100):
			return nil, in.Errorf("traffic.percent", "with.traffic.percent must be 1 to 100, got %d", t.Percent)
		}
	}
	var interval time.Duration
	if c.AnalysisInterval != "" && settled(c.AnalysisInterval) {
		d, err := time.ParseDuration(c.AnalysisInterval)
		if err != nil || d <= 0 {
			return nil, in.Errorf("analysis_interval", "with.analysis_interval %q is not a positive duration such as 30s", c.AnalysisInterval)
		}
		interval = d
	}
	if c.Prometheus != "" && settled(c.Prometheus) {
		if u, err := url.Parse(c.Prometheus); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, in.Errorf("prometheus", "with.prometheus %q is not an http(s) URL", c.Prometheus)
		}
	}
	for i, m := range c.Monitors {
		if m == "" {
			return nil, in.Errorf("monitors."+strconv.Itoa(i), "with.monitors: empty monitor name")
		}
	}
	return &blueGreenStep{cfg: c, interval: interval, connect: connect}, nil
}

func validHeader(h string) bool {
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return h != ""
}

// Run rolls out and follows the rollout to its end.
func (s *blueGreenStep) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	out := env.Stdout
	if out == nil {
		out = io.Discard
	}
	if len(env.PipelineSource) == 0 {
		return nil, errors.New("blue-green: the run's pipeline file is not available to the step")
	}
	p, err := spec.ParseEnvironments(env.PipelineFile, env.PipelineSource, nil, env.Dir)
	if err != nil {
		return nil, fmt.Errorf("blue-green: %w", err)
	}
	e, err := p.FindEnvironment(s.cfg.Environment)
	if err != nil {
		return nil, fmt.Errorf("blue-green: %w", err)
	}
	monitors, err := p.MonitorsFor(s.cfg.Monitors)
	if err != nil {
		return nil, fmt.Errorf("blue-green: with.monitors: %w", err)
	}
	image, from := s.cfg.Image, "with.image"
	if image == "" {
		if image, from, err = deploy.PushedImage(env); err != nil {
			return nil, fmt.Errorf("blue-green: %w", err)
		}
	}
	fmt.Fprintf(out, "rolling %s out to %s blue/green (image from %s)\n", image, e.Name, from)
	runID, _ := strconv.ParseInt(env.RunID, 10, 64)
	if e.Runtime == spec.RuntimeKubernetes {
		st, err := s.runKubernetes(ctx, deploy.Request{
			Dir: env.Dir, Environment: e, Image: image,
			DefaultKey: deploy.DefaultKey(env), StateDir: env.StateDir,
			Who: "run " + env.RunID, Run: runID, Reason: "blue-green rollout",
		}, e, monitors, env.Log, out)
		return result(e, st, err)
	}
	built, err := deploy.Build(ctx, deploy.Request{
		Dir: env.Dir, Environment: e, Image: image,
		Expr:       spec.EnvironmentExprEnv(env.Git, env.RunID, p.Name, deploy.VarsMap(env.Vars)),
		DefaultKey: deploy.DefaultKey(env), StateDir: env.StateDir,
		Who: "run " + env.RunID, Run: runID, Reason: "blue-green rollout",
	})
	if err != nil {
		return nil, fmt.Errorf("blue-green: %w", err)
	}
	for _, n := range built.Notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
	if built.BlueGreen == nil {
		return nil, fmt.Errorf("blue-green: the chart %s of environment %s renders no Argo Rollout with strategy.blueGreen; use uses: deploy for a plain deploy", e.Chart, e.Name)
	}
	c, err := s.connect(ctx, env.StateDir)
	if err != nil {
		return nil, fmt.Errorf("blue-green: reach the environment controller (gantry serve): %w", err)
	}
	defer deploy.Release(c)

	strategy := *built.BlueGreen
	prom := s.cfg.Prometheus
	if prom == "" {
		if st, err := c.Status(ctx, e.Name); err == nil {
			prom = st.PrometheusURL
		}
	}
	s.apply(&strategy, prom, out)
	if err := analysisSecrets(&strategy, env.Vars, out); err != nil {
		return nil, fmt.Errorf("blue-green: %w", err)
	}
	req := runtime.RolloutRequest{Deploy: built.Request, Strategy: strategy, Monitors: monitors}
	st, err := Start(ctx, c, req, out)
	if err != nil {
		return nil, err
	}
	st, err = Follow(ctx, c, e.Name, st, monitors, out)
	return result(e, st, err)
}

// result is the step's outcome once the rollout was followed to st.
func result(e *spec.Environment, st runtime.RolloutStatus, err error) (*step.Result, error) {
	outputs := map[string]any{"url": st.ActiveURL, "preview_url": st.PreviewURL, "digest": st.Digest, "revision": st.Desired, "phase": string(st.Phase)}
	if err != nil {
		return &step.Result{Outputs: outputs}, err
	}
	summary := fmt.Sprintf("%s revision %d %s, serving %s", e.Name, st.Desired, st.Phase, shortDigest(st.Digest))
	if st.ActiveURL != "" {
		summary += " at " + st.ActiveURL
	}
	return &step.Result{Outputs: outputs, Summary: summary}, nil
}

// apply puts the step's inputs into the chart's strategy: the traffic
// split, the analysis interval and the Prometheus address.
func (s *blueGreenStep) apply(bg *runtime.BlueGreen, prom string, out io.Writer) {
	for _, n := range bg.Notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
	if t := s.cfg.Traffic; t != nil {
		bg.PreviewTraffic = &runtime.TrafficSplit{Header: t.Header, Value: t.Value, Percent: t.Percent}
	}
	for _, a := range []*runtime.RolloutAnalysis{bg.PrePromotionAnalysis, bg.PostPromotionAnalysis} {
		if a == nil {
			continue
		}
		if prom != "" {
			a.PrometheusURL = prom
		}
		if s.interval > 0 {
			for _, t := range a.Templates {
				setInterval(t, s.interval)
			}
		}
	}
	if s.interval > 0 {
		fmt.Fprintf(out, "analysis: every metric with an interval measures every %s (with.analysis_interval)\n", s.interval)
	}
	if prom != "" {
		fmt.Fprintf(out, "analysis: prometheus metrics query %s\n", prom)
	}
}

// analysisSecrets gives each AnalysisTemplate argument taken from
// valueFrom.secretKeyRef (and not given by the Rollout's args) its value
// from the step's environment, SECRET_<NAME>_<KEY>, as `gantry analysis
// run` reads it: a pipeline secret of that name, which the step lists in
// its secrets:, so no other step sees it. A missing one is an error
// before anything rolls out, naming the variable.
func analysisSecrets(bg *runtime.BlueGreen, vars []string, out io.Writer) error {
	lookup := analysis.SecretsFromEnv(vars)
	for _, a := range []*runtime.RolloutAnalysis{bg.PrePromotionAnalysis, bg.PostPromotionAnalysis} {
		if a == nil {
			continue
		}
		given := map[string]bool{}
		for _, arg := range a.Args {
			given[arg.Name] = true
		}
		for _, t := range a.Templates {
			for _, arg := range t.Spec.Args {
				if given[arg.Name] || arg.ValueFrom == nil || arg.ValueFrom.SecretKeyRef == nil {
					continue
				}
				ref := arg.ValueFrom.SecretKeyRef
				name := analysis.SecretEnvName(ref.Name, ref.Key)
				v, ok := lookup(ref.Name, ref.Key)
				if !ok {
					return fmt.Errorf("AnalysisTemplate %s: argument %s is valueFrom.secretKeyRef %s/%s, read from the secret %s: define it in the pipeline's secrets: and list it in this step's secrets:",
						t.Metadata.Name, arg.Name, ref.Name, ref.Key, name)
				}
				if a.Secrets == nil {
					a.Secrets = map[string]string{}
				}
				if _, seen := a.Secrets[name]; !seen {
					fmt.Fprintf(out, "analysis: AnalysisTemplate %s argument %s from the secret %s\n", t.Metadata.Name, arg.Name, name)
				}
				a.Secrets[name] = v
			}
		}
	}
	return nil
}

// setInterval replaces the interval of each metric that has one; a
// metric without one measures once, and giving it an interval would make
// it measure until the analysis is stopped.
func setInterval(t *analysis.Template, d time.Duration) {
	if t == nil {
		return
	}
	for i := range t.Spec.Metrics {
		if t.Spec.Metrics[i].Interval != "" {
			t.Spec.Metrics[i].Interval = d.String()
		}
	}
}

// Start starts the rollout of req, or attaches to the one in progress
// for the same digest (a resumed run, or a run after a crash of the
// previous one), and returns its status.
func Start(ctx context.Context, r runtime.Roller, req runtime.RolloutRequest, out io.Writer) (runtime.RolloutStatus, error) {
	envName := req.Deploy.Environment
	digest := requestDigest(req)
	cur, err := r.RolloutStatus(ctx, envName)
	switch {
	case err == nil && digest != "" && cur.Digest == digest && cur.Phase != runtime.RolloutDegraded:
		fmt.Fprintf(out, "%s: attaching to the rollout of %s already in progress (revision %d, %s)\n", envName, shortDigest(digest), cur.Desired, cur.Phase)
		return cur, nil
	case err != nil && !errors.Is(err, runtime.ErrNoRollout):
		return cur, fmt.Errorf("blue-green: rollout status of %s: %w", envName, err)
	}
	st, err := r.Rollout(ctx, req)
	if err != nil {
		return st, fmt.Errorf("blue-green: roll out to %s: %w", envName, err)
	}
	fmt.Fprintf(out, "%s: rollout of revision %d started (active %s, preview %s)\n", envName, st.Desired, st.ActiveURL, st.PreviewURL)
	return st, nil
}

func requestDigest(req runtime.RolloutRequest) string {
	if len(req.Deploy.Workloads) == 0 {
		return ""
	}
	_, d, _ := strings.Cut(req.Deploy.Workloads[0].Image, "@")
	return d
}

// ErrDegraded is wrapped by Follow's error when the rollout ends
// Degraded (aborted, automatically or by hand).
var ErrDegraded = errors.New("rollout degraded")

// ErrMonitorsSilent is wrapped by Follow's error when the post-promotion
// window ended while a monitor location had not passed (a probe agent
// that never reported): the release stays, the step fails.
var ErrMonitorsSilent = errors.New("synthetic monitors not passed from every location")

// ErrSuperseded is wrapped by Follow's error when another rollout of the
// environment replaced the one followed.
var ErrSuperseded = errors.New("rollout superseded")

// Follow watches the rollout that started as first until it is Healthy
// (nil error) or Degraded (ErrDegraded, with the failing metrics and
// their values), printing its progress to out. While it is paused for
// manual promotion it says how to promote. With monitors, a promoted
// rollout that is Healthy while the old revision waits out its scale-down
// delay counts once every monitor has passed from every location (the
// seed's gate: synthetic monitors green); one failing aborts the rollout,
// which ends Degraded. A location with no pass since the promotion (a
// probe agent that is silent) holds the step, saying which and since
// when; if the post-promotion window ends so, the release stays Healthy
// and the step fails with ErrMonitorsSilent.
func Follow(ctx context.Context, r runtime.Roller, envName string, first runtime.RolloutStatus, monitors []runtime.Monitor, out io.Writer) (runtime.RolloutStatus, error) {
	pr := NewProgress(out)
	last := first
	var end error
	pausedFor := -1
	waitingFor := ""
	visit := func(st runtime.RolloutStatus) bool {
		if first.Digest != "" && st.Digest != first.Digest {
			end = fmt.Errorf("%s: %w: revision %d (%s) is being rolled out instead of %s", envName, ErrSuperseded, st.Desired, shortDigest(st.Digest), shortDigest(first.Digest))
			return false
		}
		last = st
		pr.Report(st)
		switch st.Phase {
		case runtime.RolloutHealthy:
			missing := notPassed(monitors, st)
			switch {
			case len(missing) == 0:
				return false
			case st.Step == runtime.StepCompleted:
				if !st.PromotedAt.IsZero() {
					end = fmt.Errorf("%s: %w: the post-promotion window ended (the previous revision is scaled down) without a passing check of %s; "+
						"the release is not aborted (a silent probe is not a failing one), but the monitors' gate is not met",
						envName, ErrMonitorsSilent, strings.Join(missing, "; "))
				}
				return false
			}
			if w := strings.Join(missing, "; "); w != waitingFor {
				waitingFor = w
				fmt.Fprintf(out, "%s: waiting for every synthetic monitor to pass from every location: %s\n", envName, cleanText(w))
			}
			return true
		case runtime.RolloutDegraded:
			end = fmt.Errorf("%s: %w: %s", envName, ErrDegraded, Failure(st))
			return false
		case runtime.RolloutPaused:
			if pausedFor != st.Desired {
				pausedFor = st.Desired
				fmt.Fprintf(out, "%s: paused, waiting for manual promotion of revision %d; to promote: %s\n", envName, st.Desired, PromoteCommand(envName))
				if !st.PauseUntil.IsZero() {
					fmt.Fprintf(out, "%s: promotes itself at %s (autoPromotionSeconds)\n", envName, st.PauseUntil.UTC().Format(time.RFC3339))
				}
			}
		default:
			pausedFor = -1
		}
		return true
	}
	if !visit(first) {
		return last, end
	}
	err := r.Watch(ctx, envName, visit)
	var lost time.Time
	for err != nil && end == nil && ctx.Err() == nil && controllerGone(err) {
		// gantry serve went away (killed, restarted): the rollout goes on
		// from its record once a serve runs again; follow it then.
		if lost.IsZero() {
			lost = time.Now()
			fmt.Fprintf(out, "%s: lost gantry serve (%v); following the rollout again once it is back (start it: gantry serve)\n", envName, err)
		}
		if time.Since(lost) > ReconnectFor {
			err = fmt.Errorf("gantry serve did not come back within %s: %w", ReconnectFor, err)
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(reconnectEvery):
		}
		if ctx.Err() != nil {
			break
		}
		cur, serr := r.RolloutStatus(ctx, envName)
		if serr != nil {
			if controllerGone(serr) {
				continue
			}
			err = serr
			break
		}
		fmt.Fprintf(out, "%s: gantry serve is back; following the rollout from %s, step %s\n", envName, cur.Phase, cur.Step)
		lost = time.Time{}
		if !visit(cur) {
			err = nil
			break
		}
		err = r.Watch(ctx, envName, visit)
	}
	switch {
	case end != nil:
		return last, fmt.Errorf("blue-green: %w", end)
	case err != nil:
		return last, fmt.Errorf("blue-green: watch the rollout of %s: %w", envName, err)
	case ctx.Err() != nil:
		return last, fmt.Errorf("blue-green: stopped following the rollout of %s, which goes on in gantry serve (gantry rollout status %s): %w", envName, envName, ctx.Err())
	case last.Phase != runtime.RolloutHealthy:
		return last, fmt.Errorf("blue-green: the watch of %s ended at %s, step %s", envName, last.Phase, last.Step)
	}
	return last, nil
}

// ReconnectFor is how long Follow waits for gantry serve to come back
// after losing it; reconnectEvery how often it asks.
var (
	ReconnectFor   = 10 * time.Minute
	reconnectEvery = time.Second
)

// controllerGone says err means gantry serve went away (its stream ended,
// nothing listens on its socket) rather than answered.
func controllerGone(err error) bool {
	return errors.Is(err, runtime.ErrClosed) || errors.Is(err, serve.ErrNotRunning) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF)
}

// notPassed lists the monitor locations of monitors whose latest check
// in st did not pass, each saying why: no result since the promotion (a
// silent location) or its failure.
func notPassed(monitors []runtime.Monitor, st runtime.RolloutStatus) []string {
	latest := map[[2]string]runtime.MonitorResult{}
	for _, r := range st.Monitors {
		latest[[2]string{r.Monitor, r.Location}] = r
	}
	since := "the promotion"
	if !st.PromotedAt.IsZero() {
		since += " at " + st.PromotedAt.UTC().Format(time.RFC3339)
	}
	var out []string
	for _, m := range monitors {
		for _, loc := range m.Locations {
			r, ok := latest[[2]string{m.Name, loc}]
			switch {
			case ok && r.OK:
			case ok:
				out = append(out, fmt.Sprintf("%s from %s: failed at %s: %s", m.Name, loc, r.At.UTC().Format(time.RFC3339), r.Message))
			case loc == runtime.LocationLocal:
				out = append(out, fmt.Sprintf("%s from %s: no result since %s", m.Name, loc, since))
			default:
				out = append(out, fmt.Sprintf("%s from %s: no result since %s (is gantry monitor agent --location %s running?)", m.Name, loc, since, loc))
			}
		}
	}
	return out
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}
