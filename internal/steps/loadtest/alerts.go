package loadtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"fmt"
	"github.com/gantry-ci/gantry/internal/runtime"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/internal/promenv"
	"github.com/gantry-ci/gantry/internal/step"
	"github.com/gantry-ci/gantry/internal/yamlx"
)

// AlertsConfig is the `alerts:` input: "no alert firing" as part of the
// gate, read from a Prometheus' /api/v1/alerts.
type AlertsConfig struct {
	// URL is the Prometheus: the environment's own or an existing one.
	URL string `yaml:"url"`
	// Rules are alert rule files of the repository: instead of URL, gantry
	// runs a Prometheus for the test that loads them and scrapes the
	// target's metrics (`alerts: FILE` is short for `{rules: [FILE]}`).
	Rules []string `yaml:"rules"`
	// Job is the job label of the scraped target (rules select on it);
	// default "load-test". Only with Rules.
	Job string `yaml:"job"`
	// Interval is the scrape and evaluation interval of that Prometheus;
	// default 5s. Only with Rules.
	Interval time.Duration `yaml:"interval"`
	// Poll, when set, also reads the alerts this often during the run: an
	// alert seen firing at any poll fails the step, even if it resolved
	// before the end.
	Poll time.Duration `yaml:"poll"`
	// Settle waits this long after the load before the final read, so that
	// the last scrapes are evaluated (about one evaluation interval).
	Settle time.Duration `yaml:"settle"`
}

// alertOutputs are set by load-test steps with `alerts:`.
var alertOutputs = []string{"alerts_firing", "alerts_pending"}

// UnmarshalYAMLNode accepts a rules file name as well as the mapping.
func (a *AlertsConfig) UnmarshalYAMLNode(d *yamlx.Decoder, n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		a.Rules = []string{n.Value}
		return nil
	}
	type plain AlertsConfig
	var p plain
	if err := d.Decode(n, &p); err != nil {
		return err
	}
	*a = AlertsConfig(p)
	return nil
}

func (a *AlertsConfig) check(in step.Inputs) error {
	if a == nil {
		return nil
	}
	if (a.URL == "") == (len(a.Rules) == 0) {
		return in.Errorf("alerts.url", "alerts needs exactly one of url (a Prometheus, http://host:port) and rules (alert rule files gantry evaluates)")
	}
	if a.URL != "" && (a.Job != "" || a.Interval != 0) {
		return in.Errorf("alerts.job", "alerts.job and alerts.interval go with alerts.rules, not with a Prometheus named by url")
	}
	if a.Interval < 0 {
		return in.Errorf("alerts.interval", "alerts.interval must be positive")
	}
	if a.URL != "" && !strings.Contains(a.URL, "${") {
		if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return in.Errorf("alerts.url", "alerts.url must be an absolute http(s) URL of a Prometheus, not %q", redactURL(a.URL))
		}
	}
	if a.Poll < 0 || a.Settle < 0 {
		return in.Errorf("alerts", "alerts.poll and alerts.settle must not be negative")
	}
	return nil
}

func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}

// AlertsError fails a load test during which alerts fired.
type AlertsError struct {
	Firing []promenv.Alert
}

func (e *AlertsError) Error() string {
	names := make([]string, len(e.Firing))
	for i, a := range e.Firing {
		names[i] = a.String()
	}
	return fmt.Sprintf("%d alert(s) fired: %s", len(e.Firing), strings.Join(names, "; "))
}

// alertWatch reads a Prometheus' alerts during and after a run and keeps
// every alert seen firing and the pending ones of the last read.
type alertWatch struct {
	cfg    AlertsConfig
	client promenv.Client
	log    *slog.Logger

	mu      sync.Mutex
	firing  map[string]promenv.Alert // by Alert.String()
	pending []promenv.Alert

	stop chan struct{}
	done chan struct{}
}

func newAlertWatch(cfg AlertsConfig, log *slog.Logger) *alertWatch {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &alertWatch{cfg: cfg, client: promenv.Client{URL: cfg.URL}, log: log, firing: map[string]promenv.Alert{}}
}

// read takes one reading.
func (w *alertWatch) read(ctx context.Context) error {
	alerts, err := w.client.Alerts(ctx)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = w.pending[:0]
	for _, a := range alerts {
		switch a.State {
		case promenv.StateFiring:
			w.firing[a.String()] = a
		case promenv.StatePending:
			w.pending = append(w.pending, a)
		}
	}
	return nil
}

// start polls every cfg.Poll until finish; no-op without Poll.
func (w *alertWatch) start(ctx context.Context) {
	if w.cfg.Poll <= 0 {
		return
	}
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go func() { // owned by w: finish waits for done
		defer close(w.done)
		t := time.NewTicker(w.cfg.Poll)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if err := w.read(ctx); err != nil {
					w.log.WarnContext(ctx, "read alerts during the load test", "err", err)
				}
			}
		}
	}()
}

// halt stops polling and waits for the poller; it may be called twice.
func (w *alertWatch) halt() {
	if w.stop != nil {
		close(w.stop)
		<-w.done
		w.stop = nil
	}
}

// finish stops polling, waits Settle, takes the final reading and reports:
// pending alerts to out, firing ones as an *AlertsError.
func (w *alertWatch) finish(ctx context.Context, out io.Writer) (firing, pending int, err error) {
	w.halt()
	if w.cfg.Settle > 0 {
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(w.cfg.Settle):
		}
	}
	if err := w.read(ctx); err != nil {
		return 0, 0, fmt.Errorf("check alerts (no alert may fire): %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.pending {
		fmt.Fprintf(out, "alert pending: %s\n", a)
	}
	if len(w.firing) == 0 {
		fmt.Fprintf(out, "alerts: none firing (%d pending)\n", len(w.pending))
		return 0, len(w.pending), nil
	}
	e := &AlertsError{}
	for _, a := range w.firing {
		e.Firing = append(e.Firing, a)
	}
	sortAlerts(e.Firing)
	for _, a := range e.Firing {
		fmt.Fprintf(out, "alert firing: %s\n", a)
	}
	return len(e.Firing), len(w.pending), e
}

func sortAlerts(as []promenv.Alert) {
	slices.SortFunc(as, func(a, b promenv.Alert) int { return strings.Compare(a.String(), b.String()) })
}

// startRules runs a Prometheus for the test (in the step's temporary
// directory) with the rule files, scraping metricsURL, and waits for its
// first scrape. The caller stops it.
func startRules(ctx context.Context, env *step.Env, a AlertsConfig, metricsURL string) (*promenv.Server, error) {
	u, err := url.Parse(metricsURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("alerts: metrics URL %q: want http(s)://host:port/path", redactURL(metricsURL))
	}
	var files []runtime.File
	for _, r := range a.Rules {
		path := r
		if !filepath.IsAbs(path) {
			path = filepath.Join(env.Dir, path)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("alerts: read rules %s: %w", r, err)
		}
		files = append(files, runtime.File{Name: r, Data: data})
	}
	dir, err := os.MkdirTemp(env.TempDir, "prometheus-*")
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	job := a.Job
	if job == "" {
		job = "load-test"
	}
	stage := env.Stage
	if stage == "" {
		stage = "load-test"
	}
	ps, err := promenv.Start(ctx, promenv.Config{
		Environment: stage, Job: job, MetricsPath: u.EscapedPath(), Rules: files, Dir: dir,
		Interval: a.Interval, Log: env.Log,
	})
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	if err := ps.SetTargets([]string{u.Host}); err != nil {
		_ = ps.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("alerts: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	down, err := ps.WaitScraped(wctx, 1)
	if err == nil && len(down) > 0 {
		err = errors.New("target down: " + strings.Join(down, "; "))
	}
	if err != nil {
		_ = ps.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("alerts: scrape %s: %w", redactURL(metricsURL), err)
	}
	fmt.Fprintf(env.Stdout, "alerts: Prometheus %s evaluates %s against %s every %s\n", ps.URL(), strings.Join(a.Rules, ", "), redactURL(metricsURL), intervalOr(a.Interval))
	return ps, nil
}

func intervalOr(d time.Duration) time.Duration {
	if d <= 0 {
		return promenv.DefaultInterval
	}
	return d
}
