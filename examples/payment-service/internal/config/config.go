// Package config reads the service configuration from the environment.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Storage backends.
const (
	StorageExternal = "external" // PostgreSQL, Redis and SQS
	StorageMemory   = "memory"   // everything in process memory
)

// Config is the service configuration.
type Config struct {
	// Addr is the HTTP listen address: ADDR, else ":"+PORT, else ":8080".
	Addr string
	// Storage is StorageExternal (default) or StorageMemory (STORAGE=memory
	// or the -memory flag): no PostgreSQL, Redis or SQS needed.
	Storage string

	DatabaseURL string // DATABASE_URL, required for external storage
	RedisURL    string // REDIS_URL, required for external storage
	SQSQueueURL string // SQS_QUEUE_URL, required for external storage
	SQSEndpoint string // SQS_ENDPOINT, optional: an SQS-compatible server
	AWSRegion   string // AWS_REGION, required for external storage

	IdempotencyTTL     time.Duration // IDEMPOTENCY_TTL, default 24h
	WebhookMaxAttempts int           // WEBHOOK_MAX_ATTEMPTS, default 8
	WebhookBackoffBase time.Duration // WEBHOOK_BACKOFF_BASE, default 1s
	WebhookBackoffMax  time.Duration // WEBHOOK_BACKOFF_MAX, default 15m
	WebhookTimeout     time.Duration // WEBHOOK_TIMEOUT, default 10s
	QueueVisibility    time.Duration // QUEUE_VISIBILITY_TIMEOUT, default 60s
	QueuePollWait      time.Duration // QUEUE_POLL_WAIT, default 20s
	ShutdownTimeout    time.Duration // SHUTDOWN_TIMEOUT, default 25s
	LogLevel           slog.Level    // LOG_LEVEL: debug, info, warn, error

	// Fault injection, for rehearsing a bad release (a blue/green
	// rollout's analysis must catch it): every API and /healthz request
	// is delayed by FaultLatency, then answered 500 with probability
	// FaultErrorRate. Readiness and metrics are never affected. Both off
	// by default.
	FaultLatency   time.Duration // FAULT_LATENCY, e.g. 400ms; default 0
	FaultErrorRate float64       // FAULT_ERROR_RATE, 0 to 1; default 0
}

// Load reads the configuration through getenv (os.Getenv in main). All
// problems are reported together.
func Load(getenv func(string) string) (Config, error) {
	c := Config{Storage: StorageExternal}
	var errs []error

	switch addr, port := getenv("ADDR"), getenv("PORT"); {
	case addr != "":
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("ADDR=%q: want host:port, e.g. :8080", addr))
		}
		c.Addr = addr
	case port != "":
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			errs = append(errs, fmt.Errorf("PORT=%q: want a port number 0-65535", port))
		}
		c.Addr = ":" + port
	default:
		c.Addr = ":8080"
	}

	switch s := strings.ToLower(getenv("STORAGE")); s {
	case "", StorageExternal, "postgres":
	case StorageMemory:
		c.Storage = StorageMemory
	default:
		errs = append(errs, fmt.Errorf("STORAGE=%q: want %q or %q", s, StorageExternal, StorageMemory))
	}

	c.DatabaseURL = getenv("DATABASE_URL")
	c.RedisURL = getenv("REDIS_URL")
	c.SQSQueueURL = getenv("SQS_QUEUE_URL")
	c.SQSEndpoint = getenv("SQS_ENDPOINT")
	c.AWSRegion = getenv("AWS_REGION")
	if c.Storage == StorageExternal {
		var missing []string
		for _, v := range []struct{ name, val string }{
			{"DATABASE_URL", c.DatabaseURL}, {"REDIS_URL", c.RedisURL}, {"SQS_QUEUE_URL", c.SQSQueueURL}, {"AWS_REGION", c.AWSRegion},
		} {
			if v.val == "" {
				missing = append(missing, v.name)
			}
		}
		if len(missing) > 0 {
			errs = append(errs, fmt.Errorf("missing required environment variables %s (or set STORAGE=memory to run without PostgreSQL, Redis and SQS)", strings.Join(missing, ", ")))
		}
		if c.SQSEndpoint != "" {
			if u, err := url.Parse(c.SQSEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, fmt.Errorf("SQS_ENDPOINT=%q: want an http(s) URL", c.SQSEndpoint))
			}
		}
	}

	dur := func(name string, def time.Duration) time.Duration {
		v := getenv(name)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a positive duration such as 30s", name, v))
			return def
		}
		return d
	}
	c.IdempotencyTTL = dur("IDEMPOTENCY_TTL", 24*time.Hour)
	c.WebhookBackoffBase = dur("WEBHOOK_BACKOFF_BASE", time.Second)
	c.WebhookBackoffMax = dur("WEBHOOK_BACKOFF_MAX", 15*time.Minute)
	c.WebhookTimeout = dur("WEBHOOK_TIMEOUT", 10*time.Second)
	c.QueueVisibility = dur("QUEUE_VISIBILITY_TIMEOUT", 60*time.Second)
	c.QueuePollWait = dur("QUEUE_POLL_WAIT", 20*time.Second)
	c.ShutdownTimeout = dur("SHUTDOWN_TIMEOUT", 25*time.Second)

	var faultErrs []error
	c.FaultLatency, c.FaultErrorRate, faultErrs = loadFaults(getenv)
	errs = append(errs, faultErrs...)

	c.WebhookMaxAttempts = 8
	if v := getenv("WEBHOOK_MAX_ATTEMPTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			errs = append(errs, fmt.Errorf("WEBHOOK_MAX_ATTEMPTS=%q: want an integer 1-100", v))
		} else {
			c.WebhookMaxAttempts = n
		}
	}
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

// loadFaults reads FAULT_LATENCY and FAULT_ERROR_RATE.
func loadFaults(getenv func(string) string) (latency time.Duration, rate float64, errs []error) {
	if v := getenv("FAULT_LATENCY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("FAULT_LATENCY=%q: want a duration such as 400ms (0 for none)", v))
		}
		latency = d
	}
	if v := getenv("FAULT_ERROR_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 || r > 1 {
			errs = append(errs, fmt.Errorf("FAULT_ERROR_RATE=%q: want a fraction from 0 to 1", v))
		}
		rate = r
	}
	return latency, rate, errs
}

// LogValue implements slog.LogValuer, leaving out credentials: URLs are
// logged without their user information.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("storage", c.Storage),
		slog.String("database", Redact(c.DatabaseURL)),
		slog.String("redis", Redact(c.RedisURL)),
		slog.String("sqs_queue_url", c.SQSQueueURL),
		slog.String("sqs_endpoint", c.SQSEndpoint),
		slog.String("aws_region", c.AWSRegion),
		slog.Int("webhook_max_attempts", c.WebhookMaxAttempts),
		slog.Duration("webhook_backoff_base", c.WebhookBackoffBase),
		slog.Duration("webhook_backoff_max", c.WebhookBackoffMax),
		slog.Duration("fault_latency", c.FaultLatency),
		slog.Float64("fault_error_rate", c.FaultErrorRate),
	)
}

// Redact returns a URL without user, password and query (which may hold
// credentials too), or "<unparsable>" / "" for non-URLs and empty strings.
func Redact(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return "<unparsable>"
	}
	u.User = nil
	u.RawQuery = ""
	return u.String()
}
