package store

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Times are stored as UTC Unix nanoseconds, 0 for the zero time.
func toNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// toJSON encodes a map column; nil is stored as {}.
func toJSON[M ~map[string]V, V any](m M) (string, error) {
	if m == nil {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode map as JSON: %w", err)
	}
	return string(b), nil
}

// fromJSON decodes a map column; {} yields nil, so that what was stored
// as nil reads back as nil.
func fromJSON[V any](s string, dst *map[string]V) error {
	if s == "" || s == "{}" {
		*dst = nil
		return nil
	}
	if err := json.Unmarshal([]byte(s), dst); err != nil {
		return fmt.Errorf("decode JSON column: %w", err)
	}
	return nil
}

func boolPtr(n sql.NullInt64) *bool {
	if !n.Valid {
		return nil
	}
	b := n.Int64 != 0
	return &b
}

func nullBool(b *bool) sql.NullInt64 {
	if b == nil {
		return sql.NullInt64{}
	}
	if *b {
		return sql.NullInt64{Int64: 1, Valid: true}
	}
	return sql.NullInt64{Int64: 0, Valid: true}
}
