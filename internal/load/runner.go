package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/valyala/fasthttp"
)

// Config describes one test. Exactly one model applies: stages (ramping
// arrival rate), rate with duration (constant arrival rate), or VUs with
// duration (closed model: VUs loops, each sending its next request when the
// previous one finished).
type Config struct {
	Requests   []Request
	Rate       float64
	Duration   time.Duration
	StartRate  float64
	Stages     []Stage
	VUs        int
	MaxVUs     int
	Timeout    time.Duration
	Thresholds []Threshold
	// Watch, if set, samples the target's Prometheus metrics during the
	// test and judges leaks and pool exhaustion afterwards.
	Watch *WatchConfig
}

// Model names the workload model of a config.
func (c *Config) Model() string {
	switch {
	case len(c.Stages) > 0:
		return "ramping-arrival-rate"
	case c.VUs > 0 && c.Rate == 0:
		return "constant-vus"
	}
	return "constant-arrival-rate"
}

// FromSpec turns a spec file into a config.
func FromSpec(s *Spec) (Config, error) {
	th, err := s.Thresholds.Compile()
	if err != nil {
		return Config{}, err
	}
	return Config{
		Requests: s.Requests, Rate: s.Rate, Duration: s.Duration, StartRate: s.StartRate,
		Stages: s.Stages, VUs: s.VUs, MaxVUs: s.MaxVUs, Timeout: s.Timeout, Thresholds: th,
	}, nil
}

// Option configures a Test.
type Option func(*Test)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(t *Test) { t.log = l } }

// WithProgress calls fn with the metrics so far once a second while the test
// runs (from one goroutine; fn must not block for long).
func WithProgress(fn func(*Snapshot)) Option { return func(t *Test) { t.progress = fn } }

// Test is a configured load test.
type Test struct {
	cfg      Config
	reqs     []*compiledRequest
	cum      []int // cumulative weights
	client   *fasthttp.Client
	log      *slog.Logger
	progress func(*Snapshot)
	col      atomic.Pointer[Collector]
	// conns tracks the generator's open connections: the soak watch tells
	// the target's own connection growth from the generator's, and a
	// cancelled test closes them to stop requests in flight.
	conns connSet
}

// MaxRate is the highest arrival rate (requests per second) a test may
// ask for, in any stage. One generator process tops out far below it;
// past it a schedule is a typo (1e12), not a plan.
const MaxRate = 100_000

// ErrRateTooHigh is returned (wrapped, naming the rate) by New for a rate
// above MaxRate.
var ErrRateTooHigh = fmt.Errorf("rate above the ceiling of %d requests per second", MaxRate)

// New checks cfg and returns a test ready to run.
func New(cfg Config, opts ...Option) (*Test, error) {
	if len(cfg.Requests) == 0 {
		return nil, errors.New("no requests: give a URL or a spec with requests")
	}
	for what, r := range map[string]float64{"rate": cfg.Rate, "start rate": cfg.StartRate} {
		if r > MaxRate {
			return nil, fmt.Errorf("%s %v: %w; run several generators for more", what, r, ErrRateTooHigh)
		}
	}
	for i, st := range cfg.Stages {
		if st.Target > MaxRate {
			return nil, fmt.Errorf("stages[%d] target %v: %w; run several generators for more", i, st.Target, ErrRateTooHigh)
		}
	}
	switch cfg.Model() {
	case "ramping-arrival-rate":
		for i, st := range cfg.Stages {
			if st.Duration <= 0 || st.Target < 0 {
				return nil, fmt.Errorf("stages[%d]: want a positive duration and a target rate >= 0", i)
			}
		}
		if cfg.StartRate < 0 {
			return nil, errors.New("start rate must be >= 0")
		}
	case "constant-arrival-rate":
		if cfg.Rate <= 0 || math.IsInf(cfg.Rate, 0) || math.IsNaN(cfg.Rate) {
			return nil, fmt.Errorf("rate must be a positive number of requests per second, not %v", cfg.Rate)
		}
		if cfg.Duration <= 0 {
			return nil, errors.New("duration must be positive")
		}
	case "constant-vus":
		if cfg.Duration <= 0 {
			return nil, errors.New("duration must be positive")
		}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxVUs == 0 {
		cfg.MaxVUs = int(min(10000, max(100, math.Ceil(peakRate(cfg.peak())))))
	}
	if cfg.MaxVUs < 0 || cfg.VUs < 0 {
		return nil, errors.New("vus and max_vus must be positive")
	}
	t := &Test{cfg: cfg, log: slog.New(slog.DiscardHandler)}
	total := 0
	for i, r := range cfg.Requests {
		c, err := compileRequest(r)
		if err != nil {
			return nil, fmt.Errorf("requests[%d]: %w", i, err)
		}
		t.reqs = append(t.reqs, c)
		total += c.weight
		t.cum = append(t.cum, total)
	}
	for _, o := range opts {
		o(t)
	}
	conns := cfg.MaxVUs
	if cfg.Model() == "constant-vus" {
		conns = cfg.VUs
	}
	t.client = t.newClient(min(conns, maxConns))
	return t, nil
}

func (c *Config) peak() (float64, []Stage) {
	if len(c.Stages) > 0 {
		return c.StartRate, c.Stages
	}
	return c.Rate, nil
}

func (c *Config) schedule() *schedule {
	if len(c.Stages) > 0 {
		return newSchedule(c.StartRate, c.Stages)
	}
	return newSchedule(c.Rate, []Stage{{Duration: c.Duration, Target: c.Rate}})
}

// TotalDuration is how long the load lasts.
func (c *Config) TotalDuration() time.Duration {
	if len(c.Stages) == 0 {
		return c.Duration
	}
	var d time.Duration
	for _, st := range c.Stages {
		d += st.Duration
	}
	return d
}

// Snapshot returns the live metrics of a running (or finished) test; before
// Run starts it returns an empty snapshot.
func (t *Test) Snapshot() *Snapshot {
	if c := t.col.Load(); c != nil {
		return c.Snapshot()
	}
	return &Snapshot{}
}

// Result is the outcome of a test.
type Result struct {
	Model      string            `json:"model"`
	Start      time.Time         `json:"start"`
	End        time.Time         `json:"end"`
	Metrics    *Snapshot         `json:"-"`
	Thresholds []ThresholdResult `json:"thresholds"`
	// AbortedBy names the threshold that stopped the test early.
	AbortedBy string       `json:"aborted_by,omitempty"`
	Watch     *WatchReport `json:"watch,omitempty"`
}

// Err returns a *ThresholdsError when a threshold failed, a *LeakError when
// the watch found a leak or an exhausted pool, else nil.
func (r *Result) Err() error {
	var failed []ThresholdResult
	for _, tr := range r.Thresholds {
		if !tr.OK {
			failed = append(failed, tr)
		}
	}
	if len(failed) > 0 {
		return &ThresholdsError{Failed: failed}
	}
	if r.Watch != nil {
		return r.Watch.Err()
	}
	return nil
}

var errAborted = errors.New("a threshold with abortOnFail failed")

// Run sends the load and returns the result. It returns an error only when
// the test could not run; failed thresholds are reported by Result.Err.
// Cancelling ctx stops the test early; the result then covers what ran.
func (t *Test) Run(ctx context.Context) (*Result, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	start := time.Now()
	col := newCollector(start)
	t.col.Store(col)
	res := &Result{Model: t.cfg.Model(), Start: start}

	var bg sync.WaitGroup
	tickDone := make(chan struct{})
	var abortedBy atomic.Value
	bg.Go(func() {
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-tickDone:
				return
			case now := <-tk.C:
				col.tick(now)
				snap := col.snapshotAt(now)
				if t.progress != nil {
					t.progress(snap)
				}
				for _, th := range t.cfg.Thresholds {
					if !th.AbortOnFail || snap.Elapsed < th.DelayAbortEval {
						continue
					}
					if ok, v := th.Eval(snap); !ok {
						t.log.Info("threshold failed, aborting test", "threshold", th.String(), "observed", v)
						abortedBy.Store(th.String())
						cancel(errAborted)
						return
					}
				}
			}
		}
	})
	// Requests take no context: cancelling the test (or its end) closes the
	// generator's connections, which stops requests in flight.
	bg.Go(func() {
		<-ctx.Done()
		t.conns.closeAll()
	})
	var watcher *watcher
	if t.cfg.Watch != nil {
		watcher = newWatcher(*t.cfg.Watch, t.log)
		watcher.clientConns = func() float64 { return float64(t.conns.count()) }
		bg.Go(func() { watcher.run(ctx, start) })
	}

	end := start.Add(t.cfg.TotalDuration())
	if t.cfg.Model() == "constant-vus" {
		t.runClosed(ctx, col, end)
	} else {
		t.runOpen(ctx, col, start, end)
	}
	now := time.Now()
	close(tickDone)
	cancel(nil) // stops the watcher
	bg.Wait()
	col.tick(now)
	res.End = now
	res.Metrics = col.snapshotAt(now)
	if v, ok := abortedBy.Load().(string); ok {
		res.AbortedBy = v
	}
	for _, th := range t.cfg.Thresholds {
		ok, v := th.Eval(res.Metrics)
		res.Thresholds = append(res.Thresholds, ThresholdResult{
			Metric: th.Metric, Source: th.Source, OK: ok, Observed: v, Aborted: th.String() == res.AbortedBy,
		})
	}
	if watcher != nil {
		res.Watch = watcher.report()
	}
	return res, nil
}

// endSlack is how late past the end the open-model generator still sends
// an arrival that was due before the end (a timer woke late).
const endSlack = 100 * time.Millisecond

// queueLen is the length of the hand-off queue of the open model.
const queueLen = 32

type job struct {
	seq      int64
	intended time.Time
}

// runOpen starts requests at their scheduled times regardless of how the
// previous ones fare. A request is handed to an idle worker or a new one
// up to MaxVUs; when none is free it is dropped. Latency counts from the
// intended start, so queueing at the server is not hidden.
//
// The generator stops at end (endSlack at most later) whatever the
// schedule still holds: arrivals it could not hand out in time (a rate
// past what the machine sends) are never sent, so the duration bounds the
// test.
func (t *Test) runOpen(ctx context.Context, col *Collector, start, end time.Time) {
	sched := t.cfg.schedule()
	// An arrival goes to an idle worker, else to a new one up to MaxVUs,
	// else into a short queue, else it is dropped. Time spent queued counts
	// in the latency, which runs from the intended start.
	work := make(chan job, queueLen)
	var workers sync.WaitGroup
	var idle atomic.Int64 // workers waiting for a job
	spawned := 0
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// Arrivals due within this window are sent without sleeping: timers
	// overshoot short sleeps, and waking once per request costs more than
	// the request. Latency is measured from the earlier of the intended and
	// the actual start.
	const early = time.Millisecond
loop:
	for seq := int64(0); ; seq++ {
		off, ok := sched.next()
		if !ok {
			break
		}
		at := start.Add(off)
		if !at.Before(end) || time.Now().After(end.Add(endSlack)) {
			break
		}
		if d := time.Until(at); d > early {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				break loop
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			break
		}
		j := job{seq: seq, intended: at}
		if int64(len(work)) < idle.Load() { // a worker is free for it
			select {
			case work <- j:
				continue
			default:
			}
		}
		if spawned < t.cfg.MaxVUs {
			spawned++
			col.setVUs(int64(spawned))
			workers.Go(func() {
				t.do(ctx, col, j)
				for {
					idle.Add(1)
					j, ok := <-work
					idle.Add(-1)
					if !ok {
						return
					}
					t.do(ctx, col, j)
				}
			})
			continue
		}
		select {
		case work <- j: // every VU busy: wait in the queue
		default:
			col.drop()
		}
	}
	close(work)
	workers.Wait()
}

// runClosed runs VUs loops until end: each sends its next request when the
// previous one finished. Latency counts from the actual start, which is
// the closed model's blind spot for stalls (coordinated omission).
func (t *Test) runClosed(ctx context.Context, col *Collector, end time.Time) {
	var seq atomic.Int64
	var wg sync.WaitGroup
	col.setVUs(int64(t.cfg.VUs))
	for range t.cfg.VUs {
		wg.Go(func() {
			for ctx.Err() == nil {
				now := time.Now()
				if !now.Before(end) {
					return
				}
				t.do(ctx, col, job{seq: seq.Add(1) - 1, intended: now})
			}
		})
	}
	wg.Wait()
}

func (t *Test) pick() *compiledRequest {
	if len(t.reqs) == 1 {
		return t.reqs[0]
	}
	n := rand.IntN(t.cum[len(t.cum)-1])
	for i, c := range t.cum {
		if n < c {
			return t.reqs[i]
		}
	}
	return t.reqs[len(t.reqs)-1]
}

const maxJSONBody = 16 << 20

// do sends one request and records it.
func (t *Test) do(ctx context.Context, col *Collector, j job) {
	ref := j.intended
	if now := time.Now(); now.Before(ref) {
		ref = now
	}
	col.started()
	r := t.pick()
	vars := func(name string) string {
		switch name {
		case "uuid":
			return uuid.NewString()
		case "seq":
			return strconv.FormatInt(j.seq, 10)
		case "unix_ms":
			return strconv.FormatInt(time.Now().UnixMilli(), 10)
		case "rand":
			return strconv.FormatInt(rand.Int64(), 10)
		}
		return ""
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	r.fill(req, vars)
	err := t.client.DoTimeout(req, resp, t.cfg.Timeout)
	lat := time.Since(ref)
	if err != nil {
		if ctx.Err() != nil {
			col.abandon() // interrupted by the end of the test, not a failure
			return
		}
		t.log.Debug("request failed", "request", r.name, "error", err)
		col.record(lat, true, 0, len(r.checks))
		return
	}
	status := resp.StatusCode()
	var doc any
	if r.needsJSON && json.Unmarshal(resp.Body(), &doc) != nil {
		doc = nil
	}
	pass, fail := 0, 0
	for _, c := range r.checks {
		if c.run(status, doc) {
			pass++
		} else {
			fail++
		}
	}
	col.record(lat, status >= 400, pass, fail)
}

// MetricValue reads one statistic of the live metrics (see
// Snapshot.Value); it lets an analysis measure the running test.
func (t *Test) MetricValue(metric, stat string) (float64, error) {
	return t.Snapshot().Value(metric, stat)
}

// fill writes the request into req. A request without variables is built
// once and copied.
func (r *compiledRequest) fill(req *fasthttp.Request, vars func(string) string) {
	if r.fixed != nil {
		r.fixed.CopyTo(req)
		return
	}
	buildRequest(r, req, vars)
}

func buildRequest(r *compiledRequest, req *fasthttp.Request, vars func(string) string) {
	req.SetRequestURI(r.url.expand(vars))
	req.Header.SetMethod(r.method)
	for _, h := range r.headers {
		v := h.value.expand(vars)
		if strings.EqualFold(h.name, "Host") {
			req.UseHostHeader = true
			req.Header.SetHost(v)
			continue
		}
		req.Header.Set(h.name, v)
	}
	if b := r.body.expand(vars); b != "" {
		req.SetBodyString(b)
	}
}
