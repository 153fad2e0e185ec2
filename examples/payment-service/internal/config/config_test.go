package config

import (
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

var full = map[string]string{
	"DATABASE_URL":  "postgres://app:s3cret@db:5432/payments?sslmode=disable",
	"REDIS_URL":     "redis://:hunter2@cache:6379/0",
	"SQS_QUEUE_URL": "http://sqs:4100/000000000000/webhooks",
	"SQS_ENDPOINT":  "http://sqs:4100",
	"AWS_REGION":    "us-east-1",
}

func with(extra map[string]string) map[string]string {
	m := map[string]string{}
	maps.Copy(m, full)
	maps.Copy(m, extra)
	return m
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr []string
	}{
		{name: "defaults", env: full, check: func(t *testing.T, c Config) {
			t.Helper()
			if c.Addr != ":8080" || c.Storage != StorageExternal || c.WebhookMaxAttempts != 8 || c.IdempotencyTTL != 24*time.Hour || c.LogLevel != slog.LevelInfo {
				t.Fatalf("got %+v", c)
			}
		}},
		{name: "port", env: with(map[string]string{"PORT": "9090"}), check: func(t *testing.T, c Config) {
			t.Helper()
			if c.Addr != ":9090" {
				t.Fatalf("Addr = %q, want :9090", c.Addr)
			}
		}},
		{name: "addr wins over port", env: with(map[string]string{"PORT": "9090", "ADDR": "127.0.0.1:7000"}), check: func(t *testing.T, c Config) {
			t.Helper()
			if c.Addr != "127.0.0.1:7000" {
				t.Fatalf("Addr = %q", c.Addr)
			}
		}},
		{name: "memory needs nothing", env: map[string]string{"STORAGE": "memory"}, check: func(t *testing.T, c Config) {
			t.Helper()
			if c.Storage != StorageMemory {
				t.Fatalf("Storage = %q", c.Storage)
			}
		}},
		{name: "tuning", env: with(map[string]string{"WEBHOOK_MAX_ATTEMPTS": "3", "WEBHOOK_BACKOFF_BASE": "250ms", "LOG_LEVEL": "debug", "STORAGE": "postgres"}), check: func(t *testing.T, c Config) {
			t.Helper()
			if c.WebhookMaxAttempts != 3 || c.WebhookBackoffBase != 250*time.Millisecond || c.LogLevel != slog.LevelDebug {
				t.Fatalf("got %+v", c)
			}
		}},
		{name: "faults", env: with(map[string]string{"FAULT_LATENCY": "400ms", "FAULT_ERROR_RATE": "0.5"}), check: func(t *testing.T, c Config) {
			t.Helper()
			if c.FaultLatency != 400*time.Millisecond || c.FaultErrorRate != 0.5 {
				t.Fatalf("faults: got %v %v, want 400ms 0.5", c.FaultLatency, c.FaultErrorRate)
			}
		}},
		{name: "no faults by default", env: full, check: func(t *testing.T, c Config) {
			t.Helper()
			if c.FaultLatency != 0 || c.FaultErrorRate != 0 {
				t.Fatalf("faults: got %v %v, want none", c.FaultLatency, c.FaultErrorRate)
			}
		}},
		{name: "bad faults", env: with(map[string]string{"FAULT_LATENCY": "-1s", "FAULT_ERROR_RATE": "2"}), wantErr: []string{`FAULT_LATENCY="-1s"`, `FAULT_ERROR_RATE="2"`}},
		{name: "missing everything", env: map[string]string{}, wantErr: []string{"DATABASE_URL, REDIS_URL, SQS_QUEUE_URL, AWS_REGION", "STORAGE=memory"}},
		{name: "bad values", env: with(map[string]string{
			"PORT": "http", "STORAGE": "disk", "WEBHOOK_MAX_ATTEMPTS": "0", "IDEMPOTENCY_TTL": "forever", "LOG_LEVEL": "loud", "SQS_ENDPOINT": "sqs:4100",
		}), wantErr: []string{`PORT="http"`, `STORAGE="disk"`, `WEBHOOK_MAX_ATTEMPTS="0"`, `IDEMPOTENCY_TTL="forever"`, `LOG_LEVEL="loud"`, `SQS_ENDPOINT="sqs:4100"`}},
		{name: "bad addr", env: with(map[string]string{"ADDR": "nocolon"}), wantErr: []string{`ADDR="nocolon"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(env(tt.env))
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Load() = %v", err)
				}
				tt.check(t, c)
				return
			}
			if err == nil {
				t.Fatal("Load() = nil error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLogValueHidesSecrets(t *testing.T) {
	c, err := Load(env(full))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "config", c)
	out := b.String()
	for _, secret := range []string{"s3cret", "hunter2", "app:"} {
		if strings.Contains(out, secret) {
			t.Fatalf("log line leaks %q: %s", secret, out)
		}
	}
	if !strings.Contains(out, "postgres://db:5432/payments") {
		t.Fatalf("log line lacks the redacted database URL: %s", out)
	}
	for in, want := range map[string]string{"": "", "::not a url": "<unparsable>", "plain": "<unparsable>"} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
