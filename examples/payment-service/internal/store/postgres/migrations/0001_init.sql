-- Payment intents, webhook endpoints and delivery attempts.
CREATE TABLE IF NOT EXISTS payment_intents (
    id           text PRIMARY KEY,
    amount       bigint NOT NULL CHECK (amount > 0),
    currency     text NOT NULL,
    status       text NOT NULL CHECK (status IN ('requires_confirmation', 'processing', 'succeeded', 'failed')),
    card_last4   text NOT NULL DEFAULT '',
    failure_code text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id             text PRIMARY KEY,
    url            text NOT NULL,
    secret         text NOT NULL,
    enabled_events text[] NOT NULL,
    created_at     timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS webhook_delivery_attempts (
    id                text PRIMARY KEY,
    event_id          text NOT NULL,
    event_type        text NOT NULL,
    endpoint_id       text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    payment_intent_id text NOT NULL,
    attempt           integer NOT NULL,
    status_code       integer NOT NULL DEFAULT 0,
    error             text NOT NULL DEFAULT '',
    succeeded         boolean NOT NULL,
    duration_ms       bigint NOT NULL,
    created_at        timestamptz NOT NULL,
    next_retry_at     timestamptz
);

CREATE INDEX IF NOT EXISTS webhook_delivery_attempts_intent_idx
    ON webhook_delivery_attempts (payment_intent_id, created_at);
