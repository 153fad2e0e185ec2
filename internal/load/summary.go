package load

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Summary is the JSON k6 writes with --summary-export; gantry writes the
// same shape so tools that read k6 summaries read gantry's, and the k6
// adapter reads k6's into it. Durations are in milliseconds. Threshold
// maps hold true for a threshold that FAILED, as k6's export does.
type Summary struct {
	RootGroup map[string]any    `json:"root_group"`
	Options   map[string]any    `json:"options"`
	State     SummaryState      `json:"state"`
	Metrics   map[string]Metric `json:"metrics"`
}

// SummaryState is k6's state block.
type SummaryState struct {
	IsStdOutTTY       bool    `json:"isStdOutTTY"`
	IsStdErrTTY       bool    `json:"isStdErrTTY"`
	TestRunDurationMs float64 `json:"testRunDurationMs"`
}

// Metric is one metric of a summary: its statistics by name ("count",
// "rate", "p(99)", "value", ...) and, under "thresholds", a map from
// threshold source to whether it failed.
type Metric map[string]any

// Stat returns a numeric statistic.
func (m Metric) Stat(name string) (float64, bool) {
	v, ok := m[name].(float64)
	return v, ok
}

// Thresholds returns the metric's thresholds: source -> failed.
func (m Metric) Thresholds() map[string]bool {
	out := map[string]bool{}
	if t, ok := m["thresholds"].(map[string]any); ok {
		for k, v := range t {
			b, _ := v.(bool)
			out[k] = b
		}
	}
	if t, ok := m["thresholds"].(map[string]bool); ok {
		for k, v := range t {
			out[k] = v
		}
	}
	return out
}

// trendStats are the statistics gantry reports for durations (k6's
// --summary-trend-stats).
var trendStats = []string{"avg", "min", "med", "max", "p(90)", "p(95)", "p(99)", "p(99.9)"}

// TrendStatsFlag is the value of k6's --summary-trend-stats that yields the
// same statistics as gantry.
func TrendStatsFlag() string { return strings.Join(trendStats, ",") }

// Summary returns the result in k6's --summary-export shape.
func (r *Result) Summary() *Summary {
	s := r.Metrics
	el := r.End.Sub(r.Start)
	s.Elapsed = el
	tr := s.Duration()
	dur := Metric{"avg": tr.Avg, "min": tr.Min, "med": tr.Med, "max": tr.Max,
		"p(90)": tr.P90, "p(95)": tr.P95, "p(99)": tr.P99, "p(99.9)": tr.P999}
	m := map[string]Metric{
		MetricDuration: dur,
		MetricReqs:     {"count": float64(s.Reqs), "rate": s.Rate()},
		MetricIters:    {"count": float64(s.Reqs), "rate": s.Rate()},
		MetricFailed:   {"passes": float64(s.Failed), "fails": float64(s.Reqs - s.Failed), "value": s.FailedRate()},
		MetricDropped:  {"count": float64(s.Dropped), "rate": perSecond(s.Dropped, el)},
		"vus_max":      {"value": float64(s.MaxVUs), "min": float64(s.MaxVUs), "max": float64(s.MaxVUs)},
	}
	if s.ChecksPass+s.ChecksFail > 0 {
		m[MetricChecks] = Metric{"passes": float64(s.ChecksPass), "fails": float64(s.ChecksFail), "value": s.ChecksRate()}
	}
	for _, t := range r.Thresholds {
		mm, ok := m[t.Metric]
		if !ok {
			mm = Metric{}
			m[t.Metric] = mm
		}
		th, _ := mm["thresholds"].(map[string]bool)
		if th == nil {
			th = map[string]bool{}
			mm["thresholds"] = th
		}
		th[t.Source] = !t.OK
	}
	return &Summary{
		RootGroup: map[string]any{"name": "", "path": "", "id": "d41d8cd98f00b204e9800998ecf8427e", "groups": map[string]any{}, "checks": map[string]any{}},
		Options:   map[string]any{"summaryTrendStats": trendStats, "summaryTimeUnit": "", "noColor": false},
		State:     SummaryState{TestRunDurationMs: float64(el) / float64(time.Millisecond)},
		Metrics:   m,
	}
}

// ParseSummary reads a --summary-export file (k6's or gantry's).
func ParseSummary(data []byte) (*Summary, error) {
	var s Summary
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parse k6 summary: %w", err)
	}
	if s.Metrics == nil {
		return nil, fmt.Errorf("parse k6 summary: no metrics")
	}
	return &s, nil
}

// Stat returns metric.stat or 0.
func (s *Summary) Stat(metric, stat string) float64 {
	v, _ := s.Metrics[metric].Stat(stat)
	return v
}

// Outputs are the step outputs derived from a summary: http_reqs, rps,
// p50_ms, p95_ms, p99_ms, max_ms, error_rate, checks_rate, dropped and
// thresholds_passed.
func (s *Summary) Outputs() map[string]any {
	passed := true
	for _, m := range s.Metrics {
		for _, failed := range m.Thresholds() {
			if failed {
				passed = false
			}
		}
	}
	out := map[string]any{
		"http_reqs":         s.Stat(MetricReqs, "count"),
		"rps":               s.Stat(MetricReqs, "rate"),
		"p50_ms":            s.Stat(MetricDuration, "med"),
		"p95_ms":            s.Stat(MetricDuration, "p(95)"),
		"p99_ms":            s.Stat(MetricDuration, "p(99)"),
		"max_ms":            s.Stat(MetricDuration, "max"),
		"error_rate":        s.Stat(MetricFailed, "value"),
		"dropped":           s.Stat(MetricDropped, "count"),
		"thresholds_passed": passed,
	}
	if _, ok := s.Metrics[MetricChecks]; ok {
		out["checks_rate"] = s.Stat(MetricChecks, "value")
	}
	return out
}

// FailedThresholds lists the thresholds marked failed, as "metric: source
// (observed)".
func (s *Summary) FailedThresholds() []ThresholdResult {
	var out []ThresholdResult
	for name, m := range s.Metrics {
		for src, failed := range m.Thresholds() {
			if !failed {
				continue
			}
			r := ThresholdResult{Metric: name, Source: src}
			if t, err := NewThreshold(name, src); err == nil {
				if v, ok := m.Stat(t.stat); ok {
					r.Observed = v
				} else if t.stat == "rate" {
					r.Observed, _ = m.Stat("value")
				}
			}
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Metric+out[i].Source < out[j].Metric+out[j].Source })
	return out
}

// WriteText writes an end-of-test summary in k6's layout.
func (s *Summary) WriteText(w io.Writer) error {
	names := make([]string, 0, len(s.Metrics))
	for n := range s.Metrics {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		m := s.Metrics[n]
		th := m.Thresholds()
		mark := "  "
		if len(th) > 0 {
			mark = "✓ "
			for _, failed := range th {
				if failed {
					mark = "✗ "
				}
			}
		}
		fmt.Fprintf(&b, "   %s%s: %s\n", mark, padDots(n, 30), formatMetric(n, m))
		srcs := make([]string, 0, len(th))
		for src := range th {
			srcs = append(srcs, src)
		}
		sort.Strings(srcs)
		for _, src := range srcs {
			state := "✓"
			if th[src] {
				state = "✗"
			}
			fmt.Fprintf(&b, "       %s '%s'\n", state, src)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func padDots(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat(".", n-len(s))
}

func formatMetric(name string, m Metric) string {
	if name == MetricDuration || strings.HasSuffix(name, "_duration") {
		var parts []string
		for _, st := range trendStats {
			if v, ok := m.Stat(st); ok {
				parts = append(parts, fmt.Sprintf("%s=%s", st, fmtMs(v)))
			}
		}
		return strings.Join(parts, " ")
	}
	if v, ok := m.Stat("passes"); ok {
		f, _ := m.Stat("fails")
		rate, _ := m.Stat("value")
		return fmt.Sprintf("%.2f%%  %d out of %d", rate*100, int64(v), int64(v+f))
	}
	if c, ok := m.Stat("count"); ok {
		r, _ := m.Stat("rate")
		return fmt.Sprintf("%-8d %.2f/s", int64(c), r)
	}
	if v, ok := m.Stat("value"); ok {
		return fmt.Sprintf("%g", v)
	}
	return ""
}

func fmtMs(ms float64) string {
	switch {
	case ms >= 1000:
		return fmt.Sprintf("%.2fs", ms/1000)
	case ms >= 1:
		return fmt.Sprintf("%.2fms", ms)
	}
	return fmt.Sprintf("%.0fµs", ms*1000)
}

// ProgressLine is the one-line live status shown on a terminal.
func ProgressLine(s *Snapshot, total time.Duration) string {
	return fmt.Sprintf("%5.1fs/%s  reqs=%d  rps=%.1f  p99=%s  failed=%.2f%%  dropped=%d  in-flight=%d",
		s.Elapsed.Seconds(), total, s.Reqs, s.Rate(), fmtMs(s.Percentile(99)), 100*s.FailedRate(), s.Dropped, s.InFlight)
}
