// Package payment holds the payment-intent domain: the intent record, its
// state machine and the Processor that charges a card.
package payment

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Status is the lifecycle state of a payment intent.
type Status string

// The states of the payment-intent state machine:
//
//	requires_confirmation -> processing -> succeeded
//	                                    -> failed
//	processing -> requires_confirmation (processor unavailable, safe to retry)
const (
	StatusRequiresConfirmation Status = "requires_confirmation"
	StatusProcessing           Status = "processing"
	StatusSucceeded            Status = "succeeded"
	StatusFailed               Status = "failed"
)

// MaxAmount is the largest amount accepted, in minor units (999,999.99).
const MaxAmount = 99_999_999

// Intent is a request to collect Amount (minor units) in Currency.
type Intent struct {
	ID          string    `json:"id"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	Status      Status    `json:"status"`
	CardLast4   string    `json:"card_last4,omitempty"`
	FailureCode string    `json:"failure_code,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// ValidationError reports a request field that is not acceptable.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// currencies lists the ISO 4217 codes the service settles in.
var currencies = map[string]bool{
	"usd": true, "eur": true, "gbp": true, "jpy": true, "cad": true, "aud": true, "chf": true,
}

// Validate checks amount and currency of a new intent.
func Validate(amount int64, currency string) error {
	if amount <= 0 {
		return &ValidationError{Field: "amount", Reason: "must be a positive integer in minor units"}
	}
	if amount > MaxAmount {
		return &ValidationError{Field: "amount", Reason: fmt.Sprintf("must be at most %d", MaxAmount)}
	}
	if !currencies[currency] {
		return &ValidationError{Field: "currency", Reason: fmt.Sprintf("unsupported currency %q (want a lowercase ISO 4217 code such as usd)", currency)}
	}
	return nil
}

// ErrInvalidTransition is returned when a state change is not allowed.
var ErrInvalidTransition = errors.New("invalid status transition")

var transitions = map[Status][]Status{
	StatusRequiresConfirmation: {StatusProcessing},
	StatusProcessing:           {StatusSucceeded, StatusFailed, StatusRequiresConfirmation},
}

// CanTransition reports whether an intent may move from one status to another.
func CanTransition(from, to Status) bool {
	return slices.Contains(transitions[from], to)
}

// Transition checks that from -> to is allowed and returns a wrapped
// ErrInvalidTransition otherwise.
func Transition(from, to Status) error {
	if !CanTransition(from, to) {
		return fmt.Errorf("%w: %s -> %s", ErrInvalidTransition, from, to)
	}
	return nil
}

// Terminal reports whether no further transition is possible from s.
func (s Status) Terminal() bool { return s == StatusSucceeded || s == StatusFailed }
