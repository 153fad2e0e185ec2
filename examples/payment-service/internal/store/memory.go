package store

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/examplepay/payment-service/internal/payment"
	"github.com/examplepay/payment-service/internal/webhook"
)

// Memory is a Repository held in process memory, safe for concurrent use.
type Memory struct {
	mu        sync.RWMutex
	intents   map[string]payment.Intent
	endpoints map[string]webhook.Endpoint
	attempts  map[string][]webhook.Attempt // by intent ID
	now       func() time.Time
}

var _ Repository = (*Memory)(nil)

// NewMemory returns an empty in-memory repository.
func NewMemory() *Memory {
	return &Memory{
		intents:   map[string]payment.Intent{},
		endpoints: map[string]webhook.Endpoint{},
		attempts:  map[string][]webhook.Attempt{},
		now:       time.Now,
	}
}

// CreateIntent implements Intents.
func (m *Memory) CreateIntent(_ context.Context, in payment.Intent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.intents[in.ID]; ok {
		return fmt.Errorf("create payment intent %s: already exists", in.ID)
	}
	m.intents[in.ID] = in
	return nil
}

// GetIntent implements Intents.
func (m *Memory) GetIntent(_ context.Context, id string) (payment.Intent, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	in, ok := m.intents[id]
	if !ok {
		return payment.Intent{}, fmt.Errorf("get payment intent %s: %w", id, ErrNotFound)
	}
	return in, nil
}

// UpdateStatus implements Intents.
func (m *Memory) UpdateStatus(_ context.Context, id string, from, to payment.Status, change StatusChange) (payment.Intent, error) {
	if err := payment.Transition(from, to); err != nil {
		return payment.Intent{}, fmt.Errorf("update payment intent %s: %w", id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	in, ok := m.intents[id]
	if !ok {
		return payment.Intent{}, fmt.Errorf("update payment intent %s: %w", id, ErrNotFound)
	}
	if in.Status != from {
		return payment.Intent{}, fmt.Errorf("update payment intent %s from %s (it is %s): %w", id, from, in.Status, ErrStatusConflict)
	}
	in.Status = to
	if change.CardLast4 != "" {
		in.CardLast4 = change.CardLast4
	}
	in.FailureCode = change.FailureCode
	in.UpdatedAt = m.now().UTC()
	m.intents[id] = in
	return in, nil
}

// CreateEndpoint implements Endpoints.
func (m *Memory) CreateEndpoint(_ context.Context, ep webhook.Endpoint) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.endpoints[ep.ID]; ok {
		return fmt.Errorf("create webhook endpoint %s: already exists", ep.ID)
	}
	m.endpoints[ep.ID] = ep
	return nil
}

// ListEndpoints implements webhook.EndpointStore, oldest first.
func (m *Memory) ListEndpoints(context.Context) ([]webhook.Endpoint, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]webhook.Endpoint, 0, len(m.endpoints))
	for _, ep := range m.endpoints {
		out = append(out, ep)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// GetEndpoint implements webhook.EndpointStore.
func (m *Memory) GetEndpoint(_ context.Context, id string) (webhook.Endpoint, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ep, ok := m.endpoints[id]
	if !ok {
		return webhook.Endpoint{}, fmt.Errorf("get webhook endpoint %s: %w", id, webhook.ErrEndpointNotFound)
	}
	return ep, nil
}

// RecordAttempt implements webhook.AttemptRecorder.
func (m *Memory) RecordAttempt(_ context.Context, a webhook.Attempt) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempts[a.IntentID] = append(m.attempts[a.IntentID], a)
	return nil
}

// ListAttempts implements Attempts.
func (m *Memory) ListAttempts(_ context.Context, intentID string) ([]webhook.Attempt, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]webhook.Attempt{}, m.attempts[intentID]...), nil
}

// Ping implements Repository; memory is always reachable.
func (m *Memory) Ping(context.Context) error { return nil }
