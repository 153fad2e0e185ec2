package githubstatus

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// queueLen is how many statuses the reporter keeps in order before it
// starts coalescing them per context.
const queueLen = 64

// Reporter posts the statuses of one commit in order, off the caller's
// goroutine, so a pipeline observer can report stage starts and ends
// without blocking. Close waits for every queued status.
//
// Report never blocks and never loses the latest state of a context:
// while fewer than 64 statuses wait, each is posted in order; beyond
// that, a new status replaces the one of its context still waiting (the
// older state would be superseded at once anyway), and a context with
// nothing waiting is appended. The queue is thus bounded by 64 plus the
// number of contexts (stages).
type Reporter struct {
	c         *Client
	repo, sha string
	log       *slog.Logger
	timeout   time.Duration

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []Status
	closed bool
	done   chan struct{}
}

// NewReporter starts a reporter for commit sha of repo ("owner/name").
func NewReporter(c *Client, repo, sha string, log *slog.Logger) *Reporter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reporter{c: c, repo: repo, sha: sha, log: log, done: make(chan struct{}), timeout: 30 * time.Second}
	r.cond = sync.NewCond(&r.mu)
	go r.loop()
	return r
}

// Report queues a status. It never blocks (see Reporter). A status
// reported after Close is logged and not posted.
func (r *Reporter) Report(s Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.log.Warn("commit status reported after the reporter closed; not posted", "context", s.Context, "state", s.State)
		return
	}
	if len(r.queue) >= queueLen {
		for i := len(r.queue) - 1; i >= 0; i-- {
			if r.queue[i].Context == s.Context {
				r.queue[i] = s
				return
			}
		}
	}
	r.queue = append(r.queue, s)
	r.cond.Signal()
}

// StageStarted reports a stage as pending.
func (r *Reporter) StageStarted(stage, targetURL string) {
	r.Report(Status{State: Pending, Context: StageContext(stage), Description: stage + " running", TargetURL: targetURL})
}

// StageFinished reports a stage's verdict.
func (r *Reporter) StageFinished(stage string, passed bool, description, targetURL string) {
	st := Failure
	if passed {
		st = Success
	}
	r.Report(Status{State: st, Context: StageContext(stage), Description: description, TargetURL: targetURL})
}

// Close stops accepting statuses and waits until the queued ones are
// posted. It may be called more than once.
func (r *Reporter) Close() {
	r.mu.Lock()
	r.closed = true
	r.cond.Signal()
	r.mu.Unlock()
	<-r.done
}

// next waits for the next status to post; ok is false once the reporter
// is closed and nothing waits.
func (r *Reporter) next() (s Status, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.queue) == 0 && !r.closed {
		r.cond.Wait()
	}
	if len(r.queue) == 0 {
		return Status{}, false
	}
	s = r.queue[0]
	r.queue = r.queue[1:]
	return s, true
}

func (r *Reporter) loop() {
	defer close(r.done)
	for {
		s, ok := r.next()
		if !ok {
			return
		}
		r.post(s)
	}
}

func (r *Reporter) post(s Status) {
	for attempt := 0; attempt < 2; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		err := r.c.Post(ctx, r.repo, r.sha, s)
		cancel()
		if err == nil {
			return
		}
		var ae *APIError
		if attempt == 0 && errors.As(err, &ae) && ae.Temporary() {
			time.Sleep(time.Second)
			continue
		}
		r.log.Warn("post commit status", "context", s.Context, "state", s.State, "err", err)
		return
	}
}
