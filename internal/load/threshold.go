package load

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Threshold is one k6-style pass/fail criterion on a metric, such as
// http_req_duration "p(99)<500" or http_req_failed "rate<0.001".
type Threshold struct {
	Metric string
	// Source is the expression as written: "p(99)<500".
	Source string
	// AbortOnFail stops the test as soon as the threshold fails (after
	// DelayAbortEval has passed).
	AbortOnFail    bool
	DelayAbortEval time.Duration

	stat  string
	op    string
	bound float64
}

// ParseThreshold parses "METRIC:EXPR" as given to --threshold.
func ParseThreshold(s string) (Threshold, error) {
	metric, expr, ok := strings.Cut(s, ":")
	if !ok {
		return Threshold{}, fmt.Errorf("threshold %q: want METRIC:EXPR, e.g. http_req_duration:p(99)<500", s)
	}
	return NewThreshold(strings.TrimSpace(metric), expr)
}

// NewThreshold parses a threshold expression for metric. The expression is
// AGG OP NUMBER where AGG is avg, min, med, max, count, rate, value or
// p(N), and OP is <, <=, >, >=, ==, === or !=.
func NewThreshold(metric, expr string) (Threshold, error) {
	t := Threshold{Metric: metric, Source: strings.TrimSpace(expr)}
	src := strings.ReplaceAll(t.Source, " ", "")
	i := strings.IndexAny(src, "<>=!")
	if i <= 0 {
		return t, fmt.Errorf("threshold %s %q: want AGGREGATION OPERATOR NUMBER, e.g. p(99)<500", metric, expr)
	}
	t.stat = src[:i]
	rest := src[i:]
	for _, op := range []string{"===", "<=", ">=", "==", "!=", "<", ">"} {
		if strings.HasPrefix(rest, op) {
			t.op = op
			rest = rest[len(op):]
			break
		}
	}
	if t.op == "" {
		return t, fmt.Errorf("threshold %s %q: unknown operator", metric, expr)
	}
	b, err := strconv.ParseFloat(rest, 64)
	if err != nil {
		return t, fmt.Errorf("threshold %s %q: %q is not a number", metric, expr, rest)
	}
	t.bound = b
	// Check that the metric has this statistic.
	var s Snapshot
	if _, err := s.Value(metric, t.stat); err != nil {
		return t, fmt.Errorf("threshold %s %q: %w", metric, expr, err)
	}
	return t, nil
}

// Eval checks the threshold against s and returns whether it holds and the
// observed value.
func (t Threshold) Eval(s *Snapshot) (bool, float64) {
	v, err := s.Value(t.Metric, t.stat)
	if err != nil { // checked by NewThreshold
		return false, 0
	}
	switch t.op {
	case "<":
		return v < t.bound, v
	case "<=":
		return v <= t.bound, v
	case ">":
		return v > t.bound, v
	case ">=":
		return v >= t.bound, v
	case "==", "===":
		return v == t.bound, v
	case "!=":
		return v != t.bound, v
	}
	return false, v
}

// String is "metric: expr".
func (t Threshold) String() string { return t.Metric + ": " + t.Source }

// ThresholdResult is the outcome of one threshold at the end of a test.
type ThresholdResult struct {
	Metric   string  `json:"metric"`
	Source   string  `json:"threshold"`
	OK       bool    `json:"ok"`
	Observed float64 `json:"observed"`
	// Aborted is set when this threshold stopped the test (abortOnFail).
	Aborted bool `json:"aborted,omitempty"`
}

func (r ThresholdResult) String() string {
	state := "passed"
	if !r.OK {
		state = "failed"
	}
	return fmt.Sprintf("%s %q %s (observed %s)", r.Metric, r.Source, state, formatObserved(r.Metric, r.Source, r.Observed))
}

func formatObserved(metric, src string, v float64) string {
	switch {
	case metric == MetricDuration && !strings.HasPrefix(src, "count"):
		return strconv.FormatFloat(v, 'f', 2, 64) + "ms"
	case strings.HasPrefix(src, "rate") || strings.HasPrefix(src, "value"):
		return strconv.FormatFloat(v*100, 'f', 3, 64) + "%"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// ThresholdsError reports failed thresholds; callers exit 99 as k6 does.
type ThresholdsError struct {
	Failed []ThresholdResult
}

func (e *ThresholdsError) Error() string {
	parts := make([]string, len(e.Failed))
	for i, r := range e.Failed {
		parts[i] = r.String()
	}
	return "thresholds failed: " + strings.Join(parts, "; ")
}
