package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// Memory is an in-process Queue with SQS semantics (delay, visibility
// timeout, receive count). It is safe for concurrent use.
type Memory struct {
	visibility time.Duration

	mu      sync.Mutex
	items   []*memItem
	changed chan struct{} // closed and replaced whenever items change
}

type memItem struct {
	id        string
	body      []byte
	visibleAt time.Time
	receipt   string
	received  int
}

var _ Queue = (*Memory)(nil)

// NewMemory returns an empty queue whose received messages stay invisible
// for visibility (30s when <= 0) unless deleted.
func NewMemory(visibility time.Duration) *Memory {
	if visibility <= 0 {
		visibility = 30 * time.Second
	}
	return &Memory{visibility: visibility, changed: make(chan struct{})}
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return hex.EncodeToString(b)
}

// Send implements Queue.
func (m *Memory) Send(ctx context.Context, body []byte, delay time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("send message: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.items = append(m.items, &memItem{
		id:        randomID(),
		body:      append([]byte(nil), body...),
		visibleAt: time.Now().Add(delay),
	})
	m.notifyLocked()
	return nil
}

func (m *Memory) notifyLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// Receive implements Queue.
func (m *Memory) Receive(ctx context.Context, maxMessages int, wait time.Duration) ([]Message, error) {
	maxMessages = max(maxMessages, 1)
	deadline := time.Now().Add(wait)
	for {
		msgs, next, changed := m.take(maxMessages)
		if len(msgs) > 0 {
			return msgs, nil
		}
		now := time.Now()
		if !now.Before(deadline) {
			return nil, nil
		}
		sleep := deadline.Sub(now)
		if !next.IsZero() && next.Sub(now) < sleep {
			sleep = next.Sub(now)
		}
		timer := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("receive messages: %w", ctx.Err())
		case <-changed:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// take hands out up to max visible messages. With none visible it returns
// the earliest future visibility time and the change channel to wait on.
func (m *Memory) take(maxMessages int) ([]Message, time.Time, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	var out []Message
	var next time.Time
	for _, it := range m.items {
		if it.visibleAt.After(now) {
			if next.IsZero() || it.visibleAt.Before(next) {
				next = it.visibleAt
			}
			continue
		}
		if len(out) == maxMessages {
			continue
		}
		it.received++
		it.receipt = randomID()
		it.visibleAt = now.Add(m.visibility)
		out = append(out, Message{ID: it.id, Body: append([]byte(nil), it.body...), ReceiptHandle: it.receipt, ReceiveCount: it.received})
	}
	return out, next, m.changed
}

// Delete implements Queue. Deleting with a stale or unknown receipt handle
// is an error, as with SQS.
func (m *Memory) Delete(ctx context.Context, receiptHandle string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete message: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, it := range m.items {
		if it.receipt != "" && it.receipt == receiptHandle {
			m.items = append(m.items[:i], m.items[i+1:]...)
			m.notifyLocked()
			return nil
		}
	}
	return fmt.Errorf("delete message: receipt handle %q not found", receiptHandle)
}

// Len returns the number of messages in the queue, visible or not.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items)
}
