package payment

import (
	"context"
	"errors"
	"strings"
)

// cardField names the card number in validation errors.
const cardField = "card.number"

// Card is the payment method presented at confirmation.
type Card struct {
	Number string `json:"number"`
}

// Last4 returns the last four digits of the card number.
func (c Card) Last4() string {
	n := c.normalized()
	if len(n) < 4 {
		return n
	}
	return n[len(n)-4:]
}

func (c Card) normalized() string {
	return strings.NewReplacer(" ", "", "-", "").Replace(c.Number)
}

// Outcome is the processor's decision on a charge.
type Outcome struct {
	Succeeded bool
	// FailureCode is set when Succeeded is false, e.g. "card_declined".
	FailureCode string
}

// ErrProcessorUnavailable is returned by a Processor that could not reach a
// decision; the charge did not happen and may be retried.
var ErrProcessorUnavailable = errors.New("payment processor unavailable")

// Processor charges a card for an intent.
type Processor interface {
	Process(ctx context.Context, in Intent, card Card) (Outcome, error)
}

// Test card numbers understood by FakeProcessor.
const (
	CardSucceeds          = "4242424242424242"
	CardDeclined          = "4000000000000002"
	CardInsufficientFunds = "4000000000009995"
	CardProcessorDown     = "4000000000000119"
)

// FakeProcessor is a deterministic processor for development and tests:
// the test card numbers above decide the outcome; any other number that
// passes the Luhn check succeeds.
type FakeProcessor struct{}

var _ Processor = FakeProcessor{}

// Process implements Processor.
func (FakeProcessor) Process(ctx context.Context, _ Intent, card Card) (Outcome, error) {
	if err := ctx.Err(); err != nil {
		return Outcome{}, err
	}
	switch card.normalized() {
	case CardDeclined:
		return Outcome{FailureCode: "card_declined"}, nil
	case CardInsufficientFunds:
		return Outcome{FailureCode: "insufficient_funds"}, nil
	case CardProcessorDown:
		return Outcome{}, ErrProcessorUnavailable
	}
	return Outcome{Succeeded: true}, nil
}

// ValidateCard checks that the number is 12-19 digits with a valid Luhn
// check digit.
func ValidateCard(card Card) error {
	n := card.normalized()
	if len(n) < 12 || len(n) > 19 {
		return &ValidationError{Field: cardField, Reason: "must have 12 to 19 digits"}
	}
	sum := 0
	double := false
	for i := len(n) - 1; i >= 0; i-- {
		c := n[i]
		if c < '0' || c > '9' {
			return &ValidationError{Field: cardField, Reason: "must contain only digits"}
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	if sum%10 != 0 {
		return &ValidationError{Field: cardField, Reason: "fails the Luhn check"}
	}
	return nil
}
