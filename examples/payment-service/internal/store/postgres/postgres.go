// Package postgres implements store.Repository on PostgreSQL with pgx v5.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/examplepay/payment-service/internal/metrics"
	"github.com/examplepay/payment-service/internal/payment"
	"github.com/examplepay/payment-service/internal/store"
	"github.com/examplepay/payment-service/internal/webhook"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a store.Repository on a pgx connection pool.
type Store struct {
	pool *pgxpool.Pool
}

var _ store.Repository = (*Store)(nil)

// Open connects to databaseURL and checks the connection. It does not run
// migrations; call Migrate.
func Open(ctx context.Context, databaseURL string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		// pgx's parse errors can echo the URL; keep the password out.
		return nil, errors.New("parse DATABASE_URL: not a valid PostgreSQL connection string")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create PostgreSQL pool for %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return &Store{pool: pool}, nil
}

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// Migrate applies the embedded migrations that are not yet applied, each
// in its own transaction, in file-name order. A session-level advisory
// lock keeps concurrent replicas from migrating at once.
func (s *Store) Migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection for migrations: %w", err)
	}
	defer conn.Release()
	const lockID = 7_461_001 // arbitrary, fixed for this service
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockID); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	defer func() {
		// Unlock with a context that survives the caller's cancellation.
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockID)
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, name := range names {
		var applied bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)`, name).Scan(&applied); err != nil {
			return fmt.Errorf("check migration %s: %w", name, err)
		}
		if applied {
			continue
		}
		sql, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("read migration %s: %w", name, err)
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (name) VALUES ($1)`, name)
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", name, err)
		}
	}
	return nil
}

// Ping implements store.Repository.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping PostgreSQL: %w", err)
	}
	return nil
}

// PoolStats reports the pool's statistics for metrics.PoolCollector.
func (s *Store) PoolStats() metrics.PoolStats {
	st := s.pool.Stat()
	return metrics.PoolStats{
		AcquiredConns:        st.AcquiredConns(),
		IdleConns:            st.IdleConns(),
		MaxConns:             st.MaxConns(),
		TotalConns:           st.TotalConns(),
		ConstructingConns:    st.ConstructingConns(),
		AcquireCount:         st.AcquireCount(),
		AcquireDuration:      st.AcquireDuration(),
		EmptyAcquireCount:    st.EmptyAcquireCount(),
		EmptyAcquireWaitTime: st.EmptyAcquireWaitTime(),
		CanceledAcquireCount: st.CanceledAcquireCount(),
		NewConnsCount:        st.NewConnsCount(),
	}
}

const intentColumns = `id, amount, currency, status, card_last4, failure_code, created_at, updated_at`

func scanIntent(row pgx.Row) (payment.Intent, error) {
	var in payment.Intent
	var status string
	err := row.Scan(&in.ID, &in.Amount, &in.Currency, &status, &in.CardLast4, &in.FailureCode, &in.CreatedAt, &in.UpdatedAt)
	in.Status = payment.Status(status)
	in.CreatedAt, in.UpdatedAt = in.CreatedAt.UTC(), in.UpdatedAt.UTC()
	return in, err
}

// CreateIntent implements store.Intents.
func (s *Store) CreateIntent(ctx context.Context, in payment.Intent) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO payment_intents (`+intentColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		in.ID, in.Amount, in.Currency, string(in.Status), in.CardLast4, in.FailureCode, in.CreatedAt, in.UpdatedAt)
	if err != nil {
		return fmt.Errorf("insert payment intent %s: %w", in.ID, err)
	}
	return nil
}

// GetIntent implements store.Intents.
func (s *Store) GetIntent(ctx context.Context, id string) (payment.Intent, error) {
	in, err := scanIntent(s.pool.QueryRow(ctx, `SELECT `+intentColumns+` FROM payment_intents WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return payment.Intent{}, fmt.Errorf("get payment intent %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return payment.Intent{}, fmt.Errorf("get payment intent %s: %w", id, err)
	}
	return in, nil
}

// UpdateStatus implements store.Intents with a conditional UPDATE, so two
// concurrent confirmations cannot both move the intent.
func (s *Store) UpdateStatus(ctx context.Context, id string, from, to payment.Status, change store.StatusChange) (payment.Intent, error) {
	if err := payment.Transition(from, to); err != nil {
		return payment.Intent{}, fmt.Errorf("update payment intent %s: %w", id, err)
	}
	in, err := scanIntent(s.pool.QueryRow(ctx, `
		UPDATE payment_intents
		SET status = $3,
		    card_last4 = CASE WHEN $4 = '' THEN card_last4 ELSE $4 END,
		    failure_code = $5,
		    updated_at = $6
		WHERE id = $1 AND status = $2
		RETURNING `+intentColumns,
		id, string(from), string(to), change.CardLast4, change.FailureCode, time.Now().UTC()))
	if errors.Is(err, pgx.ErrNoRows) {
		// Either the intent does not exist or it is in another status.
		cur, gerr := s.GetIntent(ctx, id)
		if gerr != nil {
			return payment.Intent{}, fmt.Errorf("update payment intent: %w", gerr)
		}
		return payment.Intent{}, fmt.Errorf("update payment intent %s from %s (it is %s): %w", id, from, cur.Status, store.ErrStatusConflict)
	}
	if err != nil {
		return payment.Intent{}, fmt.Errorf("update payment intent %s: %w", id, err)
	}
	return in, nil
}

// CreateEndpoint implements store.Endpoints.
func (s *Store) CreateEndpoint(ctx context.Context, ep webhook.Endpoint) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO webhook_endpoints (id, url, secret, enabled_events, created_at) VALUES ($1, $2, $3, $4, $5)`,
		ep.ID, ep.URL, ep.Secret, ep.EnabledEvents, ep.CreatedAt)
	if err != nil {
		return fmt.Errorf("insert webhook endpoint %s: %w", ep.ID, err)
	}
	return nil
}

const endpointColumns = `id, url, secret, enabled_events, created_at`

func scanEndpoint(row pgx.Row) (webhook.Endpoint, error) {
	var ep webhook.Endpoint
	err := row.Scan(&ep.ID, &ep.URL, &ep.Secret, &ep.EnabledEvents, &ep.CreatedAt)
	ep.CreatedAt = ep.CreatedAt.UTC()
	return ep, err
}

// ListEndpoints implements webhook.EndpointStore, oldest first.
func (s *Store) ListEndpoints(ctx context.Context) ([]webhook.Endpoint, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	eps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (webhook.Endpoint, error) { return scanEndpoint(r) })
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	return eps, nil
}

// GetEndpoint implements webhook.EndpointStore.
func (s *Store) GetEndpoint(ctx context.Context, id string) (webhook.Endpoint, error) {
	ep, err := scanEndpoint(s.pool.QueryRow(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return webhook.Endpoint{}, fmt.Errorf("get webhook endpoint %s: %w", id, webhook.ErrEndpointNotFound)
	}
	if err != nil {
		return webhook.Endpoint{}, fmt.Errorf("get webhook endpoint %s: %w", id, err)
	}
	return ep, nil
}

// RecordAttempt implements webhook.AttemptRecorder.
func (s *Store) RecordAttempt(ctx context.Context, a webhook.Attempt) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO webhook_delivery_attempts
		    (id, event_id, event_type, endpoint_id, payment_intent_id, attempt, status_code, error, succeeded, duration_ms, created_at, next_retry_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		a.ID, a.EventID, a.EventType, a.EndpointID, a.IntentID, a.Attempt, a.StatusCode, a.Error, a.Succeeded, a.DurationMS, a.CreatedAt, a.NextRetryAt)
	if err != nil {
		return fmt.Errorf("insert delivery attempt %d of event %s: %w", a.Attempt, a.EventID, err)
	}
	return nil
}

// ListAttempts implements store.Attempts.
func (s *Store) ListAttempts(ctx context.Context, intentID string) ([]webhook.Attempt, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, event_id, event_type, endpoint_id, payment_intent_id, attempt, status_code, error, succeeded, duration_ms, created_at, next_retry_at
		FROM webhook_delivery_attempts WHERE payment_intent_id = $1 ORDER BY created_at, attempt, id`, intentID)
	if err != nil {
		return nil, fmt.Errorf("list delivery attempts of %s: %w", intentID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (webhook.Attempt, error) {
		var a webhook.Attempt
		err := r.Scan(&a.ID, &a.EventID, &a.EventType, &a.EndpointID, &a.IntentID, &a.Attempt, &a.StatusCode, &a.Error, &a.Succeeded, &a.DurationMS, &a.CreatedAt, &a.NextRetryAt)
		a.CreatedAt = a.CreatedAt.UTC()
		if a.NextRetryAt != nil {
			t := a.NextRetryAt.UTC()
			a.NextRetryAt = &t
		}
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("list delivery attempts of %s: %w", intentID, err)
	}
	return out, nil
}
