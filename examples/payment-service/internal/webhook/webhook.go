// Package webhook registers webhook endpoints, signs events and delivers
// them through a queue with retries, exponential backoff and jitter.
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Event types sent to endpoints.
const (
	EventIntentCreated   = "payment_intent.created"
	EventIntentSucceeded = "payment_intent.succeeded"
	EventIntentFailed    = "payment_intent.payment_failed"
)

// Endpoint is a registered receiver of events.
type Endpoint struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// Secret signs deliveries; it is shown to the client once, at creation.
	Secret        string    `json:"-"`
	EnabledEvents []string  `json:"enabled_events"`
	CreatedAt     time.Time `json:"created_at"`
}

// Wants reports whether the endpoint subscribed to eventType ("*" = all).
func (e Endpoint) Wants(eventType string) bool {
	for _, t := range e.EnabledEvents {
		if t == "*" || t == eventType {
			return true
		}
	}
	return false
}

// Event is the payload delivered to endpoints.
type Event struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt time.Time       `json:"created"`
	Data      json.RawMessage `json:"data"`
	// IntentID links the event to the payment intent it is about.
	IntentID string `json:"-"`
}

// Attempt records one delivery attempt of an event to an endpoint.
type Attempt struct {
	ID         string    `json:"id"`
	EventID    string    `json:"event_id"`
	EventType  string    `json:"event_type"`
	EndpointID string    `json:"endpoint_id"`
	IntentID   string    `json:"payment_intent_id"`
	Attempt    int       `json:"attempt"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	Succeeded  bool      `json:"succeeded"`
	DurationMS int64     `json:"duration_ms"`
	CreatedAt  time.Time `json:"created_at"`
	// NextRetryAt is set when another attempt is scheduled.
	NextRetryAt *time.Time `json:"next_retry_at,omitempty"`
}

// ErrEndpointNotFound is returned by an EndpointStore without that endpoint.
var ErrEndpointNotFound = errors.New("webhook endpoint not found")

// EndpointStore reads registered endpoints.
type EndpointStore interface {
	ListEndpoints(ctx context.Context) ([]Endpoint, error)
	GetEndpoint(ctx context.Context, id string) (Endpoint, error)
}

// AttemptRecorder stores delivery attempts.
type AttemptRecorder interface {
	RecordAttempt(ctx context.Context, a Attempt) error
}
