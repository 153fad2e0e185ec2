package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/internal/runtime"
)

// Agent defaults.
const (
	// DefaultPoll is how often an agent asks for its assignments.
	DefaultPoll = 5 * time.Second
	// DefaultFlush is how often an agent sends the results it holds (a
	// failing result is sent at once).
	DefaultFlush = 2 * time.Second
	// MaxBackoff bounds the wait between attempts while the server does
	// not answer.
	MaxBackoff = 30 * time.Second
	// maxPending bounds the results an agent holds per environment while
	// the server does not take them (the oldest go first).
	maxPending = 256
)

// Agent is a probe agent on a machine other than the server's (gantry
// monitor agent): it asks Server which monitors run from Location, runs
// each every interval with Check against the assignment's URL, and
// reports the results in batches. A server that does not answer (it
// restarts, the network drops) is asked again with a growing backoff;
// the checks go on meanwhile and their results wait, bounded.
type Agent struct {
	Server   runtime.MonitorAgents
	Location string
	// Poll is how often assignments are asked for (0: DefaultPoll);
	// Flush how often results are sent (0: DefaultFlush).
	Poll, Flush time.Duration
	// Client runs the checks (nil: NewClient(nil)).
	Client *http.Client
	Logger *slog.Logger
	// Refused reports whether an error of the server is a refusal of the
	// agent's credential (a revoked token, one not bound to the
	// location): asking again cannot help, so Run returns it. nil: every
	// error is asked again.
	Refused func(error) bool

	mu      sync.Mutex
	pending map[assignKey][]runtime.MonitorResult
	urgent  chan struct{}
}

// assignKey is one rollout an agent checks.
type assignKey struct {
	env string
	rev int
}

// checkKey is one monitor of one rollout, with what it checks: a
// changed monitor or URL is a new check.
type checkKey struct {
	assignKey
	name, url string
}

// running is a check loop and how to stop it.
type running struct {
	mon  runtime.Monitor
	stop context.CancelFunc
	done chan struct{}
}

// Run runs the agent until ctx ends; then it stops every check, sends
// what results it holds (bounded by a few seconds) and returns nil. It
// returns an error only for a configuration it cannot run with, or a
// server that refuses it (Refused).
func (a *Agent) Run(ctx context.Context) error {
	if a.Server == nil {
		return errors.New("monitor agent: no server")
	}
	if err := ValidLocation(a.Location); err != nil || a.Location == Location {
		if err == nil {
			err = fmt.Errorf("location %q is the gantry server itself; name this agent's location", a.Location)
		}
		return fmt.Errorf("monitor agent: %w", err)
	}
	log := a.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	poll, flush := cmpOr(a.Poll, DefaultPoll), cmpOr(a.Flush, DefaultFlush)
	c := a.Client
	if c == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		defer tr.CloseIdleConnections()
		c = NewClient(tr)
	}
	a.mu.Lock()
	a.pending = map[assignKey][]runtime.MonitorResult{}
	a.mu.Unlock()
	a.urgent = make(chan struct{}, 1)

	checks := map[checkKey]*running{}
	stopAll := func(keep func(checkKey) bool) {
		for k, r := range checks {
			if keep(k) {
				continue
			}
			r.stop()
			<-r.done
			delete(checks, k)
			log.Info("monitor stopped", "environment", k.env, "revision", k.rev, "monitor", k.name)
		}
	}

	var wg sync.WaitGroup
	flushCtx, stopFlush := context.WithCancel(ctx)
	wg.Go(func() { a.flushLoop(flushCtx, flush, log) })
	defer func() {
		stopAll(func(checkKey) bool { return false })
		stopFlush()
		wg.Wait()
		// A last report of what is held, bounded.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		a.send(sctx, log)
		cancel()
	}()

	backoff := time.Duration(0)
	for {
		as, err := a.Server.MonitorAssignments(ctx, a.Location)
		wait := poll
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && a.Refused != nil && a.Refused(err):
			return fmt.Errorf("monitor agent: the server refuses this agent: %w", err)
		case err != nil:
			backoff = min(max(2*backoff, time.Second), MaxBackoff)
			wait = backoff
			log.Warn("ask the server for monitor assignments; asking again", "in", wait, "err", err)
		default:
			if backoff > 0 {
				log.Info("the server answers again")
			}
			backoff = 0
			want := map[checkKey]runtime.Monitor{}
			for _, as := range as {
				for _, m := range as.Monitors {
					want[checkKey{assignKey{as.Environment, as.Revision}, m.Name, as.URL}] = m
				}
			}
			stopAll(func(k checkKey) bool {
				m, ok := want[k]
				return ok && sameMonitor(m, checks[k].mon)
			})
			for k, m := range want {
				if checks[k] != nil {
					continue
				}
				cctx, stop := context.WithCancel(ctx)
				r := &running{mon: m, stop: stop, done: make(chan struct{})}
				checks[k] = r
				log.Info("monitor started", "environment", k.env, "revision", k.rev, "monitor", m.Name, "url", k.url, "interval", m.Interval)
				go func() { // owned by checks: stopAll waits for done
					defer close(r.done)
					a.loop(cctx, c, k, m)
				}()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// sameMonitor says whether a and b check the same thing.
func sameMonitor(a, b runtime.Monitor) bool {
	return a.Name == b.Name && a.Method == b.Method && a.Path == b.Path && a.Body == b.Body &&
		a.Status == b.Status && a.Latency == b.Latency && a.Interval == b.Interval &&
		len(a.Header) == len(b.Header) && len(a.JSON) == len(b.JSON)
}

// loop checks m every interval until ctx ends, holding each result for
// the next report.
func (a *Agent) loop(ctx context.Context, c *http.Client, k checkKey, m runtime.Monitor) {
	interval := m.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r := Check(ctx, c, k.url, m, a.Location)
		if ctx.Err() != nil {
			return
		}
		a.hold(k.assignKey, r)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// hold keeps r for the next report; a failure asks for one at once.
func (a *Agent) hold(k assignKey, r runtime.MonitorResult) {
	a.mu.Lock()
	p := append(a.pending[k], r)
	if len(p) > maxPending {
		p = slices.Delete(p, 0, len(p)-maxPending)
	}
	a.pending[k] = p
	a.mu.Unlock()
	if !r.OK {
		select {
		case a.urgent <- struct{}{}:
		default:
		}
	}
}

// flushLoop sends the held results every flush, and at once after a
// failure, until ctx ends (the caller sends the last ones).
func (a *Agent) flushLoop(ctx context.Context, flush time.Duration, log *slog.Logger) {
	t := time.NewTicker(flush)
	defer t.Stop()
	backoff := time.Duration(0)
	var retryAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.urgent:
		}
		if time.Now().Before(retryAt) {
			continue
		}
		if a.send(ctx, log) {
			backoff, retryAt = 0, time.Time{}
			continue
		}
		backoff = min(max(2*backoff, time.Second), MaxBackoff)
		retryAt = time.Now().Add(backoff)
	}
}

// send reports the held results; false when the server did not take
// them (they are held again, for the next attempt).
func (a *Agent) send(ctx context.Context, log *slog.Logger) bool {
	a.mu.Lock()
	batch := a.pending
	a.pending = map[assignKey][]runtime.MonitorResult{}
	a.mu.Unlock()
	if len(batch) == 0 {
		return true
	}
	keys := slices.SortedFunc(func(yield func(assignKey) bool) {
		for k := range batch {
			if !yield(k) {
				return
			}
		}
	}, func(x, y assignKey) int {
		if x.env != y.env {
			if x.env < y.env {
				return -1
			}
			return 1
		}
		return x.rev - y.rev
	})
	ok := true
	// One report per rollout and request: a refused one (the rollout's
	// monitors changed under the agent) does not take the others down.
	for _, k := range keys {
		rep := runtime.MonitorReport{Environment: k.env, Revision: k.rev, Results: batch[k]}
		res, err := a.Server.ReportMonitors(ctx, a.Location, []runtime.MonitorReport{rep})
		switch {
		case err == nil:
			log.Debug("results reported", "environment", k.env, "revision", k.rev, "recorded", res.Recorded, "ignored", res.Ignored)
			for _, env := range res.Aborted {
				log.Warn("a failing result aborted the rollout", "environment", env)
			}
		case errors.Is(err, runtime.ErrInvalidRequest), errors.Is(err, runtime.ErrNoRollout):
			log.Error("the server refused the results; dropping them", "environment", k.env, "revision", k.rev, "err", err)
		default:
			log.Warn("report the results; trying again", "environment", k.env, "err", err)
			a.mu.Lock()
			p := append(batch[k], a.pending[k]...)
			if len(p) > maxPending {
				p = slices.Delete(p, 0, len(p)-maxPending)
			}
			a.pending[k] = p
			a.mu.Unlock()
			ok = false
		}
	}
	return ok
}
