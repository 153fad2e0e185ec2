// Package idempotency remembers the response to a request made with an
// Idempotency-Key so that a retried request gets the same response instead
// of repeating its effect.
package idempotency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Record is what is kept under a key. While the first request is still
// running, Pending is true and only Fingerprint is set.
type Record struct {
	// Fingerprint identifies the request (method, path and body hash); a
	// key reused for a different request is refused.
	Fingerprint string `json:"fingerprint"`
	Pending     bool   `json:"pending,omitempty"`
	Status      int    `json:"status,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Body        []byte `json:"body,omitempty"`
}

// Store keeps Records under keys for a limited time.
type Store interface {
	// Begin claims key with a pending record. If the key is already
	// claimed it returns the existing record and claimed == false.
	Begin(ctx context.Context, key, fingerprint string) (existing Record, claimed bool, err error)
	// Complete stores the final response under a claimed key.
	Complete(ctx context.Context, key string, rec Record) error
	// Release forgets a claimed key so that the request can be retried
	// (used when the first attempt failed without effect).
	Release(ctx context.Context, key string) error
}

// ErrCorruptRecord is returned when a stored record cannot be decoded.
var ErrCorruptRecord = errors.New("corrupt idempotency record")

func encode(rec Record) ([]byte, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode idempotency record: %w", err)
	}
	return b, nil
}

func decode(b []byte) (Record, error) {
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrCorruptRecord, err)
	}
	return rec, nil
}

// DefaultTTL is how long keys are remembered unless configured otherwise.
const DefaultTTL = 24 * time.Hour
