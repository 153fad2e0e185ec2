package options

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Load are the flags of `gantry load`.
type Load struct {
	URL           string
	Rate          float64
	Duration      time.Duration
	StartRate     float64
	Stages        []string
	VUs           int
	MaxVUs        int
	Timeout       time.Duration
	Thresholds    []string
	SummaryExport string
	OutDir        string
	Watch         []string
	MetricsURL    string
	WatchInterval time.Duration
	Quiet         bool
}

// AddFlags registers the load flags.
func (o *Load) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.URL, "url", "", "URL to GET (instead of a spec file)")
	fs.Float64Var(&o.Rate, "rate", 0, "constant arrival rate in requests per second")
	fs.DurationVar(&o.Duration, "duration", 0, "how long to send load, e.g. 2m")
	fs.Float64Var(&o.StartRate, "start-rate", 0, "rate at the start of the first --stage")
	fs.StringArrayVar(&o.Stages, "stage", nil, "ramping stage DURATION:TARGET_RATE, e.g. 30s:100 (repeatable)")
	fs.IntVar(&o.VUs, "vus", 0, "closed model: this many loops sending back to back (instead of --rate)")
	fs.IntVar(&o.MaxVUs, "max-vus", 0, "open model: most requests in flight before arrivals are dropped (default max(100, peak rate))")
	fs.DurationVar(&o.Timeout, "timeout", 0, "per-request timeout (default 30s)")
	fs.StringArrayVar(&o.Thresholds, "threshold", nil, "k6 threshold METRIC:EXPR, e.g. 'http_req_duration:p(99)<500' (repeatable)")
	fs.StringVar(&o.SummaryExport, "summary-export", "", "write the summary as JSON in k6's --summary-export shape")
	fs.StringVar(&o.OutDir, "out", "", "directory for results.json and report.html")
	fs.StringSliceVar(&o.Watch, "watch", nil, "soak watch: memory, goroutines, connections, db_pool")
	fs.StringVar(&o.MetricsURL, "metrics-url", "", "target's Prometheus metrics URL for --watch (default: the URL's origin + /metrics)")
	fs.DurationVar(&o.WatchInterval, "watch-interval", 0, "time between samples of --metrics-url (default duration/100, 1s-15s)")
	fs.BoolVarP(&o.Quiet, "quiet", "q", false, "no live progress line")
}

// ParseStage parses DURATION:TARGET.
func ParseStage(s string) (time.Duration, float64, error) {
	d, t, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("--stage %q: want DURATION:TARGET_RATE, e.g. 30s:100", s)
	}
	dur, err := time.ParseDuration(d)
	if err != nil || dur <= 0 {
		return 0, 0, fmt.Errorf("--stage %q: bad duration %q", s, d)
	}
	target, err := strconv.ParseFloat(t, 64)
	if err != nil || target < 0 {
		return 0, 0, fmt.Errorf("--stage %q: bad target rate %q", s, t)
	}
	return dur, target, nil
}
