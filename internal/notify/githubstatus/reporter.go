package githubstatus

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Reporter posts the statuses of one commit in order, off the caller's
// goroutine, so a pipeline observer can report stage starts and ends
// without blocking. Close waits for every queued status.
type Reporter struct {
	c         *Client
	repo, sha string
	log       *slog.Logger
	ch        chan Status
	done      chan struct{}
	timeout   time.Duration
}

// NewReporter starts a reporter for commit sha of repo ("owner/name").
func NewReporter(c *Client, repo, sha string, log *slog.Logger) *Reporter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reporter{c: c, repo: repo, sha: sha, log: log, ch: make(chan Status, 64), done: make(chan struct{}), timeout: 30 * time.Second}
	go r.loop()
	return r
}

// Report queues a status. It never blocks: when the queue is full the
// status is dropped and logged (the next one for the same context
// supersedes it anyway).
func (r *Reporter) Report(s Status) {
	select {
	case r.ch <- s:
	default:
		r.log.Warn("commit status queue full; status dropped", "context", s.Context, "state", s.State)
	}
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
// posted.
func (r *Reporter) Close() {
	close(r.ch)
	<-r.done
}

func (r *Reporter) loop() {
	defer close(r.done)
	for s := range r.ch {
		for attempt := 0; attempt < 2; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
			err := r.c.Post(ctx, r.repo, r.sha, s)
			cancel()
			if err == nil {
				break
			}
			var ae *APIError
			if attempt == 0 && errors.As(err, &ae) && ae.Temporary() {
				time.Sleep(time.Second)
				continue
			}
			r.log.Warn("post commit status", "context", s.Context, "state", s.State, "err", err)
			break
		}
	}
}
