// Package store defines the persistence the service needs — payment
// intents, webhook endpoints and delivery attempts — and an in-memory
// implementation. Package store/postgres implements it on PostgreSQL.
package store

import (
	"context"
	"errors"

	"github.com/examplepay/payment-service/internal/payment"
	"github.com/examplepay/payment-service/internal/webhook"
)

// ErrNotFound is returned when a payment intent does not exist.
var ErrNotFound = errors.New("not found")

// ErrStatusConflict is returned by UpdateStatus when the intent is not in
// the expected status any more (another request moved it first).
var ErrStatusConflict = errors.New("payment intent status changed concurrently")

// Intents stores payment intents.
type Intents interface {
	CreateIntent(ctx context.Context, in payment.Intent) error
	GetIntent(ctx context.Context, id string) (payment.Intent, error)
	// UpdateStatus moves intent id from status from to status to (a
	// compare-and-set), applying change to the other fields, and returns
	// the updated intent.
	UpdateStatus(ctx context.Context, id string, from, to payment.Status, change StatusChange) (payment.Intent, error)
}

// StatusChange carries the fields set together with a status change.
type StatusChange struct {
	CardLast4   string
	FailureCode string
}

// Endpoints stores webhook endpoints.
type Endpoints interface {
	webhook.EndpointStore
	CreateEndpoint(ctx context.Context, ep webhook.Endpoint) error
}

// Attempts stores webhook delivery attempts.
type Attempts interface {
	webhook.AttemptRecorder
	// ListAttempts returns the attempts for a payment intent, oldest first.
	ListAttempts(ctx context.Context, intentID string) ([]webhook.Attempt, error)
}

// Repository is everything the service persists.
type Repository interface {
	Intents
	Endpoints
	Attempts
	// Ping checks that the backend is reachable.
	Ping(ctx context.Context) error
}
