package idempotency

import (
	"context"
	"sync"
	"time"
)

// Memory is an in-process Store whose keys expire after a TTL.
type Memory struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	records map[string]memEntry
}

type memEntry struct {
	rec     Record
	expires time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty store keeping keys for ttl (DefaultTTL when <= 0).
func NewMemory(ttl time.Duration) *Memory {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Memory{ttl: ttl, now: time.Now, records: map[string]memEntry{}}
}

// Begin implements Store.
func (m *Memory) Begin(_ context.Context, key, fingerprint string) (Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if e, ok := m.records[key]; ok && now.Before(e.expires) {
		return e.rec, false, nil
	}
	// Drop expired entries while the lock is held anyway.
	for k, e := range m.records {
		if !now.Before(e.expires) {
			delete(m.records, k)
		}
	}
	m.records[key] = memEntry{rec: Record{Fingerprint: fingerprint, Pending: true}, expires: now.Add(m.ttl)}
	return Record{}, true, nil
}

// Complete implements Store.
func (m *Memory) Complete(_ context.Context, key string, rec Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec.Pending = false
	m.records[key] = memEntry{rec: rec, expires: m.now().Add(m.ttl)}
	return nil
}

// Release implements Store.
func (m *Memory) Release(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.records, key)
	return nil
}
