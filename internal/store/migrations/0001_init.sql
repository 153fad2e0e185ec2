-- 0001: runs, stages, steps, logs, artifacts, events, approvals, audit.
-- Times are UTC Unix nanoseconds; 0 means unset. Maps are JSON text.

CREATE TABLE runs (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	pipeline  TEXT    NOT NULL DEFAULT '',
	dir       TEXT    NOT NULL DEFAULT '',
	event     TEXT    NOT NULL DEFAULT '',
	branch    TEXT    NOT NULL DEFAULT '',
	sha       TEXT    NOT NULL DEFAULT '',
	base_ref  TEXT    NOT NULL DEFAULT '',
	trigger   TEXT    NOT NULL DEFAULT '',
	status    TEXT    NOT NULL,
	message   TEXT    NOT NULL DEFAULT '',
	started   INTEGER NOT NULL DEFAULT 0,
	finished  INTEGER NOT NULL DEFAULT 0,
	params    TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX runs_pipeline ON runs (pipeline, id);
CREATE INDEX runs_status ON runs (status, id);

CREATE TABLE stages (
	run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	name        TEXT    NOT NULL,
	idx         INTEGER NOT NULL DEFAULT 0,
	status      TEXT    NOT NULL,
	message     TEXT    NOT NULL DEFAULT '',
	gate        TEXT    NOT NULL DEFAULT '',
	gate_result INTEGER,              -- NULL: not evaluated; 0/1
	started     INTEGER NOT NULL DEFAULT 0,
	finished    INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (run_id, name)
);

CREATE TABLE steps (
	run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	stage       TEXT    NOT NULL,
	name        TEXT    NOT NULL,
	kind        TEXT    NOT NULL DEFAULT '',
	status      TEXT    NOT NULL,
	attempt     INTEGER NOT NULL DEFAULT 0,
	message     TEXT    NOT NULL DEFAULT '',
	summary     TEXT    NOT NULL DEFAULT '',
	cache_key   TEXT    NOT NULL DEFAULT '',
	cached_from INTEGER NOT NULL DEFAULT 0,
	outputs     TEXT    NOT NULL DEFAULT '{}',
	started     INTEGER NOT NULL DEFAULT 0,
	finished    INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (run_id, stage, name)
);
CREATE INDEX steps_cache_key ON steps (cache_key, run_id) WHERE cache_key <> '';

CREATE TABLE logs (
	run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	stage  TEXT    NOT NULL,
	step   TEXT    NOT NULL,
	seq    INTEGER NOT NULL,
	time   INTEGER NOT NULL,
	stream TEXT    NOT NULL DEFAULT 'out',
	text   TEXT    NOT NULL,
	PRIMARY KEY (run_id, stage, step, seq)
);
CREATE INDEX logs_run_time ON logs (run_id, time, seq);

CREATE TABLE artifacts (
	run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	stage      TEXT    NOT NULL,
	step       TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	digest     TEXT    NOT NULL,
	media_type TEXT    NOT NULL DEFAULT '',
	size       INTEGER NOT NULL DEFAULT 0,
	created    INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (run_id, stage, step, name)
);
CREATE INDEX artifacts_digest ON artifacts (digest);

CREATE TABLE events (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	time   INTEGER NOT NULL,
	type   TEXT    NOT NULL,
	stage  TEXT    NOT NULL DEFAULT '',
	step   TEXT    NOT NULL DEFAULT '',
	data   TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX events_run ON events (run_id, id);

CREATE TABLE approvals (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	run_id          INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	stage           TEXT    NOT NULL,
	status          TEXT    NOT NULL,
	requested_roles TEXT    NOT NULL DEFAULT '',
	actor           TEXT    NOT NULL DEFAULT '',
	comment         TEXT    NOT NULL DEFAULT '',
	requested       INTEGER NOT NULL DEFAULT 0,
	decided         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX approvals_run ON approvals (run_id, id);

-- The audit log outlives runs: no foreign key.
CREATE TABLE audit (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	time    INTEGER NOT NULL,
	actor   TEXT    NOT NULL DEFAULT '',
	action  TEXT    NOT NULL,
	subject TEXT    NOT NULL DEFAULT '',
	detail  TEXT    NOT NULL DEFAULT ''
);
