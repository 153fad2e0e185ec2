package load

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds from 1 µs to one hour with three
// significant digits (0.1% relative error).
const (
	histMin    = 1
	histMax    = int64(time.Hour / time.Microsecond)
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

// Point is one second of a test, for the charts and results.json.
type Point struct {
	// T is the end of the interval, in seconds since the test started.
	T       float64 `json:"t"`
	Reqs    int64   `json:"reqs"`
	Failed  int64   `json:"failed"`
	Dropped int64   `json:"dropped"`
	// Latency percentiles of the requests finished in the interval (ms).
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
	// InFlight is the number of requests running at the end of the interval.
	InFlight int64 `json:"in_flight"`
}

// Collector aggregates request results. It is safe for concurrent use.
type Collector struct {
	mu         sync.Mutex
	start      time.Time
	dur        *hdrhistogram.Histogram
	reqs       int64
	failed     int64
	checksPass int64
	checksFail int64
	dropped    int64
	inFlight   int64
	maxVUs     int64

	cur       *hdrhistogram.Histogram
	curReqs   int64
	curFailed int64
	curDrop   int64
	series    []Point
}

func newCollector(start time.Time) *Collector {
	return &Collector{start: start, dur: newHist(), cur: newHist()}
}

// record adds one finished request.
func (c *Collector) record(latency time.Duration, failed bool, checksPass, checksFail int) {
	us := latency.Microseconds()
	if us < histMin {
		us = histMin
	}
	if us > histMax {
		us = histMax
	}
	c.mu.Lock()
	_ = c.dur.RecordValue(us) // in range by construction
	_ = c.cur.RecordValue(us)
	c.reqs++
	c.curReqs++
	if failed {
		c.failed++
		c.curFailed++
	}
	c.checksPass += int64(checksPass)
	c.checksFail += int64(checksFail)
	c.inFlight--
	c.mu.Unlock()
}

func (c *Collector) started() {
	c.mu.Lock()
	c.inFlight++
	c.mu.Unlock()
}

func (c *Collector) drop() {
	c.mu.Lock()
	c.dropped++
	c.curDrop++
	c.mu.Unlock()
}

func (c *Collector) setVUs(n int64) {
	c.mu.Lock()
	if n > c.maxVUs {
		c.maxVUs = n
	}
	c.mu.Unlock()
}

// tick closes the current one-second interval.
func (c *Collector) tick(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := Point{
		T:        now.Sub(c.start).Seconds(),
		Reqs:     c.curReqs,
		Failed:   c.curFailed,
		Dropped:  c.curDrop,
		InFlight: c.inFlight,
	}
	if c.cur.TotalCount() > 0 {
		p.P50 = usToMs(c.cur.ValueAtQuantile(50))
		p.P99 = usToMs(c.cur.ValueAtQuantile(99))
		p.Max = usToMs(c.cur.Max())
	}
	c.series = append(c.series, p)
	c.cur.Reset()
	c.curReqs, c.curFailed, c.curDrop = 0, 0, 0
}

// Snapshot returns the metrics so far.
func (c *Collector) Snapshot() *Snapshot {
	return c.snapshotAt(time.Now())
}

func (c *Collector) snapshotAt(now time.Time) *Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &Snapshot{
		Elapsed:    now.Sub(c.start),
		Reqs:       c.reqs,
		Failed:     c.failed,
		ChecksPass: c.checksPass,
		ChecksFail: c.checksFail,
		Dropped:    c.dropped,
		InFlight:   c.inFlight,
		MaxVUs:     c.maxVUs,
		hist:       c.dur.Clone(),
		Series:     append([]Point(nil), c.series...),
	}
}

func usToMs(us int64) float64 { return float64(us) / 1000 }

// Snapshot is the state of a test's metrics at one moment.
type Snapshot struct {
	Elapsed    time.Duration
	Reqs       int64
	Failed     int64
	ChecksPass int64
	ChecksFail int64
	Dropped    int64
	InFlight   int64
	MaxVUs     int64
	Series     []Point
	hist       *hdrhistogram.Histogram
}

// Trend holds the summary statistics of a latency distribution in ms.
type Trend struct {
	Avg  float64 `json:"avg"`
	Min  float64 `json:"min"`
	Med  float64 `json:"med"`
	Max  float64 `json:"max"`
	P90  float64 `json:"p(90)"`
	P95  float64 `json:"p(95)"`
	P99  float64 `json:"p(99)"`
	P999 float64 `json:"p(99.9)"`
}

// Duration returns the http_req_duration statistics.
func (s *Snapshot) Duration() Trend {
	if s.hist == nil || s.hist.TotalCount() == 0 {
		return Trend{}
	}
	return Trend{
		Avg:  s.hist.Mean() / 1000,
		Min:  usToMs(s.hist.Min()),
		Med:  s.Percentile(50),
		Max:  usToMs(s.hist.Max()),
		P90:  s.Percentile(90),
		P95:  s.Percentile(95),
		P99:  s.Percentile(99),
		P999: s.Percentile(99.9),
	}
}

// Percentile returns the p-th percentile of http_req_duration in ms.
func (s *Snapshot) Percentile(p float64) float64 {
	if s.hist == nil || s.hist.TotalCount() == 0 {
		return 0
	}
	return usToMs(s.hist.ValueAtQuantile(p))
}

// Rate returns requests per second over the elapsed time.
func (s *Snapshot) Rate() float64 { return perSecond(s.Reqs, s.Elapsed) }

// FailedRate is the fraction of failed requests (http_req_failed).
func (s *Snapshot) FailedRate() float64 { return ratio(s.Failed, s.Reqs) }

// ChecksRate is the fraction of passed checks.
func (s *Snapshot) ChecksRate() float64 { return ratio(s.ChecksPass, s.ChecksPass+s.ChecksFail) }

// DroppedRatio is dropped / (dropped + started).
func (s *Snapshot) DroppedRatio() float64 { return ratio(s.Dropped, s.Dropped+s.Reqs+s.InFlight) }

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Metric names, as k6 names them.
const (
	MetricDuration = "http_req_duration"
	MetricReqs     = "http_reqs"
	MetricFailed   = "http_req_failed"
	MetricChecks   = "checks"
	MetricDropped  = "dropped_iterations"
	MetricIters    = "iterations"
)

// MetricNames lists the metrics a threshold or an analysis may name.
func MetricNames() []string {
	names := []string{MetricDuration, MetricReqs, MetricFailed, MetricChecks, MetricDropped, MetricIters}
	sort.Strings(names)
	return names
}

// Value returns one statistic of one metric: for http_req_duration avg,
// min, med, max, count or p(N) in ms; for http_reqs, iterations and
// dropped_iterations count or rate; for http_req_failed and checks rate
// (alias value), passes or fails.
func (s *Snapshot) Value(metric, stat string) (float64, error) {
	switch metric {
	case MetricDuration:
		if p, ok := parsePercentile(stat); ok {
			return s.Percentile(p), nil
		}
		tr := s.Duration()
		switch stat {
		case "avg":
			return tr.Avg, nil
		case "min":
			return tr.Min, nil
		case "med":
			return tr.Med, nil
		case "max":
			return tr.Max, nil
		case "count":
			return float64(s.Reqs), nil
		}
	case MetricReqs, MetricIters:
		switch stat {
		case "count":
			return float64(s.Reqs), nil
		case "rate":
			return s.Rate(), nil
		}
	case MetricDropped:
		switch stat {
		case "count":
			return float64(s.Dropped), nil
		case "rate":
			return perSecond(s.Dropped, s.Elapsed), nil
		}
	case MetricFailed:
		switch stat {
		case "rate", "value":
			return s.FailedRate(), nil
		case "passes":
			return float64(s.Failed), nil
		case "fails":
			return float64(s.Reqs - s.Failed), nil
		}
	case MetricChecks:
		switch stat {
		case "rate", "value":
			return s.ChecksRate(), nil
		case "passes":
			return float64(s.ChecksPass), nil
		case "fails":
			return float64(s.ChecksFail), nil
		}
	default:
		return 0, fmt.Errorf("unknown metric %q (known: %v)", metric, MetricNames())
	}
	return 0, fmt.Errorf("metric %s has no statistic %q", metric, stat)
}

// parsePercentile parses "p(99.9)" into 99.9.
func parsePercentile(stat string) (float64, bool) {
	if len(stat) < 4 || stat[:2] != "p(" || stat[len(stat)-1] != ')' {
		return 0, false
	}
	p, err := strconv.ParseFloat(stat[2:len(stat)-1], 64)
	if err != nil || p < 0 || p > 100 || math.IsNaN(p) {
		return 0, false
	}
	return p, true
}

func (c *Collector) abandon() {
	c.mu.Lock()
	c.inFlight--
	c.mu.Unlock()
}
