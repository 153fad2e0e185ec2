// Package store keeps orders in PostgreSQL and caches them in Redis.
package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// Save records an order in PostgreSQL and caches its item in Redis.
func Save(ctx context.Context, databaseURL, redisURL, id, item string) error {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS orders (id text PRIMARY KEY, item text NOT NULL)`); err != nil {
		return fmt.Errorf("create table: %w", err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO orders (id, item) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET item = $2`, id, item); err != nil {
		return fmt.Errorf("insert order: %w", err)
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return fmt.Errorf("parse redis url: %w", err)
	}
	rdb := redis.NewClient(opts)
	defer func() { _ = rdb.Close() }()
	if err := rdb.Set(ctx, "order:"+id, item, 0).Err(); err != nil {
		return fmt.Errorf("cache order: %w", err)
	}
	return nil
}

// Item reads an order's item from the cache.
func Item(ctx context.Context, redisURL, id string) (string, error) {
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return "", fmt.Errorf("parse redis url: %w", err)
	}
	rdb := redis.NewClient(opts)
	defer func() { _ = rdb.Close() }()
	item, err := rdb.Get(ctx, "order:"+id).Result()
	if err != nil {
		return "", fmt.Errorf("read order %s: %w", id, err)
	}
	return item, nil
}
