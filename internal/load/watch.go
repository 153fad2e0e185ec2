package load

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Watch names what the soak watch can judge.
const (
	WatchMemory      = "memory"
	WatchGoroutines  = "goroutines"
	WatchConnections = "connections"
	WatchDBPool      = "db_pool"
)

// WatchConfig configures sampling of the target's Prometheus metrics while
// a test runs.
type WatchConfig struct {
	// URL of the target's /metrics endpoint (Prometheus text format).
	URL string
	// Interval between samples (default 1s).
	Interval time.Duration
	// Watch lists what to judge: memory, goroutines, connections, db_pool.
	Watch []string
	// Warmup is the leading fraction of samples left out of the trend test
	// (default 0.2): heaps and pools grow while a service warms up.
	Warmup float64
	// MinGrowth is the growth over the judged window, as a fraction of the
	// median level, below which a significant trend is still not called a
	// leak (default 0.1).
	MinGrowth float64
	// Alpha is the significance level of the trend test (default 0.01).
	Alpha float64
	// Client fetches the metrics (default: a client with a 5 s timeout).
	Client *http.Client
}

// Validate checks the names in Watch.
func (c *WatchConfig) Validate() error {
	for _, w := range c.Watch {
		switch w {
		case WatchMemory, WatchGoroutines, WatchConnections, WatchDBPool:
		default:
			return fmt.Errorf("unknown watch %q (known: memory, goroutines, connections, db_pool)", w)
		}
	}
	if c.URL == "" {
		return errors.New("watch needs the target's metrics URL")
	}
	return nil
}

// series names sampled from the exposition. Each quantity lists the metric
// names that provide it, in order of preference; pool metrics match by
// suffix so pgxpool collectors with any prefix and database/sql
// collectors both work.
var seriesSources = map[string][]string{
	"heap_live_bytes":    {"go_gc_heap_live_bytes", "go_memstats_heap_inuse_bytes", "go_memstats_heap_alloc_bytes"},
	"resident_bytes":     {"process_resident_memory_bytes"},
	"goroutines":         {"go_goroutines"},
	"open_fds":           {"process_open_fds"},
	"open_connections":   {"*_open_connections", "*_connections_open", "*_active_connections"},
	"pool_acquired":      {"*_acquired_conns", "go_sql_in_use_connections"},
	"pool_idle":          {"*_idle_conns", "go_sql_idle_connections"},
	"pool_max":           {"*_max_conns", "go_sql_max_open_connections"},
	"pool_acquire_waits": {"*_empty_acquire_count", "*_empty_acquire_count_total", "go_sql_wait_count_total"},
}

type watcher struct {
	cfg WatchConfig
	log *slog.Logger

	mu      sync.Mutex
	times   []float64
	values  map[string][]float64 // aligned with times; NaN when missing
	errors  int
	lastErr string
	// clientConns is the generator's own open connections (may be nil).
	clientConns func() float64
}

func newWatcher(cfg WatchConfig, log *slog.Logger) *watcher {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Warmup == 0 {
		cfg.Warmup = 0.2
	}
	if cfg.MinGrowth == 0 {
		cfg.MinGrowth = 0.1
	}
	if cfg.Alpha == 0 {
		cfg.Alpha = 0.01
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 5 * time.Second}
	}
	return &watcher{cfg: cfg, log: log, values: map[string][]float64{}}
}

func (w *watcher) run(ctx context.Context, start time.Time) {
	tk := time.NewTicker(w.cfg.Interval)
	defer tk.Stop()
	w.sample(ctx, start)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			w.sample(ctx, start)
		}
	}
}

func (w *watcher) sample(ctx context.Context, start time.Time) {
	vals, err := scrape(ctx, w.cfg.Client, w.cfg.URL)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			w.errors++
			w.lastErr = err.Error()
			w.log.Debug("scrape target metrics", "url", w.cfg.URL, "error", err)
		}
		return
	}
	w.times = append(w.times, time.Since(start).Seconds())
	for name := range seriesSources {
		v, ok := vals[name]
		if !ok {
			v = math.NaN()
		}
		w.values[name] = append(w.values[name], v)
	}
	// Connections the generator opened are not the target's leak: judge
	// the target's count minus the generator's.
	client := math.NaN()
	if w.clientConns != nil {
		client = w.clientConns()
	}
	w.values["client_connections"] = append(w.values["client_connections"], client)
	// A Go HTTP server serves each connection on its own goroutine, so the
	// generator's connections are taken out of the goroutine count too.
	for _, name := range []string{"open_connections", "open_fds", "goroutines"} {
		v := vals[name]
		if _, ok := vals[name]; !ok || w.clientConns == nil {
			v = math.NaN()
		} else {
			v -= client
		}
		w.values[name+"_excl_client"] = append(w.values[name+"_excl_client"], v)
	}
}

// scrape fetches one exposition and picks the watched quantities.
func scrape(ctx context.Context, c *http.Client, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: HTTP %d", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse metrics from %s: %w", url, err)
	}
	return pick(fams), nil
}

func pick(fams map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for name, sources := range seriesSources {
	src:
		for _, s := range sources {
			for fname, f := range fams {
				match := fname == s
				if suffix, ok := strings.CutPrefix(s, "*"); ok {
					match = strings.HasSuffix(fname, suffix)
				}
				if !match {
					continue
				}
				out[name] = sumFamily(f)
				break src
			}
		}
	}
	return out
}

// sumFamily adds up every series of a family (pools labelled by name are
// judged together).
func sumFamily(f *dto.MetricFamily) float64 {
	total := 0.0
	for _, m := range f.GetMetric() {
		switch {
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}

// SeriesReport is one sampled quantity with its trend.
type SeriesReport struct {
	Name   string    `json:"name"`
	Times  []float64 `json:"t"`
	Values []float64 `json:"values"`
	// Fit is the trend over the judged window (after warm-up).
	Fit       TrendFit `json:"trend"`
	FromT     float64  `json:"judged_from_t"`
	GrowthPct float64  `json:"growth_pct"`
}

// Verdict is the judgement on one watched aspect.
type Verdict struct {
	Watch  string `json:"watch"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason"`
}

// WatchReport is the outcome of the soak watch.
type WatchReport struct {
	URL      string         `json:"url"`
	Samples  int            `json:"samples"`
	Errors   int            `json:"scrape_errors"`
	LastErr  string         `json:"last_error,omitempty"`
	Series   []SeriesReport `json:"series"`
	Verdicts []Verdict      `json:"verdicts"`
}

// LeakError reports a leak or an exhausted pool found by the watch.
type LeakError struct {
	Verdicts []Verdict
}

func (e *LeakError) Error() string {
	parts := make([]string, len(e.Verdicts))
	for i, v := range e.Verdicts {
		parts[i] = v.Watch + ": " + v.Reason
	}
	return "soak watch failed: " + strings.Join(parts, "; ")
}

// Err returns a *LeakError when a verdict failed.
func (r *WatchReport) Err() error {
	var bad []Verdict
	for _, v := range r.Verdicts {
		if !v.OK {
			bad = append(bad, v)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &LeakError{Verdicts: bad}
}

// minJudged is the fewest samples after warm-up the trend test needs.
const minJudged = 8

func (w *watcher) report() *WatchReport {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := &WatchReport{URL: w.cfg.URL, Samples: len(w.times), Errors: w.errors, LastErr: w.lastErr}
	names := make([]string, 0, len(w.values))
	for n := range w.values {
		names = append(names, n)
	}
	slices.Sort(names)
	byName := map[string]*SeriesReport{}
	for _, n := range names {
		ts, vs := present(w.times, w.values[n])
		if len(vs) == 0 {
			continue
		}
		sr := SeriesReport{Name: n, Times: ts, Values: vs}
		skip := int(float64(len(vs)) * w.cfg.Warmup)
		jt, jv := ts[skip:], vs[skip:]
		sr.FromT = jt[0]
		sr.Fit = fitTrend(jt, jv)
		if sr.Fit.Median != 0 && len(jt) > 1 {
			sr.GrowthPct = 100 * sr.Fit.Slope * (jt[len(jt)-1] - jt[0]) / sr.Fit.Median
		}
		r.Series = append(r.Series, sr)
		byName[n] = &r.Series[len(r.Series)-1]
	}
	for _, watch := range w.cfg.Watch {
		r.Verdicts = append(r.Verdicts, w.judge(watch, byName))
	}
	return r
}

func present(ts, vs []float64) ([]float64, []float64) {
	var t2, v2 []float64
	for i, v := range vs {
		if v == v { // not NaN
			t2 = append(t2, ts[i])
			v2 = append(v2, v)
		}
	}
	return t2, v2
}

func (w *watcher) judge(watch string, s map[string]*SeriesReport) Verdict {
	v := Verdict{Watch: watch, OK: true}
	growing := func(name string) (string, bool, bool) {
		sr := s[name]
		if sr == nil {
			return fmt.Sprintf("%s not exposed by %s", name, w.cfg.URL), false, false
		}
		if sr.Fit.N < minJudged {
			return fmt.Sprintf("%s: only %d samples after warm-up (need %d; run longer or sample more often)", name, sr.Fit.N, minJudged), false, true
		}
		growth := sr.Fit.Slope * (sr.Times[len(sr.Times)-1] - sr.FromT)
		leak := sr.Fit.P < w.cfg.Alpha && sr.Fit.Slope > 0 && sr.GrowthPct/100 > w.cfg.MinGrowth && growth > minAbsGrowth(name)
		return fmt.Sprintf("%s slope %s/s (%+.1f%% over the window, Mann–Kendall p=%.2g, n=%d)",
			name, human(name, sr.Fit.Slope), sr.GrowthPct, sr.Fit.P, sr.Fit.N), leak, true
	}
	var names []string
	switch watch {
	case WatchMemory:
		names = []string{"heap_live_bytes", "resident_bytes"}
		if s["heap_live_bytes"] != nil {
			names = names[:1] // the heap is the precise signal; RSS only grows
		}
	case WatchGoroutines:
		names = []string{"goroutines_excl_client"}
		if s[names[0]] == nil {
			names = []string{"goroutines"}
		}
	case WatchConnections:
		names = []string{"open_connections_excl_client", "open_fds_excl_client", "open_connections", "open_fds"}
		for _, n := range names {
			if s[n] != nil {
				names = []string{n}
				break
			}
		}
	case WatchDBPool:
		return w.judgePool(s)
	}
	var reasons []string
	found := false
	for _, n := range names {
		reason, leak, ok := growing(n)
		if !ok {
			continue
		}
		found = true
		reasons = append(reasons, reason)
		if leak {
			v.OK = false
		}
	}
	if !found {
		v.OK = false
		v.Reason = fmt.Sprintf("no %s metric (%s) at %s", watch, strings.Join(names, ", "), w.cfg.URL)
		if w.errors > 0 {
			v.Reason += ": " + w.lastErr
		}
		return v
	}
	prefix := "steady: "
	if !v.OK {
		prefix = "leak: "
	}
	v.Reason = prefix + strings.Join(reasons, "; ")
	return v
}

// judgePool calls a pool exhausted when it sat at its maximum for at least
// half of the judged window or when acquire waits kept rising.
func (w *watcher) judgePool(s map[string]*SeriesReport) Verdict {
	v := Verdict{Watch: WatchDBPool, OK: true}
	acq, mx := s["pool_acquired"], s["pool_max"]
	if acq == nil {
		v.OK = false
		v.Reason = "no pool metrics (pgxpool *_acquired_conns or go_sql_in_use_connections) at " + w.cfg.URL
		return v
	}
	var reasons []string
	if mx != nil && len(mx.Values) == len(acq.Values) {
		skip := int(float64(len(acq.Values)) * w.cfg.Warmup)
		full := 0
		for i := skip; i < len(acq.Values); i++ {
			if mx.Values[i] > 0 && acq.Values[i] >= mx.Values[i] {
				full++
			}
		}
		n := len(acq.Values) - skip
		frac := float64(full) / float64(max(1, n))
		reasons = append(reasons, fmt.Sprintf("at max size in %d of %d samples", full, n))
		if frac >= 0.5 {
			v.OK = false
		}
	}
	if wt := s["pool_acquire_waits"]; wt != nil && wt.Fit.N >= minJudged {
		reasons = append(reasons, fmt.Sprintf("acquire waits slope %.3g/s (p=%.2g)", wt.Fit.Slope, wt.Fit.P))
		if wt.Fit.P < w.cfg.Alpha && wt.Fit.Slope > 0 {
			v.OK = false
		}
	}
	prefix := "healthy: "
	if !v.OK {
		prefix = "exhausted: "
	}
	v.Reason = prefix + strings.Join(reasons, "; ")
	return v
}

func human(name string, x float64) string {
	if strings.HasSuffix(name, "_bytes") {
		return fmt.Sprintf("%.1f KiB", x/1024)
	}
	return fmt.Sprintf("%.3g", x)
}

// minAbsGrowth is the growth over the judged window below which a series is
// not called a leak whatever its relative growth: a heap warming up by a
// few hundred KiB in a short test is not a leak.
func minAbsGrowth(series string) float64 {
	switch {
	case strings.HasSuffix(series, "_bytes"):
		return 1 << 20
	case strings.HasPrefix(series, "goroutines"):
		return 10
	}
	return 3
}
