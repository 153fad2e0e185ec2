// Package queue is the work queue webhook deliveries travel through: an
// in-memory implementation for tests and single-process runs, and an
// Amazon SQS (or SQS-compatible) implementation for production.
package queue

import (
	"context"
	"time"
)

// Message is one received message. ReceiptHandle identifies this receipt
// for Delete; it changes each time the message is received.
type Message struct {
	ID            string
	Body          []byte
	ReceiptHandle string
	// ReceiveCount is how many times the message was handed out, this time
	// included.
	ReceiveCount int
}

// Queue is an at-least-once message queue with delayed delivery and a
// visibility timeout: a received message that is not deleted reappears.
type Queue interface {
	// Send enqueues body, visible to receivers after delay.
	Send(ctx context.Context, body []byte, delay time.Duration) error
	// Receive returns up to max visible messages, waiting up to wait for
	// the first one (long polling). It returns no messages and no error
	// when wait passes with nothing visible.
	Receive(ctx context.Context, maxMessages int, wait time.Duration) ([]Message, error)
	// Delete acknowledges a received message.
	Delete(ctx context.Context, receiptHandle string) error
}
