package idempotency

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store on Redis: Begin is SET NX with the TTL, so exactly one
// of several concurrent requests with the same key claims it, across all
// replicas of the service.
type Redis struct {
	client *redis.Client
	prefix string
	ttl    time.Duration
}

var _ Store = (*Redis)(nil)

// NewRedis returns a Store keeping keys under prefix for ttl
// (DefaultTTL when <= 0).
func NewRedis(client *redis.Client, prefix string, ttl time.Duration) *Redis {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Redis{client: client, prefix: prefix, ttl: ttl}
}

// Begin implements Store.
func (r *Redis) Begin(ctx context.Context, key, fingerprint string) (Record, bool, error) {
	pending, err := encode(Record{Fingerprint: fingerprint, Pending: true})
	if err != nil {
		return Record{}, false, err
	}
	k := r.prefix + key
	for range 3 {
		err := r.client.SetArgs(ctx, k, pending, redis.SetArgs{Mode: "NX", TTL: r.ttl}).Err()
		if err == nil {
			return Record{}, true, nil
		}
		if !errors.Is(err, redis.Nil) {
			return Record{}, false, fmt.Errorf("claim idempotency key: %w", err)
		}
		// Someone holds the key: read what they stored.
		b, err := r.client.Get(ctx, k).Bytes()
		if errors.Is(err, redis.Nil) {
			continue // expired between SET and GET: try to claim again
		}
		if err != nil {
			return Record{}, false, fmt.Errorf("read idempotency key: %w", err)
		}
		rec, err := decode(b)
		return rec, false, err
	}
	return Record{}, false, errors.New("claim idempotency key: key kept expiring while being read")
}

// Complete implements Store.
func (r *Redis) Complete(ctx context.Context, key string, rec Record) error {
	rec.Pending = false
	b, err := encode(rec)
	if err != nil {
		return err
	}
	if err := r.client.Set(ctx, r.prefix+key, b, r.ttl).Err(); err != nil {
		return fmt.Errorf("store idempotent response: %w", err)
	}
	return nil
}

// Release implements Store.
func (r *Redis) Release(ctx context.Context, key string) error {
	if err := r.client.Del(ctx, r.prefix+key).Err(); err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}

// Ping checks that Redis answers.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping Redis: %w", err)
	}
	return nil
}
