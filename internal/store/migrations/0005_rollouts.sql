-- 0005: blue/green rollouts of an environment (see docs/environments.md,
-- "Blue/green rollouts"). An environment keeps a preview port (its
-- preview URL) for its life, allocated at its first rollout, as it keeps
-- its proxy port. env_rollouts holds the environment's current rollout:
-- its step, phase, stable and desired revisions as columns, and the whole
-- record (strategy, monitors, analyses, deadlines as absolute times, who
-- promoted or aborted) as JSON that the environment controller writes and
-- reads; the store does not read it. env_rollout_events is the audit trail
-- of every verb and every automatic decision, never deleted.

ALTER TABLE environments ADD COLUMN preview_port INTEGER NOT NULL DEFAULT 0;

CREATE TABLE env_rollouts (
	environment TEXT    PRIMARY KEY REFERENCES environments (name) ON DELETE CASCADE,
	step        TEXT    NOT NULL,
	phase       TEXT    NOT NULL,
	stable      INTEGER NOT NULL DEFAULT 0,
	desired     INTEGER NOT NULL DEFAULT 0,
	state       TEXT    NOT NULL DEFAULT '{}', -- JSON, the controller's record
	updated     INTEGER NOT NULL
);

CREATE TABLE env_rollout_events (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	environment TEXT    NOT NULL REFERENCES environments (name) ON DELETE CASCADE,
	revision    INTEGER NOT NULL DEFAULT 0,
	verb        TEXT    NOT NULL, -- rollout, promote, abort, retry, undo, auto-abort, ...
	who         TEXT    NOT NULL DEFAULT '',
	message     TEXT    NOT NULL DEFAULT '',
	at          INTEGER NOT NULL
);

CREATE INDEX env_rollout_events_env ON env_rollout_events (environment, id);
