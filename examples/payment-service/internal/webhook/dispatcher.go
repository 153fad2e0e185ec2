package webhook

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/examplepay/payment-service/internal/queue"
)

// Job is the queue message body for one delivery of one event to one
// endpoint. Payload holds the exact bytes to POST, so every retry sends
// (and signs) the same body.
type Job struct {
	EventID    string          `json:"event_id"`
	EventType  string          `json:"event_type"`
	IntentID   string          `json:"payment_intent_id"`
	EndpointID string          `json:"endpoint_id"`
	Attempt    int             `json:"attempt"`
	Payload    json.RawMessage `json:"payload"`
}

// Dispatcher fans an event out to every endpoint subscribed to it by
// queueing one Job per endpoint.
type Dispatcher struct {
	endpoints EndpointStore
	queue     queue.Queue
}

// NewDispatcher returns a Dispatcher that queues jobs on q.
func NewDispatcher(endpoints EndpointStore, q queue.Queue) *Dispatcher {
	return &Dispatcher{endpoints: endpoints, queue: q}
}

// Publish queues ev for every subscribed endpoint and returns how many
// jobs it queued.
func (d *Dispatcher) Publish(ctx context.Context, ev Event) (int, error) {
	payload, err := json.Marshal(ev)
	if err != nil {
		return 0, fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	eps, err := d.endpoints.ListEndpoints(ctx)
	if err != nil {
		return 0, fmt.Errorf("list webhook endpoints for event %s: %w", ev.ID, err)
	}
	n := 0
	for _, ep := range eps {
		if !ep.Wants(ev.Type) {
			continue
		}
		body, err := json.Marshal(Job{EventID: ev.ID, EventType: ev.Type, IntentID: ev.IntentID, EndpointID: ep.ID, Attempt: 1, Payload: payload})
		if err != nil {
			return n, fmt.Errorf("encode job for endpoint %s: %w", ep.ID, err)
		}
		if err := d.queue.Send(ctx, body, 0); err != nil {
			return n, fmt.Errorf("queue event %s for endpoint %s: %w", ev.ID, ep.ID, err)
		}
		n++
	}
	return n, nil
}
