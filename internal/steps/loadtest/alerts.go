package loadtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/internal/promenv"
	"github.com/gantry-ci/gantry/internal/step"
)

// AlertsConfig is the `alerts:` input: "no alert firing" as part of the
// gate, read from a Prometheus' /api/v1/alerts.
type AlertsConfig struct {
	// URL is the Prometheus: the environment's own or an existing one.
	URL string `yaml:"url"`
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

func (a *AlertsConfig) check(in step.Inputs) error {
	if a == nil {
		return nil
	}
	if a.URL == "" {
		return in.Errorf("alerts.url", "alerts needs the url of a Prometheus (http://host:port)")
	}
	if !strings.Contains(a.URL, "${") {
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
