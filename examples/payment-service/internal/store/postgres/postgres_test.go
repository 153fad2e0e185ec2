package postgres

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"time"
)

func TestOpenErrorsHidePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tests := []struct {
		name, url, want string
	}{
		{"unparsable", "postgres://app:pa55word@%zz/db", "not a valid PostgreSQL connection string"},
		{"unreachable", "postgres://app:pa55word@127.0.0.1:1/payments?connect_timeout=1", "connect to PostgreSQL at 127.0.0.1:1/payments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(ctx, tt.url)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open() = %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "pa55word") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func TestMigrationsEmbedded(t *testing.T) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("embedded migrations = %v, %v", names, err)
	}
	b, _ := migrations.ReadFile(names[0])
	for _, table := range []string{"payment_intents", "webhook_endpoints", "webhook_delivery_attempts"} {
		if !strings.Contains(string(b), "CREATE TABLE IF NOT EXISTS "+table) {
			t.Errorf("first migration does not create %s", table)
		}
	}
}
