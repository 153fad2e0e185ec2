package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/examplepay/payment-service/internal/queue"
)

// Worker takes delivery jobs off the queue, POSTs the signed payload to the
// endpoint, records every attempt and re-queues failed deliveries with a
// backoff delay until MaxAttempts is reached.
//
// A job is deleted from the queue only after its attempt has been recorded
// and, on failure, its retry queued; if the worker dies in between, the
// queue's visibility timeout hands the job out again (at-least-once).
// Receivers deduplicate on the Payment-Event-Id header.
type Worker struct {
	queue     queue.Queue
	endpoints EndpointStore
	attempts  AttemptRecorder
	client    *http.Client
	log       *slog.Logger

	maxAttempts int
	backoff     Backoff
	batch       int
	wait        time.Duration
	now         func() time.Time
}

// WorkerOption configures a Worker.
type WorkerOption func(*Worker)

// WithMaxAttempts sets the number of delivery attempts per job before it is
// dropped (default 8; values < 1 are ignored).
func WithMaxAttempts(n int) WorkerOption {
	return func(w *Worker) {
		if n >= 1 {
			w.maxAttempts = n
		}
	}
}

// WithBackoff sets the retry delay policy (default 1s doubling to 15m).
func WithBackoff(b Backoff) WorkerOption { return func(w *Worker) { w.backoff = b } }

// WithHTTPClient sets the client deliveries use (default: 10s timeout).
func WithHTTPClient(c *http.Client) WorkerOption { return func(w *Worker) { w.client = c } }

// WithPollWait sets the long-poll wait per receive (default 20s).
func WithPollWait(d time.Duration) WorkerOption { return func(w *Worker) { w.wait = d } }

// withClock replaces time.Now in tests.
func withClock(now func() time.Time) WorkerOption { return func(w *Worker) { w.now = now } }

// NewWorker returns a Worker; start it with Run.
func NewWorker(q queue.Queue, endpoints EndpointStore, attempts AttemptRecorder, log *slog.Logger, opts ...WorkerOption) *Worker {
	w := &Worker{
		queue: q, endpoints: endpoints, attempts: attempts, log: log,
		client:      &http.Client{Timeout: 10 * time.Second},
		maxAttempts: 8,
		backoff:     Backoff{Base: time.Second, Max: 15 * time.Minute},
		batch:       10,
		wait:        20 * time.Second,
		now:         time.Now,
	}
	for _, o := range opts {
		o(w)
	}
	return w
}

// Run receives and delivers jobs until ctx is cancelled, then returns nil.
// A failing queue is retried after a short pause.
func (w *Worker) Run(ctx context.Context) error {
	for {
		msgs, err := w.queue.Receive(ctx, w.batch, w.wait)
		if ctx.Err() != nil {
			return nil //nolint:nilerr // cancellation is the normal way to stop; the receive error only reports it
		}
		if err != nil {
			w.log.ErrorContext(ctx, "receive webhook jobs", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		for _, m := range msgs {
			if err := w.Handle(ctx, m); err != nil {
				w.log.ErrorContext(ctx, "handle webhook job; it will reappear after the visibility timeout", "message_id", m.ID, "err", err)
			}
		}
	}
}

// Handle delivers one queued job. It returns an error when the job must stay
// on the queue to be handed out again.
func (w *Worker) Handle(ctx context.Context, m queue.Message) error {
	var job Job
	if err := json.Unmarshal(m.Body, &job); err != nil || job.EndpointID == "" {
		// A message no worker will ever understand: drop it rather than
		// redeliver it forever.
		w.log.ErrorContext(ctx, "drop malformed webhook job", "message_id", m.ID, "err", err)
		return w.delete(ctx, m)
	}
	if job.Attempt < 1 {
		job.Attempt = 1
	}
	log := w.log.With("event_id", job.EventID, "endpoint_id", job.EndpointID, "attempt", job.Attempt)
	ep, err := w.endpoints.GetEndpoint(ctx, job.EndpointID)
	if errors.Is(err, ErrEndpointNotFound) {
		log.WarnContext(ctx, "drop webhook job for a deleted endpoint")
		return w.delete(ctx, m)
	}
	if err != nil {
		return fmt.Errorf("load endpoint %s: %w", job.EndpointID, err)
	}

	start := w.now()
	code, derr := w.deliver(ctx, ep, job, start)
	att := Attempt{
		ID: newID("whatt"), EventID: job.EventID, EventType: job.EventType, EndpointID: ep.ID,
		IntentID: job.IntentID, Attempt: job.Attempt, StatusCode: code,
		Succeeded: derr == nil, DurationMS: w.now().Sub(start).Milliseconds(), CreatedAt: start,
	}
	if derr != nil {
		att.Error = derr.Error()
	}
	var retryDelay time.Duration
	retry := derr != nil && job.Attempt < w.maxAttempts
	if retry {
		retryDelay = w.backoff.Delay(job.Attempt)
		next := start.Add(retryDelay)
		att.NextRetryAt = &next
	}
	if err := w.attempts.RecordAttempt(ctx, att); err != nil {
		return fmt.Errorf("record delivery attempt %d of event %s: %w", job.Attempt, job.EventID, err)
	}
	switch {
	case derr == nil:
		log.InfoContext(ctx, "webhook delivered", "status", code, "duration_ms", att.DurationMS)
	case retry:
		next := job
		next.Attempt++
		body, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("encode retry of event %s: %w", job.EventID, err)
		}
		if err := w.queue.Send(ctx, body, retryDelay); err != nil {
			return fmt.Errorf("queue retry of event %s: %w", job.EventID, err)
		}
		log.WarnContext(ctx, "webhook delivery failed; retry queued", "status", code, "err", derr, "retry_in", retryDelay)
	default:
		log.ErrorContext(ctx, "webhook delivery failed; giving up", "status", code, "err", derr, "max_attempts", w.maxAttempts)
	}
	return w.delete(ctx, m)
}

func (w *Worker) delete(ctx context.Context, m queue.Message) error {
	if err := w.queue.Delete(ctx, m.ReceiptHandle); err != nil {
		return fmt.Errorf("delete webhook job %s: %w", m.ID, err)
	}
	return nil
}

// deliver POSTs the signed payload; any non-2xx status is a failure.
func (w *Worker) deliver(ctx context.Context, ep Endpoint, job Job, at time.Time) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(job.Payload))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "examplepay-webhooks/1.0")
	req.Header.Set(SignatureHeader, Sign(ep.Secret, at, job.Payload))
	req.Header.Set("Payment-Event-Id", job.EventID)
	req.Header.Set("Payment-Event-Type", job.EventType)
	req.Header.Set("Payment-Delivery-Attempt", strconv.Itoa(job.Attempt))
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST endpoint: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // drain to reuse the connection
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("endpoint answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// newID returns prefix_ followed by 24 random hex digits.
func newID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return prefix + "_" + hex.EncodeToString(b)
}

// NewEventID returns a fresh event identifier.
func NewEventID() string { return newID("evt") }

// NewEndpointID returns a fresh endpoint identifier.
func NewEndpointID() string { return newID("we") }
