//go:build integration

package idempotency

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRedisIntegration(t *testing.T) {
	url := os.Getenv("REDIS_URL")
	if url == "" {
		t.Skip("REDIS_URL is not set: skipping the Redis idempotency tests (run scripts/integration-env.sh to start Redis)")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("parse REDIS_URL: %v", err)
	}
	client := redis.NewClient(opts)
	defer func() { _ = client.Close() }()
	const ttl = 2 * time.Second
	r := NewRedis(client, fmt.Sprintf("it-%d:", time.Now().UnixNano()), ttl)
	if err := r.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Real Redis expires keys by the clock: wait the TTL out.
	contract(t, r, func(time.Duration) { time.Sleep(ttl + 200*time.Millisecond) })
}
